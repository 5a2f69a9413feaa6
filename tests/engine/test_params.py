"""engine.params: one declaration gives the check and the JSON Schema, and they agree."""

import re
from typing import Any

import jsonschema
import pytest

from engine.execution import COOLDOWN_TIER, EXECUTION_PARAMS, FEE_TIER
from engine.params import DECIMAL, REQUIRED, Param, ParamError, check_all, number_text
from engine.strategy.catalog import SIGNALS
from engine.strategy.indicators import INDICATORS
from engine.templates.catalog import TEMPLATES


def every_param() -> list[tuple[str, Param]]:
    """Every declared param: execution settings, tier fields, signal, indicator, template."""
    out = [(f"execution.{k}", p) for k, p in EXECUTION_PARAMS.items()]
    out += [(f"cooldown.{k}", p) for k, p in COOLDOWN_TIER.items()]
    out += [(f"fee_tier.{k}", p) for k, p in FEE_TIER.items()]
    out += [(f"{s.name}.{k}", p) for s in SIGNALS.values() for k, p in s.params.items()]
    out += [(f"{s.name}.{k}", p) for s in INDICATORS.values() for k, p in s.params]
    out += [(f"{t.name}.{k}", p) for t in TEMPLATES.values() for k, p in t.params.items()]
    return out


def probes(p: Param) -> list[Any]:
    """Values around a param's bounds, plus values of the wrong type."""
    out: list[Any] = [None, True, "x", "12", 2.5, -1, 0, 1, [], {}]
    for bound in (p.minimum, p.maximum):
        if bound is not None:
            out += [bound - 1, bound - 1e-6, bound, bound + 1e-6, bound + 1]
            out += [int(bound) - 1, int(bound), int(bound) + 1]
    out += list(p.choices) + [c.upper() for c in p.choices]
    if p.kind == "string" and p.maximum is not None:
        out += ["a" * int(p.maximum), "a" * (int(p.maximum) + 1)]
    return out


def accepted(p: Param, value: Any) -> bool:
    try:
        p.check(value, "x")
    except ParamError:
        return False
    return True


@pytest.mark.parametrize(("name", "param"), every_param(), ids=[n for n, _ in every_param()])
def test_schema_and_check_accept_the_same_values(name: str, param: Param) -> None:
    schema = param.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    if not param.required:
        assert accepted(param, param.default) or param.default is None, name
        jsonschema.validate(param.default, schema)
    for value in probes(param):
        valid = jsonschema.Draft202012Validator(schema).is_valid(value)
        if param.decimal_strings and isinstance(value, str):
            # A schema can check a decimal string's form, not its value's bounds.
            assert valid == bool(re.match(DECIMAL, value)), (name, value)
            continue
        assert valid == accepted(param, value), (name, value)


def test_bounds_in_words_and_in_tables() -> None:
    fee = Param("number", 0.0, "fee", 0, 10_000, exclusive_maximum=True, unit="bps")
    assert fee.bounds_text() == "at least 0 and below 10000"
    assert fee.range_text() == "0 ≤ x < 10000"
    size = Param("integer", 1, "n", 0, 1e12, exclusive_minimum=True)
    assert size.range_text() == "integer 0 < x ≤ 1e12"
    assert [number_text(x) for x in (1e6, 1e15, 2e6, 0.99, -1000, 125)] == [
        "1e6", "1e15", "2000000", "0.99", "-1000", "125",
    ]  # fmt: skip


def test_faults_name_the_path() -> None:
    fee = Param("number", 0.0, "fee", 0, 10_000, exclusive_maximum=True)
    with pytest.raises(ParamError) as info:
        fee.check(10_000, "execution.fee_bps")
    assert info.value.path == "execution.fee_bps"
    assert info.value.message == "must be at least 0 and below 10000, got 10000"
    tiers = Param("array", None, "", 1, 2, nullable=True, fields=FEE_TIER)
    with pytest.raises(ParamError) as info:
        tiers.check([{"min_volume_30d": 0, "maker_bps": 1, "taker_bps": -1}], "fee_tiers")
    assert info.value.path == "fee_tiers[0].taker_bps"
    with pytest.raises(ParamError, match=r"^a\.b: is required$"):
        check_all({"b": Param("integer", REQUIRED)}, {}, "a")
    with pytest.raises(ParamError, match=r"^c: unknown key"):
        check_all({"b": Param("integer", 1)}, {"c": 1})


def test_integers_stay_integers_and_decimal_strings_are_numbers() -> None:
    assert (
        Param("integer", 1).check(7, "n") == 7 and type(Param("number", 1.0).check(7, "n")) is float
    )
    price = Param("number", REQUIRED, "", 0, exclusive_minimum=True, decimal_strings=True)
    assert price.check("72000.5", "p") == 72000.5
    for bad in ("7e4", "", " ", "0"):
        assert not accepted(price, bad)
