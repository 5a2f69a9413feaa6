"""How many bars of history a strategy needs before its signals are settled."""

from __future__ import annotations

from engine.data.store import RESOLUTIONS
from engine.strategy.form import Condition, Strategy

# EMAs (MACD, RSI, ATR, ADX) keep converging well past their window: load a few windows more.
SETTLE = 3


def _windows(cond: Condition) -> int:
    if cond.kind == "signal":
        return sum(int(v) for k, v in cond.params if k.startswith("window"))
    from engine.strategy.expr import indicator_calls, parse

    longest = 0
    for _name, args, kwargs in indicator_calls(parse(cond.name)):
        numbers = [*args, *(v for _k, v in kwargs)]
        longest = max(longest, int(sum(abs(x) for x in numbers if float(x).is_integer())))
    return longest


def warmup_bars(strategy: Strategy, interval: str, atr_period: int = 14) -> int:
    """Bars at `interval` to load before the start so every condition is settled at the start."""
    need = atr_period
    for cond in strategy.conditions:
        scale = RESOLUTIONS[cond.timeframe] // RESOLUTIONS[interval] if cond.timeframe else 1
        need = max(need, (_windows(cond) + 2) * max(1, scale))
    return SETTLE * need + 10
