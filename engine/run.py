"""run_backtest: check inputs, compute signals, run the bar-loop kernel chunk by chunk, report.

Semantics (the README copies this section):

Bars and symbols

- ``bars`` maps symbol -> Bars at the run's resolution, including warm-up history before
  ``trade_start_ns``. Indicators are computed over the whole array; orders are decided only on
  bars with ``ts >= trade_start_ns``. Masks come from ``engine.strategy.evaluate``; a condition
  on a coarser timeframe sees only closed coarser bars there, and a timeframe finer than the
  run's bars (or not a multiple of them) is rejected with the condition's path.
- Several symbols (1-100) form one portfolio: one cash balance, one account, on one clock, the
  sorted union of the symbols' bar times from trade_start_ns on. A symbol without a bar at a
  clock time keeps its last price (its positions are valued at it) and does nothing then; its
  queued orders wait for its next bar. Within a clock time the phases run in order (fills at the
  open: every symbol's exits, then every symbol's entries; protective exits and close decisions;
  close-mode fills: exits, then entries; marking), each phase in sorted symbol order, so an exit
  frees cash for entries at the same time and the first symbol in sort order sizes first.
- Allocation (an equal risk budget per symbol): ``fraction`` sizing spends size x equity /
  number of symbols (each symbol's equal share of the account); ``risk`` sizing risks
  max_risk_per_trade x the whole account's equity on every entry, whichever symbol it is in, so
  every symbol has the same budget per trade; ``units`` and ``amount`` are per entry. Account-wide:
  max_open_positions, max_trades_per_day, min_balance_threshold and the loss cooldowns (whose
  windows count clock steps). A one-symbol run uses a loop specialised for speed with the same
  rules (tests hold the two equal, byte for byte).

Orders and fills

- Signals are evaluated on a bar's close. ``fill="next_open"`` (default): an order decided at bar
  i fills at bar i+1's open; no order is decided on the last bar. ``fill="close"``: it fills at
  bar i's close (for comparisons with same-bar-close engines).
- Long entries need the strategy's long rules; short entries need ``allow_short`` and short rules.
  A bar where both the long and the short entry hold queues no entry. A symbol's positions are
  all on one side: an entry for the other side is skipped while positions of the first side are
  open (an exit decided on the same bar fills first, so exit-then-reverse works).
- Fees (engine.fees): ``none``; ``fixed_bps``: fee_bps/1e4 of each fill's notional;
  ``tiered_maker_taker``: maker and taker rates of the tier the account's traded notional over
  the 30 days before the fill reaches (``fee_tiers`` or a Binance-like default table);
  ``match_exchange``: ``venue``'s base rates from engine/venues.json. Market orders, stops,
  targets and liquidations pay the taker rate, resting limit orders the maker rate. Fees are paid
  from cash and reported per fill (``commission``, ``liquidity``) and per round trip. Slippage
  moves every fill price slippage_bps/1e4 against the trader (buys up, sells down), stop, target
  and liquidation fills included.
- Cash and margin: an entry pays units*price/leverage of margin (+fee) from cash; a position is
  worth its margin plus its unrealised pnl, units*(price/leverage + side*(mark - entry)). At
  leverage 1 a long pays its notional and a short sets the same aside as collateral. Equity =
  cash + positions at each symbol's last price; no interest is charged.
- Liquidation (isolated margin, one position at a time): a position is liquidated when its
  margin plus unrealised pnl falls to maintenance_margin_rate x its notional at that price
  (default rate 0.5 / leverage when leverage > 1; at leverage 1 only an explicit rate
  liquidates). That price is entry*(1 - 1/leverage)/(1 - rate) for a long and
  entry*(1 + 1/leverage)/(1 + rate) for a short; it is checked like a stop (the tightest of
  stop, trailing stop and liquidation applies): a bar reaching it closes the position there, a
  bar opening beyond it closes at the open (the loss may then exceed the margin; the account
  pays it). The round trip has exit_reason ``liquidation`` and ``liquidated: true``; the logs
  carry a line for it.

Protective exits (per position, from ``strategy.exits``)

- Levels are distances from the entry fill price: ``atr`` = value * ATR(atr_period) at the
  signal bar, ``percent`` = value * entry price, take-profit ``r`` = value * the initial risk
  distance. Without ``stop_loss``, seed 001's stop applies: atr_multiplier * ATR(atr_period)
  (none when atr_multiplier is 0; none while ATR is undefined). The trailing stop trails the best
  price (high for longs, low for shorts) reached on bars *before* the one being checked
  (intra-bar order is unknown, so a bar's own high never tightens its own stop).
- Checked on every bar a position is open, the fill bar included (after its open). The
  effective stop is the tighter of the fixed and trailing stop (reason ``stop`` or
  ``trailing_stop``). On a bar after the fill bar, an open beyond the stop fills at the open, and
  an open beyond the target fills at the open (``take_profit``). Otherwise a range touching the
  stop fills at the stop, a range touching the target fills at the target; both touched on one
  bar -> the stop fills and the round trip is flagged ``both_hit``.
- Max hold: the smaller non-null of Execution.max_hold_bars and exits.max_hold_bars. A position
  that has been held that many bars (next_open: the fill bar counts as one; close: bars after
  the entry bar) at a bar's close exits with the next fill (``max_hold``).
- An exit signal for a side closes every open position of that side with the next fill
  (``signal``). A signal exit wins over max_hold on the same bar. Protective exits are checked
  before the bar's close decides anything.

Sizing (at the fill, with equity = cash + open positions at the fill's raw price)

- ``risk`` (seed 001's default): units = max_risk_per_trade * equity / d, with d the initial
  risk distance per unit (the nearer of the stop and the trailing stop); no stop distance -> the
  entry is skipped. ``fraction``: units = size * equity / S * leverage / (price * (1 + fee *
  leverage)) with S symbols, the fee-adjusted rule of backtesting.py, so size=1.0 is all in. ``units``: size units. ``amount``: size / price.
- When enable_volatility_adjustment is on, units are multiplied by
  min(1, target_volatility / realised volatility) at the signal bar; realised volatility is the
  sample stddev of the last volatility_window close-to-close returns (``stddev``) or
  ATR(volatility_window) / close (``atr``); undefined or zero -> no adjustment.
- Then, in every sizing mode: capped by max_units_per_trade, max_trade_amount / price and the
  buying power, cash * leverage / (price * (1 + fee * leverage)) units (margin and fee must fit
  in cash); floored to a multiple of lot_size (0 = fractional); skipped if the result is 0 or its
  notional is below min_trade_amount.

Entry gates (checked at the fill; a refused entry is counted in its symbol's log line)

- min_balance_threshold: no entry while equity < threshold * the initial capital.
- max_open_positions: up to that many concurrent positions; each repeated entry signal adds one
  (pyramiding), each with its own stop, target and trailing stop.
- max_trades_per_day: entries filled per UTC calendar day.
- Cooldowns, two tiers. With a cooldown_config entry for the run's interval (the resolution
  name, e.g. "1h"): when a losing round trip (pnl < 0) closes at bar j and at least
  short_loss_limit losing round trips closed on bars j-short_window_bars+1 .. j, entries are
  refused through bar j + short_window_bars; the long tier likewise with its own keys. Without
  an entry for the interval, the deprecated keys apply (None -> trading_defaults.json: 24, 3, 3):
  the short tier counts daily_momentum_limit losses within one day's bars, the long tier
  weekly_momentum_limit losses within a week's bars, and each blocks entries for cooldown_bars
  bars. A limit, window or duration of 0 switches its tier off.

Results

- Round trips carry symbol, side, entry/exit time and price, quantity, pnl (net of both fees),
  return (pnl / (entry margin + entry fee)), r_multiple (pnl / (units * initial risk distance),
  None without one), commission (both fees), exit_reason, both_hit and liquidated. Fills carry
  commission and liquidity (``maker`` or ``taker``), in time order across symbols.
- Positions open at the end stay open: valued in the final equity, listed in ``open_positions``.
- Metrics (engine.stats) are computed on the full-resolution equity of the trading period, annualised with ``periods_per_year`` (default 365 days over the bar interval; pass 252
  for exchange calendars of daily bars). ``equity`` and ``exposure`` are downsampled to at most
  ``max_points`` points (the last point of each bucket, always including the final bar); each
  equity point carries the total net and gross exposure (sum of units * last price, signed and
  absolute), ``exposure`` each symbol's quantity, value and weight.
- on_progress is called after each chunk of ``chunk_bars`` clock steps with running
  equity, drawdown, max_drawdown and trade_count; returning False raises Cancelled. The same
  inputs give identical outputs whatever the chunk size; the run is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.data.store import RESOLUTIONS, Bars
from engine.execution import Execution, kernel_params
from engine.nb.indicators import atr_nb
from engine.nb.orders import value_at_nb
from engine.nb.portfolio import simulate_portfolio_nb, union_clock_nb
from engine.nb.records import (
    D_STOP,
    D_TP,
    D_TRAIL,
    F_CASH,
    FILL_DTYPE,
    I_FILLS,
    I_TRIPS,
    K_HAS_LEVELS,
    K_MMR,
    K_STOP_PCT,
    K_TP_PCT,
    K_TP_R,
    K_TRAIL_PCT,
    P_ENTRY,
    P_ENTRY_BAR,
    P_SIDE,
    P_UNITS,
    REASON_LIQUIDATION,
    REASON_NAMES,
    S_CURSOR,
    S_SKIPPED,
    SIDE_BUY,
    TRIP_DTYPE,
    new_state,
)
from engine.nb.risk import rolling_return_std_nb, vol_scale_nb
from engine.nb.simulate import simulate_chunk_nb
from engine.stats import compute_metrics
from engine.stats import periods_per_year as default_periods_per_year
from engine.strategy.catalog import SIGNALS
from engine.strategy.compile import StrategyError
from engine.strategy.evaluate import evaluate
from engine.strategy.form import Condition, Exits, Level, Strategy

__all__ = [
    "BacktestOutput", "Cancelled", "Execution", "Frame", "Progress", "prepare_frame",
    "run_backtest", "run_metrics", "warm_up",
]  # fmt: skip


@dataclass
class Progress:
    """Progress reported between chunks; metrics hold equity, drawdown and trade_count."""

    bars_done: int
    bars_total: int
    metrics: dict[str, float]


class Cancelled(Exception):
    """Raised when on_progress asks the run to stop."""


@dataclass
class BacktestOutput:
    """Everything a finished run reports."""

    metrics: dict[str, float | None]
    equity: list[dict]
    trades: list[dict]
    round_trips: list[dict]
    exposure: list[dict]
    logs: list[str]
    bars: int
    open_positions: list[dict] = field(default_factory=list)


Masks4 = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
DAY_NS = 86_400 * 10**9
FIRST_RECORDS = 4_096  # record arrays start this long and double when a chunk needs room


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


def run_backtest(
    bars: dict[str, Bars],
    strategy: Strategy,
    execution: Execution,
    capital: float,
    trade_start_ns: int,
    *,
    on_progress: Callable[[Progress], bool] | None = None,
    chunk_bars: int = 20_000,
    max_points: int = 2_000,
    resolution: str | None = None,
    periods_per_year: float | None = None,
) -> BacktestOutput:
    """Backtest a strategy over one or more symbols; see the module docstring for semantics."""
    return _run(
        bars, strategy, execution, capital, trade_start_ns, on_progress, chunk_bars, max_points,
        resolution, periods_per_year, portfolio=len(bars) > 1,
    )  # fmt: skip


def _run(
    bars: dict[str, Bars],
    strategy: Strategy,
    execution: Execution,
    capital: float,
    trade_start_ns: int,
    on_progress: Callable[[Progress], bool] | None,
    chunk_bars: int,
    max_points: int,
    resolution: str | None,
    periods_per_year: float | None,
    portfolio: bool,
) -> BacktestOutput:
    """Run with the portfolio loop or, for one symbol, the one-symbol loop (the same rules)."""
    exits = strategy_exits(strategy)
    _check_inputs(bars, execution, exits, capital, chunk_bars, max_points, periods_per_year)
    frame = prepare_frame(bars, execution, trade_start_ns, resolution, periods_per_year, portfolio)
    book = _book(frame, bars, strategy, execution, exits, capital, max_points)
    _simulate(book, chunk_bars, on_progress)
    return _output(book, frame.ppy)


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


def prepare_frame(
    bars: dict[str, Bars],
    execution: Execution,
    trade_start_ns: int,
    resolution: str | None = None,
    periods_per_year: float | None = None,
    portfolio: bool | None = None,
) -> Frame:
    """Return the strategy-independent set-up of a run (a sweep builds it once for all variants)."""
    portfolio = len(bars) > 1 if portfolio is None else portfolio
    interval = _interval(bars, resolution)
    name = resolution or _resolution_name(interval)
    symbols = sorted(bars)
    sizes = np.array([len(bars[s]) for s in symbols], dtype=np.int64)
    bounds = np.stack([np.cumsum(sizes) - sizes, np.cumsum(sizes)], axis=1)
    first_bars = [np.searchsorted(bars[s].ts, trade_start_ns, side="left") for s in symbols]
    starts = bounds[:, 0] + np.array(first_bars, dtype=np.int64)
    ts, ohlc, vol = _bar_arrays(bars, symbols, execution, portfolio)
    clock = _clock(ts, bounds, starts)
    step = interval or (int(np.median(np.diff(clock))) if clock.size > 1 else DAY_NS)
    ppy = periods_per_year or default_periods_per_year(step)
    return Frame(
        symbols, sizes, bounds, starts, ts, ohlc, vol, execution.fees(), clock, interval, name,
        ppy, portfolio,
    )  # fmt: skip


def run_metrics(
    bars: dict[str, Bars],
    strategy: Strategy,
    execution: Execution,
    capital: float,
    trade_start_ns: int,
    *,
    frame: Frame | None = None,
    resolution: str | None = None,
    periods_per_year: float | None = None,
) -> dict[str, float | None]:
    """Return run_backtest(...).metrics without building result lists, curves or logs.

    ``frame`` is prepare_frame() of the same bars, execution, trade_start_ns, resolution and
    periods_per_year, reused across calls (a sweep); the run is the same steps as run_backtest.
    """
    exits = strategy_exits(strategy)
    _check_inputs(bars, execution, exits, capital, 1, 2, periods_per_year)
    if frame is None:
        frame = prepare_frame(bars, execution, trade_start_ns, resolution, periods_per_year)
    book = _book(frame, bars, strategy, execution, exits, capital, 2, _SCRATCH)
    _simulate(book, 1 << 62, None)
    equity, _ = _curves(book)
    _SCRATCH.fills, _SCRATCH.trips = book.fills, book.trips  # keep them if they grew
    return _metrics(book, equity, _exposure_arrays(book)[0], frame.ppy)


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


_SCRATCH = _Scratch()


def _check_inputs(
    bars: dict[str, Bars],
    ex: Execution,
    exits: Exits,
    capital: float,
    chunk_bars: int,
    max_points: int,
    ppy: float | None,
) -> None:
    """Raise ValueError for inputs the engine cannot run."""
    ex.validate()
    checks = [
        (bool(bars), "at least one symbol is required"),
        (capital > 0, "capital must be positive"),
        (chunk_bars >= 1 and max_points >= 2, "chunk_bars >= 1 and max_points >= 2"),
        (ppy is None or ppy > 0, "periods_per_year must be > 0"),
        (exits.max_hold_bars is None or exits.max_hold_bars >= 1, "max_hold_bars must be >= 1"),
        (_level_ok(exits.stop_loss, ("atr", "percent")), "exits.stop_loss: atr or percent > 0"),
        (_level_ok(exits.take_profit, ("atr", "percent", "r")), "exits.take_profit: value > 0"),
        (_level_ok(exits.trailing_stop, ("atr", "percent")), "exits.trailing_stop: atr or percent"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _level_ok(level: Level | None, kinds: tuple[str, ...]) -> bool:
    """Return whether a level is absent, or of an allowed kind with a positive value."""
    return level is None or (level.kind in kinds and level.value > 0)


def strategy_exits(strategy: Strategy) -> Exits:
    """Return the strategy's protective exits."""
    return strategy.exits or Exits()


