"""The wire's execution settings and the engine's refuse the same values, naming the field."""

import math
from typing import Any

import pytest
from pydantic import ValidationError

from engine.execution import EXECUTION_PARAMS, Execution
from engine.params import ParamError
from protocol.params import declarations
from protocol.requests import ExecutionSpec
from protocol.seed004 import JobBody

TIER = {"short_loss_limit": 4, "long_loss_limit": 6, "short_window_bars": 48,
        "long_window_bars": 144}  # fmt: skip

# (setting, value, accepted): the rules as the README's Execution table states them (fees below
# 100% of the notional, leverage 1-125, a loss limit or window of 0 turning a tier off), written
# out by hand at and around each boundary.
CASES: list[tuple[str, Any, bool]] = [
    ("fee_bps", 0, True),
    ("fee_bps", 1000.5, True),  # the wire's old cap was 1000
    ("fee_bps", 9999.99, True),
    ("fee_bps", 10_000, False),
    ("fee_bps", -0.01, False),
    ("fee_bps", True, False),
    ("slippage_bps", 9999.99, True),
    ("slippage_bps", 10_000, False),
    ("leverage", 1, True),
    ("leverage", 125, True),
    ("leverage", 0.99, False),
    ("leverage", 125.01, False),
    ("max_risk_per_trade", 1, True),
    ("max_risk_per_trade", 0, False),
    ("daily_momentum_limit", 0, True),  # the wire refused 0, which the engine reads as "off"
    ("weekly_momentum_limit", 0, True),
    ("daily_momentum_limit", -1, False),
    ("daily_momentum_limit", 2.0, False),
    ("cooldown_bars", 0, True),
    ("max_hold_bars", 10_000_000, True),
    ("max_hold_bars", 10_000_001, False),
    ("max_hold_bars", 0, False),
    ("volatility_window", 1, False),
    ("atr_multiplier", 0, True),
    ("atr_multiplier", None, False),
    ("size", 0, False),
    ("size", 1e12, True),
    ("size", math.inf, False),
    ("min_balance_threshold", 1.01, False),
    ("maintenance_margin_rate", 0.999, True),
    ("maintenance_margin_rate", 1, False),
    ("sizing", "kelly", False),
    ("venue", "", False),
    ("cooldown_config", {"1h": {**TIER, "short_loss_limit": 0, "short_window_bars": 0}}, True),
    ("cooldown_config", {"1h": {**TIER, "long_window_bars": -1}}, False),
    ("cooldown_config", {"1h": {**TIER, "long_loss_limit": 10_001}}, False),
    ("cooldown_config", {"1h": {k: v for k, v in TIER.items() if k != "long_loss_limit"}}, False),
    ("fee_tiers", [{"min_volume_30d": 0, "maker_bps": 9999.99, "taker_bps": 1}], True),
    ("fee_tiers", [{"min_volume_30d": 0, "maker_bps": 1, "taker_bps": 10_000}], False),
    ("fee_tiers", [{"min_volume_30d": 0, "maker_bps": 1, "taker_bps": 1, "x": 1}], False),
    ("fee_tiers", [], False),
]


def wire_error(settings: dict[str, Any]) -> str | None:
    """The first offending field's dotted path on the wire, or None when accepted."""
    try:
        ExecutionSpec.model_validate(settings)
    except ValidationError as exc:
        return ".".join(str(p) for p in exc.errors()[0]["loc"])
    return None


def engine_error(settings: dict[str, Any]) -> str | None:
    """The path the engine's ParamError names, or None when accepted."""
    try:
        Execution.from_dict(settings)
    except ParamError as exc:
        return exc.path
    return None


@pytest.mark.parametrize(("name", "value", "accepted"), CASES)
def test_wire_and_engine_agree_at_each_boundary(name: str, value: Any, accepted: bool) -> None:
    wire, engine = wire_error({name: value}), engine_error({name: value})
    if accepted:
        assert (wire, engine) == (None, None)
    else:
        assert wire is not None and wire.startswith(name)
        assert engine is not None and engine.startswith(name)


def probes(spec: dict[str, Any]) -> list[Any]:
    """Values at, just inside and just outside a numeric declaration's bounds."""
    out: list[Any] = [spec.get("default")]
    for bound in (spec.get("minimum"), spec.get("maximum")):
        if bound is not None:
            step = 1 if spec["kind"] == "integer" else bound * 1e-9 or 1e-9
            out += [bound - step, bound, bound + step]
    return [int(x) if spec["kind"] == "integer" else x for x in out if x is not None]


@pytest.mark.parametrize(
    "name", [k for k, s in declarations().items() if s["kind"] in ("integer", "number")]
)
def test_every_numeric_setting_is_bounded_alike(name: str) -> None:
    for value in probes(declarations()[name]):
        extra = {"leverage": 1.0} if name == "maintenance_margin_rate" else {}
        wire, engine = wire_error({name: value, **extra}), engine_error({name: value, **extra})
        assert (wire is None) == (engine is None), (name, value, wire, engine)


def test_the_wire_declares_every_engine_setting_with_its_default() -> None:
    assert list(ExecutionSpec.model_fields) == list(EXECUTION_PARAMS)
    defaults = ExecutionSpec().model_dump()
    assert defaults == {k: p.default for k, p in EXECUTION_PARAMS.items()}
    assert Execution() == Execution.from_dict(defaults)


@pytest.mark.parametrize(
    ("fee_bps", "ok"), [("0", True), ("9999.99", True), ("10000", False), ("12000.5", False)]
)
def test_seed004_fee_bps_takes_the_same_bound(fee_bps: str, ok: bool) -> None:
    if ok:
        assert JobBody(fee_bps=fee_bps).fee_bps == fee_bps
        return
    with pytest.raises(ValidationError) as info:
        JobBody(fee_bps=fee_bps)
    assert info.value.errors()[0]["loc"] == ("fee_bps",)
    assert "below 10000" in info.value.errors()[0]["msg"]


def test_seed004_leverage_is_the_declared_range() -> None:
    assert JobBody(leverage=125).leverage == 125
    for bad in (0, 126):
        with pytest.raises(ValidationError):
            JobBody(leverage=bad)


BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum",
              "minLength", "maxLength", "minItems", "maxItems")  # fmt: skip


def bounds_of(schema: dict[str, Any]) -> dict[str, Any]:
    """The bound keywords of a (possibly nullable) property schema."""
    inner = next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)
    return {k: inner[k] for k in BOUND_KEYS if k in inner}


def test_the_published_schema_states_the_declared_bounds() -> None:
    # /openapi.json takes ExecutionSpec.model_json_schema(); each property must carry the
    # bounds the engine's Param declares (Literal choices become an enum).
    properties = ExecutionSpec.model_json_schema()["properties"]
    for name, param in EXECUTION_PARAMS.items():
        published = bounds_of(properties[name])
        assert published == bounds_of(param.schema()), name
        assert properties[name].get("default") == param.default, name
