"""Book: a run's account (signal arrays, kernel state, curves and records), set up from a Frame."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from engine.data.store import Bars
from engine.execution import Execution, kernel_params
from engine.frame import Frame, f64
from engine.nb.indicators import atr_nb
from engine.nb.records import (
    D_STOP,
    D_TP,
    D_TRAIL,
    FILL_DTYPE,
    K_HAS_LEVELS,
    K_MMR,
    K_STOP_PCT,
    K_TP_PCT,
    K_TP_R,
    K_TRAIL_PCT,
    S_CURSOR,
    TRIP_DTYPE,
    new_state,
)
from engine.nb.risk import atr_distances_nb
from engine.strategy.compile import StrategyError
from engine.strategy.evaluate import evaluate
from engine.strategy.form import Exits, Strategy
from engine.strategy.timeframe import timeframe_problem

Masks4 = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

FIRST_RECORDS = 4_096  # record arrays start at least this long and double when a chunk needs room
MOST_FIRST_RECORDS = 65_536  # and at most this long (9 MB), however many signals there are


@dataclass
class Book:
    """The account of one run: every symbol's arrays (concatenated), kernel state and records."""

    symbols: list[str]
    bounds: np.ndarray  # (S, 2): symbol s owns bar indices bounds[s, 0] .. bounds[s, 1] - 1
    starts: np.ndarray  # first traded bar index of each symbol
    ts: np.ndarray
    ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    masks: Masks4
    dist: np.ndarray
    vol_scale: np.ndarray
    tiers: np.ndarray
    params: np.ndarray
    clock: np.ndarray
    fstate: np.ndarray
    istate: np.ndarray
    sstate: np.ndarray
    pos: np.ndarray
    fills: np.ndarray
    trips: np.ndarray
    equity: np.ndarray  # per clock step (one-symbol loop: per bar)
    cash: np.ndarray
    in_market: np.ndarray
    snap_steps: np.ndarray  # clock steps of the exposure snapshots
    snap_units: np.ndarray  # (snapshots, S) net signed units
    snap_marks: np.ndarray  # (snapshots, S) last price
    marks: np.ndarray  # each symbol's last price
    portfolio: bool
    units: np.ndarray | None = None  # one-symbol loop: net units per bar
    risk_free_rate: float = 0.0  # annual, for Sharpe and Sortino
    versus: np.ndarray | None = None  # a benchmark symbol's close at each clock step


class _Scratch(threading.local):
    """One thread's curve and record arrays, reused by its run_metrics calls (a sweep's variants).

    The kernels write every curve entry of a run before anything reads it and only the records
    they append are read, so reused arrays give the same metrics as fresh zeros; reuse saves
    allocating and zeroing ~24 bytes a bar for every variant.
    """

    def __init__(self) -> None:
        """Start without arrays."""
        self.curves: np.ndarray = np.empty((3, 0))
        self.fills: np.ndarray = np.empty(0, FILL_DTYPE)
        self.trips: np.ndarray = np.empty(0, TRIP_DTYPE)

    def take(self, steps: int, first: int) -> tuple[np.ndarray, ...]:
        """Return (equity, cash, units, fills, trips) of at least these sizes (contents stale)."""
        if self.curves.shape[1] != steps:
            self.curves = np.empty((3, steps))
        if self.fills.size < first:
            self.fills = np.empty(first, FILL_DTYPE)
        if self.trips.size < first:
            self.trips = np.empty(first, TRIP_DTYPE)
        return (*self.curves, self.fills, self.trips)


SCRATCH = _Scratch()


def strategy_exits(strategy: Strategy) -> Exits:
    """Return the strategy's protective exits."""
    return strategy.exits or Exits()


def strategy_masks(strategy: Strategy, bars: Bars, interval: str | None) -> Masks4:
    """Return contiguous (long_entry, long_exit, short_entry, short_exit) masks from evaluate()."""
    masks = evaluate(strategy, bars, interval)
    return tuple(np.ascontiguousarray(m, dtype=np.bool_) for m in masks)  # type: ignore[return-value]


def _check_timeframes(strategy: Strategy, interval: str | None) -> None:
    """Reject a condition timeframe the run's bars cannot serve (engine.strategy.timeframe)."""
    for c in strategy.conditions:
        problem = c.timeframe and interval and timeframe_problem(interval, c.timeframe)
        if problem:
            raise StrategyError(f"{c.path}.timeframe", problem)


