"""Frame: the strategy-independent set-up of a run (bar arrays, volatility scale, clock)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.annualisation import bars_per_year
from engine.data.store import RESOLUTIONS, Bars
from engine.execution import Execution
from engine.nb.indicators import atr_nb
from engine.nb.portfolio import union_clock_nb
from engine.nb.risk import rolling_return_std_nb, vol_scale_nb


@dataclass
class Frame:
    """A run's set-up that depends on the bars and execution only, not on the strategy."""

    symbols: list[str]
    sizes: np.ndarray  # bars per symbol
    bounds: np.ndarray  # (S, 2): symbol s owns bar indices bounds[s, 0] .. bounds[s, 1] - 1
    starts: np.ndarray  # first traded bar index of each symbol
    ts: np.ndarray
    ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    vol_scale: np.ndarray
    tiers: np.ndarray
    clock: np.ndarray
    interval: int | None
    name: str | None
    ppy: float
    portfolio: bool
    risk_free_rate: float = 0.0  # annual, for Sharpe and Sortino
    versus: np.ndarray | None = None  # a benchmark symbol's close at each clock step


def prepare_frame(
    bars: dict[str, Bars],
    execution: Execution,
    trade_start_ns: int,
    resolution: str | None = None,
    periods_per_year: float | None = None,
    portfolio: bool | None = None,
    risk_free_rate: float = 0.0,
    benchmark: Bars | None = None,
) -> Frame:
    """Return the strategy-independent set-up of a run (a sweep builds it once for all variants)."""
    if resolution == "tick" and len(bars) > 1:
        raise ValueError("a tick run takes one symbol: ticks of several share no bar clock")
    portfolio = len(bars) > 1 if portfolio is None else portfolio
    interval = _interval(bars, resolution)
    name = resolution or _resolution_name(interval)
    symbols = sorted(bars)
    sizes = np.array([len(bars[s]) for s in symbols], dtype=np.int64)
    bounds = np.stack([np.cumsum(sizes) - sizes, np.cumsum(sizes)], axis=1)
    first_bars = [np.searchsorted(bars[s].ts, trade_start_ns, side="left") for s in symbols]
    starts = bounds[:, 0] + np.array(first_bars, dtype=np.int64)
    ts, ohlc, vol = _bar_arrays(bars, symbols, execution, portfolio)
    clock = clock_of(ts, bounds, starts)
    ppy = periods_per_year or bars_per_year(name, clock)[0]
    return Frame(
        symbols, sizes, bounds, starts, ts, ohlc, vol, execution.fees(), clock, interval, name,
        ppy, portfolio, risk_free_rate, None if benchmark is None else closes_at(benchmark, clock),
    )  # fmt: skip


def closes_at(bars: Bars, clock: np.ndarray) -> np.ndarray:
    """The close of the last bar opening at or before each clock time (before its first bar:
    its first close, a flat benchmark)."""
    idx = np.searchsorted(np.asarray(bars.ts, dtype=np.int64), clock, side="right") - 1
    return np.asarray(bars.close, dtype=np.float64)[np.maximum(idx, 0)]


def _interval(bars: dict[str, Bars], resolution: str | None) -> int | None:
    """Return the bar interval in ns: from the resolution name, else the smallest bar spacing
    (ticks have none)."""
    if resolution == "tick":
        return None
    if resolution is not None:
        return RESOLUTIONS[resolution]
    gaps = [int(np.diff(b.ts).min()) for b in bars.values() if len(b) > 1]
    return min(gaps) if gaps else None


def _resolution_name(interval: int | None) -> str | None:
    """Return the resolution name of an interval, if it has one."""
    return next((k for k, v in RESOLUTIONS.items() if v == interval), None)


def f64(x: np.ndarray) -> np.ndarray:
    """Return a contiguous float64 array."""
    return np.ascontiguousarray(x, dtype=np.float64)


def volatility_scale(bars: Bars, ex: Execution) -> np.ndarray:
    """Return the per-bar units multiplier of volatility targeting (ones when it is off)."""
    n = len(bars)
    if not ex.enable_volatility_adjustment or n == 0:
        return np.ones(n)
    close = f64(bars.close)
    if ex.volatility_mode == "stddev":
        realised = rolling_return_std_nb(close, ex.volatility_window)
    else:
        atr = atr_nb(f64(bars.high), f64(bars.low), close, ex.volatility_window)
        realised = atr / close
    return vol_scale_nb(realised, ex.target_volatility)


def _bar_arrays(
    bars: dict[str, Bars], symbols: list[str], ex: Execution, portfolio: bool
) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Return (ts, ohlc, volatility scale), each symbol's bars copied once (one symbol: none)."""
    vol = ex.enable_volatility_adjustment
    if not portfolio:  # one symbol: its own arrays, no copy
        b = bars[symbols[0]]
        ohlc = (f64(b.open), f64(b.high), f64(b.low), f64(b.close))
        scale = volatility_scale(b, ex) if vol else np.ones(1)
        return np.ascontiguousarray(b.ts, dtype=np.int64), ohlc, scale
    total = sum(len(bars[s]) for s in symbols)
    ts = np.empty(total, dtype=np.int64)
    ohlc = tuple(np.empty(total) for _ in range(4))
    scale = np.ones(total if vol else 1)
    lo = 0
    for s in symbols:
        b = bars[s]
        hi = lo + len(b)
        ts[lo:hi] = b.ts
        for out, col in zip(ohlc, (b.open, b.high, b.low, b.close), strict=True):
            out[lo:hi] = col
        if vol and hi > lo:
            scale[lo:hi] = volatility_scale(b, ex)
        lo = hi
    return ts, ohlc, scale


def clock_of(ts: np.ndarray, bounds: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Return the sorted union of the symbols' bar times from their first traded bar on."""
    parts = [ts[a:hi] for a, hi in zip(starts.tolist(), bounds[:, 1].tolist(), strict=True)]
    parts = [x for x in parts if x.size] or [ts[:0]]
    first = parts[0]
    if all(x.size == first.size and np.array_equal(x, first) for x in parts[1:]):
        return first  # one symbol, or symbols on the same bar times: sorted and unique already
    lo, hi = starts.astype(np.int64), bounds[:, 1].astype(np.int64)
    clock, ordered = union_clock_nb(ts, lo, hi)  # a k-way merge of the sorted runs
    if ordered:
        return clock.copy() if clock.size * 2 < ts.size else clock  # free the merge buffer
    merged = np.sort(np.concatenate(parts), kind="stable")  # a symbol's times out of order
    keep = np.ones(merged.size, dtype=np.bool_)
    keep[1:] = merged[1:] != merged[:-1]
    return merged[keep]
