"""Turn a compiled strategy into per-bar entry and exit masks for one bar series.

Entry rules are all-of (every TRIGGER and FILTER holds on the bar's close), exit rules any-of.
A score rule's side enters where the scores of its true conditions sum to at least the threshold
(and, if that side also has entry conditions, where they all hold too).
A condition on a coarser timeframe is computed on coarser bars and seen by a base bar only once
the coarser bar has closed (engine.strategy.timeframe). Identical conditions are computed once.
Strategies of the common shapes (crosses, level filters and simple comparisons on the run's own
bars, and-ed in entries) take one fused kernel call instead (engine.strategy.fuse), except in a
sweep; the masks are the same.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.data.store import RESOLUTIONS, Bars, resample
from engine.nb.signals import all_of_nb, any_of_nb
from engine.strategy.catalog import SIGNALS
from engine.strategy.form import Condition, ScoreRule, Strategy
from engine.strategy.fuse import fused_masks, fusing, plan
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


def _stack(conds: tuple[Condition, ...], bars: Bars, interval: str, cache: dict) -> np.ndarray:
    """Return the (conditions, bars) boolean table, computing each distinct condition once."""
    stack = np.empty((len(conds), len(bars)), dtype=np.bool_)
    for k, cond in enumerate(conds):
        key = (cond.kind, cond.name, cond.params, cond.timeframe, cond.role)
        if key not in cache:
            cache[key] = condition_mask(cond, bars, interval)
        stack[k] = cache[key]
    return stack


def _combine(
    conds: tuple[Condition, ...], bars: Bars, interval: str, cache: dict, all_: bool
) -> np.ndarray:
    if not conds:
        return np.zeros(len(bars), dtype=np.bool_)
    stack = _stack(conds, bars, interval, cache)
    return all_of_nb(stack) if all_ else any_of_nb(stack)


def score_table(
    rule: ScoreRule, bars: Bars, interval: str | None = None, cache: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (truth, total): each scored condition's mask as a row, and the summed score per bar."""
    interval = interval or interval_of(bars)
    conds = tuple(item.condition for item in rule.items)
    with shared_indicators():
        truth = _stack(conds, bars, interval, {} if cache is None else cache)
    total = np.asarray(rule.scores, dtype=np.float64) @ truth.astype(np.float64)
    return truth, total


def score_entry(rule: ScoreRule, total: np.ndarray) -> np.ndarray:
    """Return where a total score reaches the threshold (with a tolerance for float sums)."""
    return total >= rule.threshold - 1e-9 * max(1.0, abs(rule.threshold))


def _entry(strategy: Strategy, side: str, bars: Bars, interval: str, cache: dict) -> np.ndarray:
    conds = strategy.long_entry if side == "long" else strategy.short_entry
    mask = _combine(conds, bars, interval, cache, True)
    rule = strategy.score
    if rule is None or rule.side != side:
        return mask
    scored = score_entry(rule, score_table(rule, bars, interval, cache)[1])
    return scored & mask if conds else scored


def evaluate(
    strategy: Strategy, bars: Bars, interval: str | None = None, *, fused: bool = True
) -> Masks:
    """Return the entry and exit masks of both sides for `bars`.

    A strategy of the common shapes (engine.strategy.fuse) is computed in one fused pass;
    ``fused=False`` forces the general path (tests compare the two).
    """
    interval = interval or interval_of(bars)
    cache: dict = {}
    with shared_indicators():
        fusion = plan(strategy, interval) if fused and fusing() else None
        if fusion is not None:
            return Masks(*fused_masks(fusion, bars))
        return Masks(
            _entry(strategy, "long", bars, interval, cache),
            _combine(strategy.long_exit, bars, interval, cache, False),
            _entry(strategy, "short", bars, interval, cache),
            _combine(strategy.short_exit, bars, interval, cache, False),
        )
