"""Drive a run's Book along its clock chunk by chunk through the bar-loop kernels.

A one-symbol run advances by a step, ``step(book, i, end) -> next bar``: it runs bars [i, end)
and returns end, or an earlier bar where its records need room (they are doubled and the step
called again). Strategies step with signal_step; an order plan (a template) brings its own.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.book import Book, curves
from engine.nb.portfolio import simulate_portfolio_nb
from engine.nb.records import I_TRIPS
from engine.nb.simulate import simulate_chunk_nb
from engine.output import Cancelled, Progress

Step = Callable[[Book, int, int], int]


def run_chunks(
    book: Book,
    chunk_bars: int,
    on_progress: Callable[[Progress], bool] | None,
    step: Step | None = None,
) -> None:
    """Advance the run chunk by chunk along the clock, reporting progress.

    ``step`` advances a one-symbol run (default: the strategy's bar loop, signal_step).
    """
    peak, max_dd = -np.inf, 0.0
    n = book.clock.size
    for u0 in range(0, n, chunk_bars):
        u1 = min(u0 + chunk_bars, n)
        _advance(book, u0, u1, step or signal_step)
        if on_progress is None:
            continue
        eq = curves(book)[0][u0:u1]
        peak = max(peak, float(eq.max()))
        max_dd = max(max_dd, float((1.0 - eq / np.maximum.accumulate(np.maximum(eq, peak))).max()))
        metrics = {
            "equity": float(eq[-1]),
            "drawdown": float(1.0 - eq[-1] / peak),
            "max_drawdown": max_dd,
            "trade_count": float(book.istate[I_TRIPS]),
        }
        if on_progress(Progress(u1, n, metrics)) is False:
            raise Cancelled()


def signal_step(b: Book, i: int, end: int) -> int:
    """Run a strategy's one-symbol bar loop over bars [i, end); return where it stopped."""
    return simulate_chunk_nb(
        i, end, b.ts, *b.ohlc, *b.masks, b.dist, b.vol_scale, b.tiers, b.params, b.fstate,
        b.istate, b.sstate, b.pos, b.fills, b.trips, b.equity, b.cash, b.units,
    )  # fmt: skip


def _advance(b: Book, u0: int, u1: int, step: Step) -> None:
    """Run clock steps [u0, u1), growing the record arrays whenever the kernel asks for room."""
    if b.portfolio:
        t = u0
        while t < u1:
            t = simulate_portfolio_nb(
                t, u1, b.clock, b.bounds, b.ts, *b.ohlc, *b.masks, b.dist, b.vol_scale, b.tiers,
                b.params, b.fstate, b.istate, b.sstate, b.marks, b.pos, b.fills, b.trips,
                b.equity, b.cash, b.in_market, b.snap_steps, b.snap_units, b.snap_marks,
            )  # fmt: skip
            if t < u1:
                _grow(b)
        return
    i, end = int(b.starts[0]) + u0, int(b.starts[0]) + u1
    while i < end:
        i = step(b, i, end)
        if i < end:
            _grow(b)


def _grow(b: Book) -> None:
    """Double the fill and round-trip record arrays (the kernels read only what they wrote)."""
    for name in ("fills", "trips"):
        old = getattr(b, name)
        new = np.empty(2 * old.size, dtype=old.dtype)
        new[: old.size] = old
        setattr(b, name, new)
