"""Compile one condition: a catalog signal with typed params, or a condition expression."""

from __future__ import annotations

from typing import Any

from engine.data.store import RESOLUTIONS
from engine.errors import PathError
from engine.params import Param, ParamError
from engine.strategy.catalog import SIGNALS, SignalSpec
from engine.strategy.form import Condition

SIGNAL_KEYS = {"name", "timeframe", "signal_type", "params"}
EXPR_KEYS = {"condition", "timeframe", "signal_type"}
EXECUTION_KEYS = ("atr_period", "atr_multiplier")


class StrategyError(PathError):
    """A strategy fault, located by the JSON path of the offending value."""


def condition(
    raw: Any, path: str, *, entry: bool, variables: dict[str, Any] | None = None
) -> Condition:
    """Compile a v2 condition: a signal object, `{"condition": text}`, or a bare string.

    With `variables` (a score strategy's, name -> parsed expression), a bare name in an
    expression may be a variable; the condition's text is the expression with them substituted.
    """
    if isinstance(raw, str):
        return expression({"condition": raw}, path, entry=entry, variables=variables)
    if isinstance(raw, dict) and "condition" in raw:
        return expression(raw, path, entry=entry, variables=variables)
    return signal(raw, path, entry=entry)


def signal(raw: Any, path: str, *, entry: bool) -> Condition:
    """Compile a catalog signal object."""
    if not isinstance(raw, dict):
        raise StrategyError(
            path, 'a condition must be a signal object, {"condition": ...} or a string'
        )
    for key in raw:
        if key not in SIGNAL_KEYS:
            raise StrategyError(f"{path}.{key}", "unknown field")
    name = raw.get("name")
    if not isinstance(name, str) or name not in SIGNALS:
        raise StrategyError(
            f"{path}.name", f"unknown signal {name!r}; GET /api/v2/signals lists them"
        )
    spec = SIGNALS[name]
    role = role_of(
        raw.get("signal_type"), spec.roles, spec.name, f"{path}.signal_type", entry=entry
    )
    params = _params(raw.get("params"), spec, f"{path}.params")
    return Condition(
        "signal", name, params, timeframe_of(raw.get("timeframe"), f"{path}.timeframe"), role, path
    )


def expression(
    raw: dict, path: str, *, entry: bool, variables: dict[str, Any] | None = None
) -> Condition:
    """Compile a condition expression, checking that it parses and names known indicators."""
    for key in raw:
        if key not in EXPR_KEYS:
            raise StrategyError(f"{path}.{key}", "unknown field")
    text = compile_text(raw["condition"], f"{path}.condition", variables)
    roles = ("TRIGGER", "FILTER", "EXIT")
    role = role_of(raw.get("signal_type"), roles, "a condition", f"{path}.signal_type", entry=entry)
    return Condition(
        "expr", text, (), timeframe_of(raw.get("timeframe"), f"{path}.timeframe"), role, path
    )


def compile_text(text: Any, path: str, variables: dict[str, Any] | None = None) -> str:
    """Check a condition's text; return it, or with `variables` its substituted form."""
    from engine.strategy.expr import ExprError, check, parse
    from engine.strategy.provider import PROVIDER

    if not isinstance(text, str):
        raise StrategyError(path, "must be a string")
    try:
        node = parse(text)
        if variables is not None:
            from engine.strategy.score import expand, expanded_text

            node = expand(node, variables)
        check(node, PROVIDER)  # names, arities, types, param bounds, series arguments
        return text if variables is None else expanded_text(node)
    except ExprError as exc:
        raise StrategyError(path, str(exc)) from exc


def role_of(
    value: Any, allowed_roles: tuple[str, ...], what: str, path: str, *, entry: bool
) -> str:
    """Return the condition's role; exit conditions accept EXIT, TRIGGER or nothing."""
    if value is None:
        role = "TRIGGER" if entry else "EXIT"
    elif not isinstance(value, str):
        raise StrategyError(path, "must be a string")
    else:
        role = value.upper()
    allowed = ("TRIGGER", "FILTER") if entry else ("EXIT", "TRIGGER")
    if role not in allowed:
        raise StrategyError(path, f"must be one of {', '.join(allowed)}")
    role = role if entry else "EXIT"
    if role not in allowed_roles:
        raise StrategyError(path, f"{what} cannot be used as {role}")
    return role


def _params(raw: Any, spec: SignalSpec, path: str) -> tuple[tuple[str, int | float], ...]:
    """Validate params against their specs and fill in defaults."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise StrategyError(path, "must be an object")
    values: dict[str, int | float] = {k: p.default for k, p in spec.params.items()}
    for key, value in raw.items():
        if key in EXECUTION_KEYS:
            raise StrategyError(f"{path}.{key}", "belongs in the execution settings")
        if key not in spec.params:
            known = ", ".join(spec.params) or "none"
            raise StrategyError(f"{path}.{key}", f"unknown param for {spec.name} (params: {known})")
        values[key] = _value(value, spec.params[key], f"{path}.{key}")
    for small, large in spec.ordered:
        if values[small] >= values[large]:
            raise StrategyError(f"{path}.{small}", f"{small} must be less than {large}")
    return tuple(sorted(values.items()))


def _value(value: Any, p: Param, path: str) -> int | float:
    """The value checked by its declaration, as a StrategyError naming the path."""
    try:
        return p.check(value, path)
    except ParamError as exc:
        raise StrategyError(exc.path, exc.message) from None


def timeframe_of(value: Any, path: str) -> str | None:
    """Validate an optional timeframe name."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in RESOLUTIONS:
        raise StrategyError(path, f"must be one of {', '.join(RESOLUTIONS)}")
    return value
