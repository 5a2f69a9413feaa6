"""run_backtest: check inputs, compute signals, run the bar-loop kernel chunk by chunk, report.

Semantics (foundation scope):

- ``bars`` maps symbol -> Bars at the run's resolution, including warm-up history before
  ``trade_start_ns``. Indicators are computed over the whole array; orders are decided only on
  bars with ``ts >= trade_start_ns``.
- Several symbols: capital is split equally into independent sleeves, one per symbol (in sorted
  symbol order), each simulated on its own bars. The combined equity is the sum of the sleeves on
  the union clock of their bar times, each sleeve's equity forward-filled (a sleeve with no bar yet
  counts its starting capital).
- Long only, one position per sleeve. Signals are evaluated on a bar's close; an entry or exit
  decided at bar i fills at bar i+1's open. Buys fill at open*(1+slippage), sells at
  open*(1-slippage); the fee is fee_bps/1e4 of each fill's notional, paid from cash. Sizing is all
  in: units = cash / (price*(1+fee)), floored to a multiple of lot_size when lot_size > 0.
- Stop (when atr_multiplier is set): stop = entry fill price - atr_multiplier * ATR(atr_period) at
  the signal bar (no stop while ATR is still undefined). It is checked on the fill bar after its
  open (against the low) and on every later bar: a bar opening at or below the stop fills at that
  open, otherwise a low at or below the stop fills at the stop; slippage applies to the stop fill
  as to any sell, and its timestamp is the bar's open time. exit_reason "stop".
- An exit signal exits at the next open ("signal"); a position held for max_hold_bars bars (the
  fill bar counts as one) exits at the next open ("max_hold"). A signal exit wins over max_hold.
- A position open at the end stays open: it is valued in the final equity and listed in
  ``open_positions``, never in ``round_trips``.
- Metrics (engine.stats) are computed on the full-resolution combined equity of the trading
  period; ``equity`` and ``exposure`` are downsampled to at most ``max_points`` points (the last
  point of each bucket, always including the final bar).
- on_progress is called after each chunk of ``chunk_bars`` union-clock bars; returning False
  raises Cancelled. The same inputs give identical outputs whatever the chunk size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.data.store import RESOLUTIONS, Bars
from engine.nb.indicators import atr_nb
from engine.nb.records import (
    F_CASH,
    F_ENTRY_COST,
    F_ENTRY_PRICE,
    F_UNITS,
    FILL_DTYPE,
    I_ENTRY_BAR,
    I_FILLS,
    I_TRIPS,
    REASON_NAMES,
    SIDE_BUY,
    TRIP_DTYPE,
    new_state,
)
from engine.nb.simulate import simulate_chunk_nb
from engine.stats import compute_metrics, periods_per_year
from engine.strategy.catalog import SIGNALS
from engine.strategy.compile import CompiledStrategy, StrategyError, compile_strategy
from engine.strategy.evaluate import evaluate


@dataclass(frozen=True)
class Execution:
    """Execution settings for one run."""

    fee_bps: float = 0.0
    slippage_bps: float = 0.0
    max_hold_bars: int | None = None
    atr_period: int = 14
    atr_multiplier: float | None = None
    lot_size: float = 0.0


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


@dataclass
class Sleeve:
    """One symbol's arrays and kernel state."""

    symbol: str
    bars: Bars
    capital: float
    start: int
    entry: np.ndarray
    exit: np.ndarray
    stop_dist: np.ndarray
    fstate: np.ndarray
    istate: np.ndarray
    fills: np.ndarray
    trips: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    units: np.ndarray
    cursor: int = 0


