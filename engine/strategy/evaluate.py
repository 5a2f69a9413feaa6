"""Turn a compiled strategy into per-bar entry and exit masks for one bar series.

Entry rules are all-of (every TRIGGER and FILTER holds on the bar's close), exit rules any-of.
A condition on a coarser timeframe is computed on coarser bars and seen by a base bar only once
the coarser bar has closed (engine.strategy.timeframe). Identical conditions are computed once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.data.store import RESOLUTIONS, Bars, resample
from engine.nb.signals import all_of_nb, any_of_nb
from engine.strategy.catalog import SIGNALS
from engine.strategy.form import Condition, Strategy
from engine.strategy.indicators import shared_indicators
from engine.strategy.timeframe import check_timeframe, last_closed, on_timeframe


class Masks(NamedTuple):
    """Boolean series, one value per bar."""

    long_entry: np.ndarray
    long_exit: np.ndarray
    short_entry: np.ndarray
    short_exit: np.ndarray


def interval_of(bars: Bars) -> str:
    """Name the bar interval from the smallest spacing of the bars (1h when there are too few)."""
    if len(bars) < 2:
        return "1h"
    step = int(np.min(np.diff(bars.ts)))
    for name, ns in sorted(RESOLUTIONS.items(), key=lambda kv: -kv[1]):
        if step >= ns:
            return name
    return "1m"


def _raw(cond: Condition, bars: Bars) -> np.ndarray:
    if cond.kind == "signal":
        return np.asarray(SIGNALS[cond.name].compute(bars, cond.param_dict), dtype=np.bool_)
    from engine.strategy.expr import evaluate as evaluate_expr
    from engine.strategy.expr import parse
    from engine.strategy.provider import PROVIDER

    return np.asarray(evaluate_expr(parse(cond.name), bars, PROVIDER), dtype=np.bool_)


def _fresh(bars: Bars, interval: str, timeframe: str) -> np.ndarray:
    """True on the first base bar that sees each newly closed coarser bar."""
    base, step = check_timeframe(interval, timeframe)
    idx = last_closed(bars, base, resample(bars, step), step)
    fresh = np.empty(len(bars), dtype=np.bool_)
    fresh[:1] = idx[:1] >= 0
    fresh[1:] = idx[1:] != idx[:-1]
    return fresh


def condition_mask(cond: Condition, bars: Bars, interval: str) -> np.ndarray:
    """One condition's boolean series on `bars` (at `interval`).

    On a coarser timeframe a FILTER holds while its coarser bar is the latest closed one; a
    TRIGGER or EXIT is an event, true only on the first base bar that sees its coarser bar, so a
    4h cross fires once, not on each of the four hourly bars after it.
    """
    if cond.timeframe is None or cond.timeframe == interval:
        return _raw(cond, bars)
    held = on_timeframe(bars, interval, cond.timeframe, lambda b: _raw(cond, b))
    if cond.role == "FILTER":
        return held
    return held & _fresh(bars, interval, cond.timeframe)


def _combine(
    conds: tuple[Condition, ...], bars: Bars, interval: str, cache: dict, all_: bool
) -> np.ndarray:
    n = len(bars)
    if not conds:
        return np.zeros(n, dtype=np.bool_)
    stack = np.empty((len(conds), n), dtype=np.bool_)
    for k, cond in enumerate(conds):
        key = (cond.kind, cond.name, cond.params, cond.timeframe)
        if key not in cache:
            cache[key] = condition_mask(cond, bars, interval)
        stack[k] = cache[key]
    return all_of_nb(stack) if all_ else any_of_nb(stack)


def evaluate(strategy: Strategy, bars: Bars, interval: str | None = None) -> Masks:
    """Return the entry and exit masks of both sides for `bars`."""
    interval = interval or interval_of(bars)
    cache: dict = {}
    with shared_indicators():
        return Masks(
            _combine(strategy.long_entry, bars, interval, cache, True),
            _combine(strategy.long_exit, bars, interval, cache, False),
            _combine(strategy.short_entry, bars, interval, cache, True),
            _combine(strategy.short_exit, bars, interval, cache, False),
        )