def strategy_masks(strategy: Strategy, bars: Bars, interval: str | None) -> Masks4:
    """Return contiguous (long_entry, long_exit, short_entry, short_exit) masks from evaluate()."""
    masks = evaluate(strategy, bars, interval)
    return tuple(np.ascontiguousarray(m, dtype=np.bool_) for m in masks)  # type: ignore[return-value]


def _interval(bars: dict[str, Bars], resolution: str | None) -> int | None:
    """Return the bar interval in ns: from the resolution name, else the smallest bar spacing."""
    if resolution is not None:
        return RESOLUTIONS[resolution]
    gaps = [int(np.diff(b.ts).min()) for b in bars.values() if len(b) > 1]
    return min(gaps) if gaps else None


def _resolution_name(interval: int | None) -> str | None:
    """Return the resolution name of an interval, if it has one."""
    return next((k for k, v in RESOLUTIONS.items() if v == interval), None)


def _check_timeframes(strategy: Strategy, interval: int | None) -> None:
    """Reject a condition timeframe finer than the run's bars or not a multiple of them."""
    for c in strategy.conditions:
        if c.timeframe is None or interval is None:
            continue
        step = RESOLUTIONS[c.timeframe]
        if step < interval or step % interval:
            raise StrategyError(
                f"{c.path}.timeframe",
                "must be the run's resolution or a coarser multiple of it",
            )


