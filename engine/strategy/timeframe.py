"""Series on a coarser timeframe than the run's bars, mapped back with no lookahead.

The base bars are resampled to the coarser timeframe (buckets aligned to UTC epoch multiples, or
UTC calendar weeks and months for 1w and 1M, as the bar store does), the series is computed on the coarser bars, and base bar i takes the value of
the most recent coarser bar that has closed by base bar i's close:

    end of coarse bar j <= bars.ts[i] + base_interval

A coarser bar still forming is never used, so no base bar sees a price from its future. Before the
first coarser bar closes the value is NaN (float series) or False (boolean series). A coarser
value holds for every base bar until the next coarser bar closes: a 4h cross seen from 1h bars
is true on the four 1h bars that follow the 4h bar in which it happened.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.data.periods import is_calendar, period_ends
from engine.data.store import RESOLUTIONS, Bars, resample


def interval_ns(name: str, what: str) -> int:
    """Return an interval's length in ns, or raise ValueError naming the known ones."""
    if name not in RESOLUTIONS:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(RESOLUTIONS)}")
    return RESOLUTIONS[name]


def timeframe_problem(base_interval: str, timeframe: str) -> str | None:
    """Why a condition on `timeframe` cannot run on bars at `base_interval`, or None when it
    can: the run's own resolution or a coarser multiple of it (the one statement of the rule)."""
    if base_interval == "tick":
        return "a tick run's signals run on its ticks: signal timeframes need bars"
    for name, what in ((base_interval, "base interval"), (timeframe, "timeframe")):
        if name not in RESOLUTIONS:
            return f"unknown {what} {name!r}; known: {', '.join(RESOLUTIONS)}"
    base, step = RESOLUTIONS[base_interval], RESOLUTIONS[timeframe]
    if step < base:
        return f"timeframe {timeframe} is finer than the bars' {base_interval}"
    if step % base:
        return f"timeframe {timeframe} is not a multiple of {base_interval}"
    return None


def check_timeframe(base_interval: str, timeframe: str) -> tuple[int, int]:
    """Return (base step, coarse step) in ns; ValueError unless timeframe is a multiple of base."""
    problem = timeframe_problem(base_interval, timeframe)
    if problem is not None:
        raise ValueError(problem)
    return RESOLUTIONS[base_interval], RESOLUTIONS[timeframe]


def last_closed(bars: Bars, base: int, coarse: Bars, step: int) -> np.ndarray:
    """For each base bar, the index of the last coarse bar closed by its close, or -1."""
    closes = np.asarray(coarse.ts, dtype=np.int64)
    closes = period_ends(closes, step) if is_calendar(step) else closes + step
    ends = np.asarray(bars.ts, dtype=np.int64) + base
    return np.searchsorted(closes, ends, side="right") - 1


def on_timeframe(
    bars: Bars, base_interval: str, timeframe: str, compute: Callable[[Bars], np.ndarray]
) -> np.ndarray:
    """Compute a series on `timeframe` bars and map it onto `bars` (at `base_interval`).

    ``on_timeframe(hourly, "1h", "4h", lambda b: sma_nb(b.close, 10))`` gives, at each hourly
    bar, the 10-bar SMA of 4h closes as of the last 4h bar that has closed by that hour's close.
    """
    base, step = check_timeframe(base_interval, timeframe)
    if step == base or len(bars) == 0:
        return np.asarray(compute(bars))
    coarse = resample(bars, step)
    values = np.asarray(compute(coarse))
    if values.shape != (len(coarse),):
        raise ValueError(f"compute returned shape {values.shape}, expected ({len(coarse)},)")
    idx = last_closed(bars, base, coarse, step)
    seen = idx >= 0
    if values.dtype == np.bool_:
        out = np.zeros(len(bars), dtype=np.bool_)
    else:
        out = np.full(len(bars), np.nan, dtype=np.float64)
    out[seen] = values[idx[seen]]
    return out