def needs_atr(ex: Execution, exits: Exits) -> bool:
    """Return whether any stop, target or trailing stop is a multiple of ATR."""
    levels = (exits.stop_loss, exits.take_profit, exits.trailing_stop)
    seed_stop = exits.stop_loss is None and (ex.atr_multiplier or 0.0) > 0
    return seed_stop or any(lv is not None and lv.kind == "atr" for lv in levels)


def distances(bars: Bars, ex: Execution, exits: Exits) -> np.ndarray:
    """Return the (n, 3) ATR-based stop, target and trailing distances per signal bar (NaN: none)."""
    n = len(bars)
    if n == 0 or not needs_atr(ex, exits):
        return np.full((n, 3), np.nan)
    multiples = np.full(3, np.nan)
    if exits.stop_loss is None and (ex.atr_multiplier or 0.0) > 0:
        multiples[D_STOP] = ex.atr_multiplier
    levels = ((D_STOP, exits.stop_loss), (D_TP, exits.take_profit), (D_TRAIL, exits.trailing_stop))
    for col, level in levels:
        if level is not None and level.kind == "atr":
            multiples[col] = level.value
    atr = atr_nb(f64(bars.high), f64(bars.low), f64(bars.close), ex.atr_period)
    return atr_distances_nb(atr, multiples)


def new_book(
    frame: Frame,
    bars: dict[str, Bars],
    strategy: Strategy,
    ex: Execution,
    exits: Exits,
    capital: float,
    max_points: int,
    scratch: _Scratch | None = None,
) -> Book:
    """Compute every symbol's signals into the run's arrays and allocate state and records.

    With ``scratch`` (one-symbol runs of run_metrics) the curves and records are reused arrays.
    """
    _check_timeframes(strategy, frame.name)
    symbols, portfolio = frame.symbols, frame.portfolio
    masks, dist = _signal_arrays(frame, bars, strategy, ex, exits)
    params = kernel_params(ex, exits, capital, frame.name, frame.interval, len(bars))
    pct = params[[K_STOP_PCT, K_TP_PCT, K_TP_R, K_TRAIL_PCT, K_MMR]]  # K_MMR: liquidation level
    # ATR levels may be NaN on every bar (too few bars): the loop then checks in vain, no harm.
    params[K_HAS_LEVELS] = float(bool(np.isfinite(pct).any()) or needs_atr(ex, exits))
    clock = frame.clock
    if clock.size == 0:
        raise ValueError("no bars at or after trade_start_ns")
    fstate, istate, sstate, pos = new_state(capital, ex.max_open_positions, len(symbols))
    sstate[:, S_CURSOR] = frame.starts
    sample = sample_indices(clock.size, max_points)
    steps = clock.size if portfolio else frame.ts.size
    first = first_records(masks, int(frame.sizes.sum())) + pos.shape[0] * 3 + 3 * len(symbols) + 2
    if scratch is not None and not portfolio:
        equity, cash, units, fills, trips = scratch.take(steps, first)
        in_market = np.zeros(0, dtype=np.bool_)  # the one-symbol loop derives it from units
    elif not portfolio:  # the loop writes every bar's curves and reads only the records it wrote
        equity, cash, units = np.empty(steps), np.empty(steps), np.empty(steps)
        fills, trips = np.empty(first, FILL_DTYPE), np.empty(first, TRIP_DTYPE)
        in_market = np.zeros(clock.size, dtype=np.bool_)
    else:
        equity, cash, fills, trips = (
            np.zeros(steps), np.zeros(steps), np.zeros(first, FILL_DTYPE),
            np.zeros(first, TRIP_DTYPE),
        )  # fmt: skip
        units = None
        in_market = np.zeros(clock.size, dtype=np.bool_)
    return Book(
        symbols, frame.bounds, frame.starts, frame.ts, frame.ohlc, masks, dist, frame.vol_scale,
        frame.tiers, params, clock, fstate, istate, sstate, pos, fills, trips, equity, cash,
        in_market, sample, np.zeros((sample.size, len(symbols))),
        np.zeros((sample.size, len(symbols))), np.zeros(len(symbols)), portfolio, units,
        frame.risk_free_rate, frame.versus,
    )  # fmt: skip