def _f64(x: np.ndarray) -> np.ndarray:
    """Return a contiguous float64 array."""
    return np.ascontiguousarray(x, dtype=np.float64)


def needs_atr(ex: Execution, exits: Exits) -> bool:
    """Return whether any stop, target or trailing stop is a multiple of ATR."""
    levels = (exits.stop_loss, exits.take_profit, exits.trailing_stop)
    seed_stop = exits.stop_loss is None and (ex.atr_multiplier or 0.0) > 0
    return seed_stop or any(lv is not None and lv.kind == "atr" for lv in levels)


def distances(bars: Bars, ex: Execution, exits: Exits) -> np.ndarray:
    """Return the (n, 3) ATR-based stop, target and trailing distances per signal bar (NaN: none)."""
    n = len(bars)
    dist = np.full((n, 3), np.nan)
    if n == 0 or not needs_atr(ex, exits):
        return dist
    atr = atr_nb(_f64(bars.high), _f64(bars.low), _f64(bars.close), ex.atr_period)
    if exits.stop_loss is None and (ex.atr_multiplier or 0.0) > 0:
        dist[:, D_STOP] = ex.atr_multiplier * atr
    for col, level in ((D_STOP, exits.stop_loss), (D_TP, exits.take_profit)):
        if level is not None and level.kind == "atr":
            dist[:, col] = level.value * atr
    if exits.trailing_stop is not None and exits.trailing_stop.kind == "atr":
        dist[:, D_TRAIL] = exits.trailing_stop.value * atr
    return dist


