"""Compile a seed-001 strategy object into the internal, validated, picklable form.

Example::

    compile_strategy({
        "name": "ETH Strategy",
        "entry": [
            {"name": "macd_bullish_cross", "signal_type": "TRIGGER",
             "params": {"window_fast": 12, "window_slow": 26, "window_sign": 9}},
            {"name": "is_above_sma", "signal_type": "FILTER", "params": {"window": 50}},
        ],
        "exit": [],
    })

Entry fires on a bar when every entry signal is true on that bar; any exit signal exits.
Unknown top-level keys are ignored (the wire layer validates them), except ``atr_period`` and
``atr_multiplier``, which belong in the execution settings and are rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.data.store import RESOLUTIONS
from engine.strategy.catalog import SIGNALS, SignalSpec

SIGNAL_KEYS = {"name", "timeframe", "signal_type", "params"}
EXECUTION_KEYS = ("atr_period", "atr_multiplier")


class StrategyError(ValueError):
    """A strategy fault, located by the JSON path of the offending value."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message

    def __reduce__(self) -> tuple:
        return (StrategyError, (self.path, self.message))


@dataclass(frozen=True)
class CompiledSignal:
    """One validated signal with every param filled in."""

    name: str
    role: str  # TRIGGER, FILTER or EXIT
    params: tuple[tuple[str, int], ...]
    timeframe: str | None
    path: str  # e.g. "entry[0]"

    @property
    def param_dict(self) -> dict[str, int]:
        """Return the params as a dict."""
        return dict(self.params)


@dataclass(frozen=True)
class CompiledStrategy:
    """A validated strategy: all-of entry signals, any-of exit signals."""

    name: str
    asset: str | None
    entry: tuple[CompiledSignal, ...]
    exit: tuple[CompiledSignal, ...]


def compile_strategy(spec: dict) -> CompiledStrategy:
    """Validate a strategy object and return its compiled form, or raise StrategyError."""
    if not isinstance(spec, dict):
        raise StrategyError("", "strategy must be an object")
    for key in EXECUTION_KEYS:
        if key in spec:
            raise StrategyError(key, "belongs in the execution settings, not the strategy")
    name = _optional_str(spec, "name", "") or ""
    asset = _optional_str(spec, "asset", None)
    entry = spec.get("entry")
    if not isinstance(entry, list) or not entry:
        raise StrategyError("entry", "at least one entry signal is required")
    exits = spec.get("exit", [])
    if exits is None:
        exits = []
    if not isinstance(exits, list):
        raise StrategyError("exit", "must be a list of signals")
    return CompiledStrategy(
        name=name,
        asset=asset,
        entry=tuple(_signal(s, f"entry[{i}]", exit_=False) for i, s in enumerate(entry)),
        exit=tuple(_signal(s, f"exit[{i}]", exit_=True) for i, s in enumerate(exits)),
    )


def _optional_str(spec: dict, key: str, default: str | None) -> str | None:
    """Return spec[key] if it is a string, the default if absent, else raise."""
    value = spec.get(key, default)
    if value is not None and not isinstance(value, str):
        raise StrategyError(key, "must be a string")
    return value


def _signal(raw: Any, path: str, *, exit_: bool) -> CompiledSignal:
    """Validate one signal object."""
    if not isinstance(raw, dict):
        raise StrategyError(path, "signal must be an object")
    for key in raw:
        if key not in SIGNAL_KEYS:
            raise StrategyError(f"{path}.{key}", "unknown field")
    name = raw.get("name")
    if not isinstance(name, str) or name not in SIGNALS:
        raise StrategyError(f"{path}.name", f"unknown signal {name!r}")
    spec = SIGNALS[name]
    role = _role(raw.get("signal_type"), spec, f"{path}.signal_type", exit_=exit_)
    return CompiledSignal(
        name=name,
        role=role,
        params=_params(raw.get("params"), spec, f"{path}.params"),
        timeframe=_timeframe(raw.get("timeframe"), f"{path}.timeframe"),
        path=path,
    )


def _role(value: Any, spec: SignalSpec, path: str, *, exit_: bool) -> str:
    """Return the signal's role; exit signals accept EXIT, TRIGGER or nothing."""
    if value is None:
        role = "EXIT" if exit_ else "TRIGGER"
    elif not isinstance(value, str):
        raise StrategyError(path, "must be a string")
    else:
        role = value.upper()
    allowed = ("EXIT", "TRIGGER") if exit_ else ("TRIGGER", "FILTER")
    if role not in allowed:
        raise StrategyError(path, f"must be one of {', '.join(allowed)}")
    if exit_:
        role = "EXIT"
    if role not in spec.roles:
        raise StrategyError(path, f"{spec.name} cannot be used as {role}")
    return role


def _params(raw: Any, spec: SignalSpec, path: str) -> tuple[tuple[str, int], ...]:
    """Validate params and fill in defaults."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise StrategyError(path, "must be an object")
    values = {k: p.default for k, p in spec.params.items()}
    for key, value in raw.items():
        if key in EXECUTION_KEYS:
            raise StrategyError(f"{path}.{key}", "belongs in the execution settings")
        if key not in spec.params:
            raise StrategyError(f"{path}.{key}", f"unknown param for {spec.name}")
        p = spec.params[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise StrategyError(f"{path}.{key}", "must be an integer")
        if not p.minimum <= value <= p.maximum:
            raise StrategyError(f"{path}.{key}", f"must be between {p.minimum} and {p.maximum}")
        values[key] = value
    for small, large in spec.ordered:
        if values[small] >= values[large]:
            raise StrategyError(f"{path}.{small}", f"{small} must be less than {large}")
    return tuple(sorted(values.items()))


def _timeframe(value: Any, path: str) -> str | None:
    """Validate an optional timeframe name."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in RESOLUTIONS:
        raise StrategyError(path, f"must be one of {', '.join(RESOLUTIONS)}")
    return value