def run_backtest(
    bars: dict[str, Bars],
    strategy: CompiledStrategy,
    execution: Execution,
    capital: float,
    trade_start_ns: int,
    *,
    on_progress: Callable[[Progress], bool] | None = None,
    chunk_bars: int = 20_000,
    max_points: int = 2_000,
    resolution: str | None = None,
) -> BacktestOutput:
    """Backtest a strategy over one or more symbols; see the module docstring for semantics."""
    _check_inputs(bars, execution, capital, chunk_bars, max_points)
    interval = _interval(bars, resolution)
    _check_timeframes(strategy, interval)
    share = capital / len(bars)
    sleeves = [
        _sleeve(s, bars[s], strategy, execution, share, trade_start_ns) for s in sorted(bars)
    ]
    clock = _clock(sleeves, trade_start_ns)
    if clock.size == 0:
        raise ValueError("no bars at or after trade_start_ns")
    _simulate(sleeves, clock, execution, chunk_bars, on_progress)
    return _output(sleeves, clock, interval, max_points)


def _check_inputs(
    bars: dict[str, Bars], ex: Execution, capital: float, chunk_bars: int, max_points: int
) -> None:
    """Raise ValueError for inputs the engine cannot run."""
    checks = [
        (bool(bars), "at least one symbol is required"),
        (capital > 0, "capital must be positive"),
        (ex.fee_bps >= 0 and ex.slippage_bps >= 0, "fees and slippage must be >= 0"),
        (ex.max_hold_bars is None or ex.max_hold_bars >= 1, "max_hold_bars must be >= 1"),
        (ex.atr_period >= 1, "atr_period must be >= 1"),
        (ex.atr_multiplier is None or ex.atr_multiplier > 0, "atr_multiplier must be > 0"),
        (ex.lot_size >= 0, "lot_size must be >= 0"),
        (chunk_bars >= 1 and max_points >= 2, "chunk_bars >= 1 and max_points >= 2"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _interval(bars: dict[str, Bars], resolution: str | None) -> int | None:
    """Return the bar interval in ns: from the resolution name, else the smallest bar spacing."""
    if resolution is not None:
        return RESOLUTIONS[resolution]
    gaps = [int(np.diff(b.ts).min()) for b in bars.values() if len(b) > 1]
    return min(gaps) if gaps else None


def _check_timeframes(strategy: CompiledStrategy, interval: int | None) -> None:
    """Reject signals whose own timeframe differs from the run's bars (not supported yet)."""
    for signal in strategy.entry + strategy.exit:
        if signal.timeframe is not None and RESOLUTIONS[signal.timeframe] != interval:
            raise StrategyError(
                f"{signal.path}.timeframe",
                "a signal timeframe different from the run's resolution is not supported yet",
            )


def _sleeve(
    symbol: str, bars: Bars, strategy: CompiledStrategy, ex: Execution, cap: float, t0: int
) -> Sleeve:
    """Compute a sleeve's signals and allocate its state and records."""
    n = len(bars)
    entry, exit_ = evaluate(strategy, bars)
    if ex.atr_multiplier is None:
        stop_dist = np.full(n, np.nan)
    else:
        stop_dist = ex.atr_multiplier * atr_nb(
            _f64(bars.high), _f64(bars.low), _f64(bars.close), ex.atr_period
        )
    fstate, istate = new_state(cap)
    start = int(np.searchsorted(bars.ts, t0, side="left"))
    return Sleeve(
        symbol, bars, cap, start, entry, exit_, stop_dist, fstate, istate,
        fills=np.zeros(2 * n + 2, dtype=FILL_DTYPE), trips=np.zeros(n + 1, dtype=TRIP_DTYPE),
        equity=np.full(n, cap), cash=np.full(n, cap), units=np.zeros(n), cursor=start,
    )  # fmt: skip


def _f64(x: np.ndarray) -> np.ndarray:
    """Return a contiguous float64 array."""
    return np.ascontiguousarray(x, dtype=np.float64)


def _clock(sleeves: list[Sleeve], t0: int) -> np.ndarray:
    """Return the sorted union of bar times at or after t0."""
    parts = [s.bars.ts[s.start :] for s in sleeves]
    return np.unique(np.concatenate(parts)).astype(np.int64)


def _simulate(
    sleeves: list[Sleeve],
    clock: np.ndarray,
    ex: Execution,
    chunk_bars: int,
    on_progress: Callable[[Progress], bool] | None,
) -> None:
    """Advance every sleeve chunk by chunk along the union clock, reporting progress."""
    peak, max_dd = -np.inf, 0.0
    for u0 in range(0, clock.size, chunk_bars):
        u1 = min(u0 + chunk_bars, clock.size)
        for s in sleeves:
            _advance(s, int(clock[u1 - 1]), ex)
        if on_progress is None:
            continue
        eq = _combined(sleeves, clock[u0:u1])[0]
        peak = max(peak, float(eq.max()))
        max_dd = max(max_dd, float((1.0 - eq / np.maximum.accumulate(np.maximum(eq, peak))).max()))
        metrics = {
            "equity": float(eq[-1]),
            "drawdown": float(1.0 - eq[-1] / peak),
            "max_drawdown": max_dd,
            "trade_count": float(sum(int(s.istate[I_TRIPS]) for s in sleeves)),
        }
        if on_progress(Progress(u1, int(clock.size), metrics)) is False:
            raise Cancelled()


def _advance(s: Sleeve, until_ns: int, ex: Execution) -> None:
    """Run a sleeve's kernel over its bars up to and including time until_ns."""
    end = int(np.searchsorted(s.bars.ts, until_ns, side="right"))
    if end <= s.cursor:
        return
    b = s.bars
    simulate_chunk_nb(
        s.cursor, end, _f64(b.open), _f64(b.high), _f64(b.low), _f64(b.close),
        s.entry, s.exit, s.stop_dist, ex.fee_bps / 1e4, ex.slippage_bps / 1e4,
        ex.max_hold_bars or 0, float(ex.lot_size), s.fstate, s.istate, s.fills, s.trips,
        s.equity, s.cash, s.units,
    )  # fmt: skip
    s.cursor = end


def _at(s: Sleeve, times: np.ndarray) -> np.ndarray:
    """Return, for each time, the index of the sleeve's last bar at or before it (-1 if none)."""
    return np.searchsorted(s.bars.ts, times, side="right") - 1


def _combined(sleeves: list[Sleeve], times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return combined (equity, cash) at the given times, forward-filling each sleeve."""
    equity = np.zeros(times.size)
    cash = np.zeros(times.size)
    for s in sleeves:
        if len(s.bars) == 0:
            equity += s.capital
            cash += s.capital
            continue
        idx = _at(s, times)
        ok = idx >= 0
        safe = np.maximum(idx, 0)
        equity += np.where(ok, s.equity[safe], s.capital)
        cash += np.where(ok, s.cash[safe], s.capital)
    return equity, cash


def _output(
    sleeves: list[Sleeve], clock: np.ndarray, interval: int | None, max_points: int
) -> BacktestOutput:
    """Assemble metrics, sampled curves, fills, round trips and logs."""
    equity, cash = _combined(sleeves, clock)
    in_market = np.zeros(clock.size, dtype=bool)
    for s in sleeves:
        if len(s.bars) == 0:
            continue
        idx = _at(s, clock)
        in_market |= (idx >= 0) & (s.units[np.maximum(idx, 0)] > 0)
    step = interval or (int(np.median(np.diff(clock))) if clock.size > 1 else 86_400 * 10**9)
    pnl = np.concatenate([s.trips[: s.istate[I_TRIPS]]["pnl"] for s in sleeves])
    metrics = compute_metrics(equity, in_market, pnl, periods_per_year(step))
    sample = sample_indices(clock.size, max_points)
    return BacktestOutput(
        metrics=metrics,
        equity=_equity_points(clock, equity, cash, sample),
        trades=[t for s in sleeves for t in _fills(s)],
        round_trips=[t for s in sleeves for t in _trips(s)],
        exposure=_exposure_points(sleeves, clock, equity, sample),
        logs=[_log(s) for s in sleeves],
        bars=int(clock.size),
        open_positions=[p for s in sleeves for p in _open_position(s)],
    )


def sample_indices(n: int, max_points: int) -> np.ndarray:
    """Return the last index of each of at most max_points equal buckets, ending at n - 1."""
    size = -(-n // max_points)
    return np.minimum(np.arange(size - 1, n + size - 1, size), n - 1)


def _equity_points(
    clock: np.ndarray, equity: np.ndarray, cash: np.ndarray, sample: np.ndarray
) -> list[dict]:
    """Return the sampled combined equity curve."""
    return [
        {
            "timestamp": int(clock[i]),
            "equity": float(equity[i]),
            "cash": float(cash[i]),
            "positions": float(equity[i] - cash[i]),
        }
        for i in sample
    ]


def _exposure_points(
    sleeves: list[Sleeve], clock: np.ndarray, equity: np.ndarray, sample: np.ndarray
) -> list[dict]:
    """Return each symbol's position at the sampled points."""
    times = clock[sample]
    points = []
    for k, i in enumerate(sample):
        for s in sleeves:
            j = int(_at(s, times[k : k + 1])[0])
            qty = float(s.units[j]) if j >= 0 else 0.0
            value = qty * float(s.bars.close[j]) if j >= 0 else 0.0
            weight = value / float(equity[i]) if equity[i] > 0 else 0.0
            points.append(
                {"timestamp": int(clock[i]), "symbol": s.symbol, "quantity": qty,
                 "value": value, "weight": weight}
            )  # fmt: skip
    return points


def _fills(s: Sleeve) -> list[dict]:
    """Return a sleeve's fills as dicts."""
    return [
        {
            "symbol": s.symbol,
            "timestamp": int(s.bars.ts[f["bar"]]),
            "side": "buy" if f["side"] == SIDE_BUY else "sell",
            "quantity": float(f["quantity"]),
            "price": float(f["price"]),
            "commission": float(f["commission"]),
        }
        for f in s.fills[: s.istate[I_FILLS]]
    ]


def _trips(s: Sleeve) -> list[dict]:
    """Return a sleeve's closed round trips as dicts."""
    return [
        {
            "symbol": s.symbol,
            "entry_time": int(s.bars.ts[t["entry_bar"]]),
            "exit_time": int(s.bars.ts[t["exit_bar"]]),
            "entry_price": float(t["entry_price"]),
            "exit_price": float(t["exit_price"]),
            "quantity": float(t["quantity"]),
            "pnl": float(t["pnl"]),
            "return": float(t["ret"]),
            "exit_reason": REASON_NAMES[int(t["reason"])],
        }
        for t in s.trips[: s.istate[I_TRIPS]]
    ]


def _open_position(s: Sleeve) -> list[dict]:
    """Return the sleeve's position still open at the end, if any."""
    units = float(s.fstate[F_UNITS])
    if units <= 0:
        return []
    last = float(s.bars.close[-1])
    return [
        {
            "symbol": s.symbol,
            "entry_time": int(s.bars.ts[s.istate[I_ENTRY_BAR]]),
            "entry_price": float(s.fstate[F_ENTRY_PRICE]),
            "quantity": units,
            "last_price": last,
            "value": units * last,
            "unrealized_pnl": units * last - float(s.fstate[F_ENTRY_COST]),
        }
    ]


def _log(s: Sleeve) -> str:
    """Return a one-line summary of a sleeve."""
    return (
        f"{s.symbol}: {len(s.bars) - s.start} bars traded ({s.start} warm-up), "
        f"{int(s.istate[I_FILLS])} fills, {int(s.istate[I_TRIPS])} round trips, "
        f"final cash {float(s.fstate[F_CASH]):.2f}"
    )


def warm_up() -> None:
    """Call every kernel once on tiny arrays so a worker compiles or loads its cache up front."""
    n = 64
    x = np.linspace(100.0, 120.0, n) + np.sin(np.arange(n))
    ts = np.arange(n, dtype=np.int64) * RESOLUTIONS["1m"]
    bars = Bars(ts, x, x + 1.0, x - 1.0, x + 0.5, np.ones(n))
    for spec in SIGNALS.values():
        spec.compute(x, {k: p.default for k, p in spec.params.items()})
    strategy = compile_strategy(
        {"entry": [{"name": "sma_cross_up"}], "exit": [{"name": "sma_cross_down"}]}
    )
    execution = Execution(fee_bps=1.0, max_hold_bars=3, atr_multiplier=1.0)
    run_backtest({"X": bars}, strategy, execution, 1000.0, int(ts[5]))