def volatility_scale(bars: Bars, ex: Execution) -> np.ndarray:
    """Return the per-bar units multiplier of volatility targeting (ones when it is off)."""
    n = len(bars)
    if not ex.enable_volatility_adjustment or n == 0:
        return np.ones(n)
    close = _f64(bars.close)
    if ex.volatility_mode == "stddev":
        realised = rolling_return_std_nb(close, ex.volatility_window)
    else:
        atr = atr_nb(_f64(bars.high), _f64(bars.low), close, ex.volatility_window)
        realised = atr / close
    return vol_scale_nb(realised, ex.target_volatility)


def _book(
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
    _check_timeframes(strategy, frame.interval)
    symbols, portfolio = frame.symbols, frame.portfolio
    masks, dist = _signal_arrays(frame, bars, strategy, ex, exits)
    params = kernel_params(ex, exits, capital, frame.name, frame.interval, len(bars))
    pct = params[[K_STOP_PCT, K_TP_PCT, K_TP_R, K_TRAIL_PCT, K_MMR]]  # K_MMR: liquidation level
    params[K_HAS_LEVELS] = float(bool(np.isfinite(pct).any() or np.isfinite(dist).any()))
    clock = frame.clock
    if clock.size == 0:
        raise ValueError("no bars at or after trade_start_ns")
    fstate, istate, sstate, pos = new_state(capital, ex.max_open_positions, len(symbols))
    sstate[:, S_CURSOR] = frame.starts
    sample = sample_indices(clock.size, max_points)
    steps = clock.size if portfolio else frame.ts.size
    first = min(FIRST_RECORDS, 2 * int(frame.sizes.sum()) + 2) + pos.shape[0] * 3
    first += 3 * len(symbols) + 2
    if scratch is not None and not portfolio:
        equity, cash, units, fills, trips = scratch.take(steps, first)
        in_market = np.zeros(0, dtype=np.bool_)  # the one-symbol loop derives it from units
    else:
        equity, cash, fills, trips = (
            np.zeros(steps), np.zeros(steps), np.zeros(first, FILL_DTYPE),
            np.zeros(first, TRIP_DTYPE),
        )  # fmt: skip
        units = None if portfolio else np.zeros(frame.ts.size)
        in_market = np.zeros(clock.size, dtype=np.bool_)
    return Book(
        symbols, frame.bounds, frame.starts, frame.ts, frame.ohlc, masks, dist, frame.vol_scale,
        frame.tiers, params, clock, fstate, istate, sstate, pos, fills, trips, equity, cash,
        in_market, sample, np.zeros((sample.size, len(symbols))),
        np.zeros((sample.size, len(symbols))), np.zeros(len(symbols)), portfolio, units,
    )  # fmt: skip


def _bar_arrays(
    bars: dict[str, Bars], symbols: list[str], ex: Execution, portfolio: bool
) -> tuple[np.ndarray, tuple, np.ndarray]:
    """Return (ts, ohlc, volatility scale), each symbol's bars copied once (one symbol: none)."""
    vol = ex.enable_volatility_adjustment
    if not portfolio:  # one symbol: its own arrays, no copy
        b = bars[symbols[0]]
        ohlc = (_f64(b.open), _f64(b.high), _f64(b.low), _f64(b.close))
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


def _clock(ts: np.ndarray, bounds: np.ndarray, starts: np.ndarray) -> np.ndarray:
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


def _simulate(book: Book, chunk_bars: int, on_progress: Callable[[Progress], bool] | None) -> None:
    """Advance the run chunk by chunk along the clock, reporting progress."""
    peak, max_dd = -np.inf, 0.0
    n = book.clock.size
    for u0 in range(0, n, chunk_bars):
        u1 = min(u0 + chunk_bars, n)
        _advance(book, u0, u1)
        if on_progress is None:
            continue
        eq = _curves(book)[0][u0:u1]
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


def _advance(b: Book, u0: int, u1: int) -> None:
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
        i = simulate_chunk_nb(
            i, end, b.ts, *b.ohlc, *b.masks, b.dist, b.vol_scale, b.tiers, b.params, b.fstate,
            b.istate, b.sstate, b.pos, b.fills, b.trips, b.equity, b.cash, b.units,
        )  # fmt: skip
        if i < end:
            _grow(b)


def _grow(b: Book) -> None:
    """Double the fill and round-trip record arrays."""
    for name in ("fills", "trips"):
        old = getattr(b, name)
        new = np.zeros(2 * old.size, dtype=old.dtype)
        new[: old.size] = old
        setattr(b, name, new)


def _curves(b: Book) -> tuple[np.ndarray, np.ndarray]:
    """Return (equity, cash) per clock step."""
    if b.portfolio:
        return b.equity, b.cash
    start = int(b.starts[0])
    return b.equity[start:], b.cash[start:]


def _exposure_arrays(b: Book) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (in market per step, net units and last price per snapshot and symbol)."""
    if b.portfolio:
        return b.in_market, b.snap_units, b.snap_marks
    start = int(b.starts[0])
    units = b.units[start:]  # type: ignore[index]
    return units != 0, units[b.snap_steps][:, None], b.ohlc[3][start + b.snap_steps][:, None]


def _output(b: Book, ppy: float) -> BacktestOutput:
    """Assemble metrics, sampled curves, fills, round trips and logs."""
    equity, cash = _curves(b)
    in_market, units, marks = _exposure_arrays(b)
    values = units * marks
    round_trips = _trips(b)
    return BacktestOutput(
        metrics=_metrics(b, equity, in_market, ppy),
        equity=_equity_points(b, equity, cash, values),
        trades=_fills(b),
        round_trips=round_trips,
        exposure=_exposure_points(b, equity, units, values),
        logs=_logs(b, round_trips),
        bars=int(b.clock.size),
        open_positions=_open_positions(b),
    )


def _metrics(
    b: Book, equity: np.ndarray, in_market: np.ndarray, ppy: float
) -> dict[str, float | None]:
    """Return the run's metrics from its equity curve, exposure and closed round trips."""
    trips = b.trips[: b.istate[I_TRIPS]]
    return compute_metrics(
        equity, in_market, trips["pnl"], ppy,
        r_multiple=trips["r_multiple"], both_hit=int(trips["both_hit"].sum()),
    )  # fmt: skip


def sample_indices(n: int, max_points: int) -> np.ndarray:
    """Return the last index of each of at most max_points equal buckets, ending at n - 1."""
    size = -(-n // max_points)
    return np.minimum(np.arange(size - 1, n + size - 1, size), n - 1)


def _equity_points(b: Book, equity: np.ndarray, cash: np.ndarray, values: np.ndarray) -> list[dict]:
    """Return the sampled equity curve with the total net and gross exposure."""
    net, gross = values.sum(axis=1).tolist(), np.abs(values).sum(axis=1).tolist()
    stamps, steps = b.clock[b.snap_steps].tolist(), b.snap_steps.tolist()
    return [
        {
            "timestamp": stamps[j],
            "equity": float(equity[i]),
            "cash": float(cash[i]),
            "positions": float(equity[i] - cash[i]),
            "net_exposure": net[j],
            "gross_exposure": gross[j],
        }
        for j, i in enumerate(steps)
    ]


def _exposure_points(
    b: Book, equity: np.ndarray, units: np.ndarray, values: np.ndarray
) -> list[dict]:
    """Return each symbol's net signed position at the sampled points."""
    eq = equity[b.snap_steps][:, None]
    weight = np.divide(values, eq, out=np.zeros(values.shape), where=eq > 0)
    stamps = b.clock[b.snap_steps].tolist()
    q, v, w = units.tolist(), values.tolist(), weight.tolist()
    return [
        {"timestamp": stamps[k], "symbol": sym, "quantity": q[k][s], "value": v[k][s],
         "weight": w[k][s]}
        for k in range(len(stamps))
        for s, sym in enumerate(b.symbols)
    ]  # fmt: skip


def _symbol_index(b: Book, bar: np.ndarray) -> np.ndarray:
    """Return the index of the symbol owning each bar index."""
    return np.searchsorted(b.bounds[:, 1], bar, side="right")


def _fills(b: Book) -> list[dict]:
    """Return the fills as dicts, in time order."""
    f = b.fills[: b.istate[I_FILLS]]
    symbols = [b.symbols[k] for k in _symbol_index(b, f["bar"]).tolist()]
    sides = ["buy" if x == SIDE_BUY else "sell" for x in f["side"].tolist()]
    return [
        {"symbol": sym, "timestamp": t, "side": side, "quantity": q, "price": p,
         "commission": c, "liquidity": "maker" if mk else "taker"}
        for sym, t, side, q, p, c, mk in zip(
            symbols, b.ts[f["bar"]].tolist(), sides, f["quantity"].tolist(), f["price"].tolist(),
            f["commission"].tolist(), f["maker"].tolist(), strict=True,
        )
    ]  # fmt: skip


def _trips(b: Book) -> list[dict]:
    """Return the closed round trips as dicts."""
    t = b.trips[: b.istate[I_TRIPS]]
    r = t["r_multiple"]
    r_list = [
        None if not ok else x for ok, x in zip(np.isfinite(r).tolist(), r.tolist(), strict=True)
    ]
    symbols = [b.symbols[k] for k in _symbol_index(b, t["exit_bar"]).tolist()]
    cols = zip(
        symbols, t["side"].tolist(), b.ts[t["entry_bar"]].tolist(),
        b.ts[t["exit_bar"]].tolist(), t["entry_price"].tolist(), t["exit_price"].tolist(),
        t["quantity"].tolist(), t["pnl"].tolist(), t["ret"].tolist(), r_list,
        t["commission"].tolist(), t["reason"].tolist(), t["both_hit"].tolist(), strict=True,
    )  # fmt: skip
    return [
        {"symbol": sym, "side": "long" if side > 0 else "short", "entry_time": et,
         "exit_time": xt, "entry_price": ep, "exit_price": xp, "quantity": q, "pnl": pnl,
         "return": ret, "r_multiple": rm, "commission": c, "exit_reason": REASON_NAMES[reason],
         "both_hit": both, "liquidated": reason == REASON_LIQUIDATION}
        for sym, side, et, xt, ep, xp, q, pnl, ret, rm, c, reason, both in cols
    ]  # fmt: skip


def _open_positions(b: Book) -> list[dict]:
    """Return the positions still open at the end, valued at each symbol's last close."""
    m = b.pos.shape[0] // len(b.symbols)
    out = []
    for k in range(b.pos.shape[0]):
        if b.pos[k, P_UNITS] <= 0:
            continue
        s = k // m
        last = float(b.ohlc[3][b.bounds[s, 1] - 1])
        side = float(b.pos[k, P_SIDE])
        units, entry = float(b.pos[k, P_UNITS]), float(b.pos[k, P_ENTRY])
        out.append(
            {
                "symbol": b.symbols[s],
                "side": "long" if side > 0 else "short",
                "entry_time": int(b.ts[int(b.pos[k, P_ENTRY_BAR])]),
                "entry_price": entry,
                "quantity": units,
                "last_price": last,
                "value": float(value_at_nb(b.pos, k, last)),
                "unrealized_pnl": side * units * (last - entry),
            }
        )
    return out


def _logs(b: Book, round_trips: list[dict]) -> list[str]:
    """Return one summary line per symbol, one per liquidation, and the account's final cash."""
    count = len(b.symbols)
    trips = np.bincount(_symbol_index(b, b.trips["exit_bar"][: b.istate[I_TRIPS]]), minlength=count)
    fills = np.bincount(_symbol_index(b, b.fills["bar"][: b.istate[I_FILLS]]), minlength=count)
    lines = [
        f"{sym}: {int(b.bounds[s, 1] - b.starts[s])} bars traded "
        f"({int(b.starts[s] - b.bounds[s, 0])} warm-up), {int(fills[s])} fills, "
        f"{int(trips[s])} round trips, {int(b.sstate[s, S_SKIPPED])} entries refused by risk "
        "rules or sizing"
        for s, sym in enumerate(b.symbols)
    ]
    lines += [
        f"liquidation: {t['symbol']} {t['side']} of {t['quantity']:g} entered at "
        f"{t['entry_price']:g}, closed at {t['exit_price']:g} at time {t['exit_time']}, "
        f"pnl {t['pnl']:.2f}"
        for t in round_trips
        if t["liquidated"]
    ]
    lines.append(f"account: final cash {float(b.fstate[F_CASH]):.2f}")
    return lines


WARM_UP_STRATEGY = Strategy(
    name="warm-up",
    long_entry=(Condition("signal", "sma_cross_up", (("window_fast", 3), ("window_slow", 8))),),
    long_exit=(Condition("signal", "sma_cross_down", (("window_fast", 3), ("window_slow", 8))),),
    short_entry=(Condition("signal", "sma_cross_down", (("window_fast", 3), ("window_slow", 8))),),
    exits=Exits(take_profit=Level("r", 2.0), trailing_stop=Level("percent", 0.05)),
)


def warm_up() -> None:
    """Call every kernel once on tiny arrays so a worker compiles or loads its cache up front."""
    n = 64
    x = np.linspace(100.0, 120.0, n) + np.sin(np.arange(n))
    ts = np.arange(n, dtype=np.int64) * RESOLUTIONS["1m"]
    bars = Bars(ts, x, x + 1.0, x - 1.0, x + 0.5, np.ones(n))
    for spec in SIGNALS.values():
        spec.compute(bars, {k: p.default for k, p in spec.params.items()})
    execution = Execution(
        fee_bps=1.0, max_hold_bars=3, atr_multiplier=1.0, enable_volatility_adjustment=True,
        allow_short=True,
    )  # fmt: skip
    run_backtest({"X": bars}, WARM_UP_STRATEGY, execution, 1000.0, int(ts[5]))
    run_backtest({"X": bars, "Y": bars}, WARM_UP_STRATEGY, execution, 1000.0, int(ts[5]))
