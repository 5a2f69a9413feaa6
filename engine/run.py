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

from collections.abc import Callable

import numpy as np

from engine.book import SCRATCH, curves, exposure_arrays, new_book, sample_indices, strategy_exits
from engine.data.store import RESOLUTIONS, Bars
from engine.drive import run_chunks
from engine.execution import Execution
from engine.frame import Frame, prepare_frame, volatility_scale
from engine.output import BacktestOutput, Cancelled, Progress
from engine.results import metrics_of, output_of
from engine.strategy.catalog import SIGNALS
from engine.strategy.form import Condition, Exits, Level, Strategy

__all__ = [
    "BacktestOutput", "Cancelled", "Execution", "Frame", "Progress", "check_run_inputs",
    "prepare_frame",
    "run_backtest", "run_metrics", "sample_indices", "volatility_scale", "warm_up",
]  # fmt: skip


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
    risk_free_rate: float = 0.0,
    benchmark: Bars | None = None,
) -> BacktestOutput:
    """Backtest a strategy over one or more symbols; see the module docstring for semantics."""
    return _run(
        bars, strategy, execution, capital, trade_start_ns, on_progress, chunk_bars, max_points,
        resolution, periods_per_year, portfolio=len(bars) > 1, risk_free_rate=risk_free_rate,
        benchmark=benchmark,
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
    risk_free_rate: float = 0.0,
    benchmark: Bars | None = None,
) -> BacktestOutput:
    """Run with the portfolio loop or, for one symbol, the one-symbol loop (the same rules)."""
    exits = strategy_exits(strategy)
    _check_inputs(bars, execution, exits, capital, chunk_bars, max_points, periods_per_year)
    frame = prepare_frame(
        bars, execution, trade_start_ns, resolution, periods_per_year, portfolio, risk_free_rate,
        benchmark,
    )  # fmt: skip
    book = new_book(frame, bars, strategy, execution, exits, capital, max_points)
    run_chunks(book, chunk_bars, on_progress)
    return output_of(book, frame.ppy)


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
    risk_free_rate: float = 0.0,
    benchmark: Bars | None = None,
    checked: bool = False,
) -> dict[str, float | None]:
    """Return run_backtest(...).metrics without building result lists, curves or logs.

    ``frame`` is prepare_frame() of the same bars, execution, trade_start_ns, resolution and
    periods_per_year, reused across calls (a sweep); the run is the same steps as run_backtest.
    ``checked``: the caller has passed these bars, execution, capital and periods_per_year to
    check_run_inputs (a sweep, once for all its variants); only the strategy's exits are checked.
    """
    exits = strategy_exits(strategy)
    if checked:
        _check_exits(exits)
    else:
        _check_inputs(bars, execution, exits, capital, 1, 2, periods_per_year)
    if frame is None:
        frame = prepare_frame(
            bars, execution, trade_start_ns, resolution, periods_per_year,
            risk_free_rate=risk_free_rate, benchmark=benchmark,
        )  # fmt: skip
    book = new_book(frame, bars, strategy, execution, exits, capital, 2, SCRATCH)
    run_chunks(book, 1 << 62, None)
    equity, _ = curves(book)
    SCRATCH.fills, SCRATCH.trips = book.fills, book.trips  # keep them if they grew
    return metrics_of(book, equity, exposure_arrays(book)[0], frame.ppy)


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
    check_run_inputs(bars, ex, capital, ppy)
    if not (chunk_bars >= 1 and max_points >= 2):
        raise ValueError("chunk_bars >= 1 and max_points >= 2")
    _check_exits(exits)


def check_run_inputs(
    bars: dict[str, Bars], ex: Execution, capital: float, ppy: float | None
) -> None:
    """Raise ValueError for a run's strategy-independent inputs the engine cannot run."""
    ex.validate()
    checks = [
        (bool(bars), "at least one symbol is required"),
        (capital > 0, "capital must be positive"),
        (ppy is None or ppy > 0, "periods_per_year must be > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _check_exits(exits: Exits) -> None:
    """Raise ValueError for protective exits the engine cannot run."""
    checks = [
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