def first_records(masks: Masks4, bars: int) -> int:
    """Return how long the record arrays start: two fills for each bar that may enter (its entry
    and its exit), so that a run seldom stops to grow them; within [FIRST_RECORDS,
    MOST_FIRST_RECORDS] and never more than two a bar."""
    entries = int(np.count_nonzero(masks[0])) + int(np.count_nonzero(masks[2]))
    return min(max(FIRST_RECORDS, 2 * entries), MOST_FIRST_RECORDS, 2 * bars + 2)


def plan_book(
    frame: Frame,
    params: np.ndarray,
    capital: float,
    max_points: int,
    state: tuple[int, int],
    rows: int,
    first: int,
) -> Book:
    """Return the Book of an order plan (a template) on the frame's one symbol, without signals.

    The plan's kernel reads ``params`` and keeps the account's state slots followed by its own,
    ``state`` = (float slots, int slots) in all; ``rows`` position rows hold what is open at the
    end; the records start ``first`` long.
    """
    if frame.portfolio:
        raise ValueError("an order plan trades one symbol")
    if frame.clock.size == 0:
        raise ValueError("no bars at or after trade_start_ns")
    fstate, istate, sstate, pos = new_state(capital, rows)
    fstate = np.concatenate([fstate, np.zeros(state[0] - fstate.size)])
    istate = np.concatenate([istate, np.zeros(state[1] - istate.size, dtype=np.int64)])
    sstate[:, S_CURSOR] = frame.starts
    sample = sample_indices(frame.clock.size, max_points)
    n, none = frame.ts.size, np.zeros(0, dtype=np.bool_)
    return Book(
        frame.symbols, frame.bounds, frame.starts, frame.ts, frame.ohlc, (none,) * 4,
        np.full((1, 3), np.nan), frame.vol_scale, frame.tiers, params, frame.clock, fstate,
        istate, sstate, pos, np.zeros(first, FILL_DTYPE), np.zeros(first, TRIP_DTYPE),
        np.zeros(n), np.zeros(n), np.zeros(frame.clock.size, dtype=np.bool_), sample,
        np.zeros((sample.size, 1)), np.zeros((sample.size, 1)), np.zeros(1), False, np.zeros(n),
        frame.risk_free_rate, frame.versus,
    )  # fmt: skip


def _signal_arrays(
    frame: Frame, bars: dict[str, Bars], strategy: Strategy, ex: Execution, exits: Exits
) -> tuple[Masks4, np.ndarray]:
    """Return the strategy's (masks, distances) over the frame's bars (one symbol: no copy)."""
    atr = needs_atr(ex, exits)
    if not frame.portfolio:
        b = bars[frame.symbols[0]]
        dist = distances(b, ex, exits) if atr else np.full((1, 3), np.nan)
        return _masks(strategy, b, ex, frame.name), dist
    total = int(frame.sizes.sum())
    masks = tuple(np.zeros(total, dtype=np.bool_) for _ in range(4))
    dist = np.full((total, 3) if atr else (1, 3), np.nan)
    for s, (lo, hi) in zip(frame.symbols, frame.bounds.tolist(), strict=True):
        if hi > lo:
            for out, m in zip(masks, _masks(strategy, bars[s], ex, frame.name), strict=True):
                out[lo:hi] = m
            if atr:
                dist[lo:hi] = distances(bars[s], ex, exits)
    return masks, dist  # type: ignore[return-value]


def _masks(strategy: Strategy, bars: Bars, ex: Execution, name: str | None) -> Masks4:
    """Return the entry and exit masks, short entries off unless allow_short."""
    le, lx, se, sx = strategy_masks(strategy, bars, name)
    if not ex.allow_short:
        se = np.zeros(len(bars), dtype=np.bool_)
    return le, lx, se, sx


def curves(b: Book) -> tuple[np.ndarray, np.ndarray]:
    """Return (equity, cash) per clock step."""
    if b.portfolio:
        return b.equity, b.cash
    start = int(b.starts[0])
    return b.equity[start:], b.cash[start:]


def exposure_arrays(b: Book) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (in market per step, net units and last price per snapshot and symbol)."""
    if b.portfolio:
        return b.in_market, b.snap_units, b.snap_marks
    start = int(b.starts[0])
    units = b.units[start:]  # type: ignore[index]
    return units != 0, units[b.snap_steps][:, None], b.ohlc[3][start + b.snap_steps][:, None]


def sample_indices(n: int, max_points: int) -> np.ndarray:
    """Return the last index of each of at most max_points equal buckets, ending at n - 1."""
    size = -(-n // max_points)
    return np.minimum(np.arange(size - 1, n + size - 1, size), n - 1)
