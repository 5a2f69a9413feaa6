"""Compile a strategy object (seed 001's format, or the v2 extension of it) into the internal form.

Seed 001 example (a valid v2 strategy too)::

    compile_strategy({
        "name": "ETH Strategy", "asset": "ETH",
        "entry": [
            {"name": "macd_bullish_cross", "timeframe": "1h", "signal_type": "TRIGGER",
             "params": {"window_fast": 12, "window_slow": 26, "window_sign": 9}},
            {"name": "is_above_sma", "timeframe": "1h", "signal_type": "FILTER", "params": {"window": 50}},
        ],
        "exit": [],
    })

The v2 object adds, all optional: conditions as expressions (`{"condition": "rsi(14) < 30"}` or a
bare string), `side` (`long`, `short` or `both`), `short_entry` / `short_exit` (with `both`),
`stop_loss`, `take_profit`, `trailing_stop` (`{"type": "atr"|"percent"|"r", "value": x}`) and
`max_hold_bars`. An object with `"type": "score"` is a score strategy (engine.strategy.score:
named variables, scored conditions, a threshold, fixed-R exits). With `dialect="seed001"` the strict seed 001 rules apply instead: entry is
exactly one TRIGGER and one FILTER catalog signal, exits are catalog signals, nothing else.
Every fault raises StrategyError with the JSON path of the offending value.
"""

from __future__ import annotations

from typing import Any

from engine.params import MAX_BARS
from engine.strategy import score
from engine.strategy.conditions import EXECUTION_KEYS, StrategyError, condition, signal
from engine.strategy.form import Condition, Exits, Level, Strategy

__all__ = ["StrategyError", "compile_strategy"]

V2_KEYS = {
    "name",
    "asset",
    "description",
    "side",
    "entry",
    "exit",
    "short_entry",
    "short_exit",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "max_hold_bars",
}
SEED001_KEYS = {"name", "asset", "entry", "exit"}
LEVEL_KINDS = {
    "stop_loss": ("atr", "percent"),
    "take_profit": ("atr", "percent", "r"),
    "trailing_stop": ("atr", "percent"),
}


def compile_strategy(spec: Any, *, dialect: str = "v2") -> Strategy:
    """Validate a strategy object and return the internal form, or raise StrategyError."""
    if not isinstance(spec, dict):
        raise StrategyError("", "strategy must be an object")
    scored = dialect != "seed001" and "type" in spec
    if scored:
        score.check_keys(spec)
    else:
        _check_keys(spec, SEED001_KEYS if dialect == "seed001" else V2_KEYS, dialect)
    name = _text(spec, "name", "strategy")
    asset = _text(spec, "asset", None)
    if scored:
        return score.compile_score(spec, name or "strategy", asset, _exits(spec).max_hold_bars)
    if dialect == "seed001":
        return _seed001(spec, name, asset)
    side = spec.get("side", "long")
    if side not in ("long", "short", "both"):
        raise StrategyError("side", "must be one of long, short, both")
    entry = _rule(spec, "entry", entry=True, required=True)
    exit_ = _rule(spec, "exit", entry=False, required=False)
    short_entry, short_exit = (), ()
    if side == "both":
        short_entry = _rule(spec, "short_entry", entry=True, required=True)
        short_exit = _rule(spec, "short_exit", entry=False, required=False)
    elif "short_entry" in spec or "short_exit" in spec:
        key = "short_entry" if "short_entry" in spec else "short_exit"
        raise StrategyError(key, 'only with "side": "both"')
    if side == "short":
        entry, exit_, short_entry, short_exit = (), (), entry, exit_
    return Strategy(name, asset, entry, exit_, short_entry, short_exit, _exits(spec))


def _check_keys(spec: dict, allowed: set[str], dialect: str) -> None:
    for key in spec:
        if key in EXECUTION_KEYS:
            raise StrategyError(key, "belongs in the execution settings, not the strategy")
        if key not in allowed:
            hint = (
                " (seed 001's format has name, asset, entry and exit)"
                if dialect == "seed001"
                else ""
            )
            raise StrategyError(key, f"unknown field{hint}")


def _text(spec: dict, key: str, default: str | None) -> str | None:
    value = spec.get(key, default)
    if value is not None and (not isinstance(value, str) or len(value) > 200):
        raise StrategyError(key, "must be a string of at most 200 characters")
    return value


def _list(spec: dict, key: str, required: bool) -> list:
    raw = spec.get(key)
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise StrategyError(key, "must be a list of conditions")
    if required and not raw:
        raise StrategyError(key, "at least one condition is required")
    if len(raw) > 50:
        raise StrategyError(key, "at most 50 conditions")
    return raw


def _rule(spec: dict, key: str, *, entry: bool, required: bool) -> tuple[Condition, ...]:
    items = _list(spec, key, required)
    return tuple(condition(raw, f"{key}[{i}]", entry=entry) for i, raw in enumerate(items))


def _seed001(spec: dict, name: str | None, asset: str | None) -> Strategy:
    raw_entry = _list(spec, "entry", True)
    entry = tuple(signal(raw, f"entry[{i}]", entry=True) for i, raw in enumerate(raw_entry))
    roles = sorted(c.role for c in entry)
    if roles != ["FILTER", "TRIGGER"]:
        raise StrategyError(
            "entry", "seed 001 entry rules are exactly one TRIGGER and one FILTER signal"
        )
    raw_exit = _list(spec, "exit", False)
    exit_ = tuple(signal(raw, f"exit[{i}]", entry=False) for i, raw in enumerate(raw_exit))
    return Strategy(name or "strategy", asset, entry, exit_)


def _exits(spec: dict) -> Exits:
    levels = {key: _level(spec.get(key), key) for key in LEVEL_KINDS}
    hold = spec.get("max_hold_bars")
    if hold is not None and (
        isinstance(hold, bool) or not isinstance(hold, int) or not 1 <= hold <= MAX_BARS
    ):
        raise StrategyError("max_hold_bars", f"must be an integer from 1 to {MAX_BARS}")
    return Exits(levels["stop_loss"], levels["take_profit"], levels["trailing_stop"], hold)


def _level(raw: Any, key: str) -> Level | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"type", "value"}:
        raise StrategyError(key, 'must be an object {"type": ..., "value": ...}')
    kind, value = raw.get("type"), raw.get("value")
    if kind not in LEVEL_KINDS[key]:
        raise StrategyError(f"{key}.type", f"must be one of {', '.join(LEVEL_KINDS[key])}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1000:
        raise StrategyError(f"{key}.value", "must be a number above 0 and at most 1000")
    if kind == "percent" and value >= (1 if key != "take_profit" else 1000):
        raise StrategyError(f"{key}.value", "a percent level is a fraction: 0.02 means 2%")
    return Level(kind, float(value))
