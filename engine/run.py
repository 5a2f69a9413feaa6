"""run_backtest: check inputs, compute signals, run the bar-loop kernel chunk by chunk, report.

Semantics (the README copies this section):

Bars and symbols

- ``bars`` maps symbol -> Bars at the run's resolution, including warm-up history before
  ``trade_start_ns``. Indicators are computed over the whole array; orders are decided only on
  bars with ``ts >= trade_start_ns``. Masks come from ``engine.strategy.evaluate``; a condition
  on a coarser timeframe sees only closed coarser bars there, and a timeframe finer than the
  run's bars (or not a multiple of them) is rejected with the condition's path.
- Several symbols: capital is split equally into independent sleeves, one per symbol (in sorted
  symbol order); each sleeve runs the full execution and risk model below on its own bars and
  cash. The combined equity is the sum of the sleeves on the union clock of their bar times, each
  sleeve's equity forward-filled (a sleeve with no bar yet counts its starting capital).

Orders and fills

- Signals are evaluated on a bar's close. ``fill="next_open"`` (default): an order decided at bar
  i fills at bar i+1's open; no order is decided on the last bar. ``fill="close"``: it fills at
  bar i's close (for comparisons with same-bar-close engines).
- Long entries need the strategy's long rules; short entries need ``allow_short`` and short rules.
  A bar where both the long and the short entry hold queues no entry. Positions are all on one
  side: an entry for the other side is skipped while positions of the first side are open (an
  exit decided on the same bar fills first, so exit-then-reverse works).
- Fees: ``fee_model="none"`` charges nothing; ``"fixed_bps"`` charges fee_bps/1e4 of each fill's
  notional, paid from cash. Slippage moves every fill price slippage_bps/1e4 against the trader
  (buys up, sells down), stop and target fills included.
- Cash accounting without leverage: a long pays units*price (+fee); a short sets aside the same
  amount as collateral and is worth units*(2*entry - price) at price. Equity = cash + positions
  at the bar's close.

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
  entry is skipped. ``fraction``: units = size * equity / (price * (1 + fee)), the fee-adjusted
  rule of backtesting.py, so size=1.0 is all in. ``units``: size units. ``amount``: size / price.
- When enable_volatility_adjustment is on, units are multiplied by
  min(1, target_volatility / realised volatility) at the signal bar; realised volatility is the
  sample stddev of the last volatility_window close-to-close returns (``stddev``) or
  ATR(volatility_window) / close (``atr``); undefined or zero -> no adjustment.
- Then, in every sizing mode: capped by max_units_per_trade, max_trade_amount / price and the
  cash that can pay for units and fee (no leverage); floored to a multiple of lot_size (0 =
  fractional); skipped if the result is 0 or its notional is below min_trade_amount.

Entry gates (checked at the fill; a refused entry is counted in the sleeve's log)

- min_balance_threshold: no entry while equity < threshold * the sleeve's initial balance.
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

- Round trips carry side, entry/exit time and price, quantity, pnl (net of both fees), return
  (pnl / (entry notional + entry fee)), r_multiple (pnl / (units * initial risk distance), None
  without one), exit_reason and both_hit. Fills carry commission.
- Positions open at the end stay open: valued in the final equity, listed in ``open_positions``.
- Metrics (engine.stats) are computed on the full-resolution combined equity of the trading
  period, annualised with ``periods_per_year`` (default 365 days over the bar interval; pass 252
  for exchange calendars of daily bars). ``equity`` and ``exposure`` are downsampled to at most
  ``max_points`` points (the last point of each bucket, always including the final bar).
- on_progress is called after each chunk of ``chunk_bars`` union-clock bars with running
  equity, drawdown, max_drawdown and trade_count; returning False raises Cancelled. The same
  inputs give identical outputs whatever the chunk size; the run is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.data.store import RESOLUTIONS, Bars
from engine.execution import Execution, kernel_params
from engine.nb.indicators import atr_nb
from engine.nb.orders import position_value_nb
from engine.nb.records import (
    D_STOP,
    D_TP,
    D_TRAIL,
    F_CASH,
    FILL_DTYPE,
    I_FILLS,
    I_SKIPPED,
    I_TRIPS,
    K_HAS_LEVELS,
    K_STOP_PCT,
    K_TP_PCT,
    K_TP_R,
    K_TRAIL_PCT,
    P_ENTRY,
    P_ENTRY_BAR,
    P_SIDE,
    P_UNITS,
    REASON_NAMES,
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

__all__ = ["BacktestOutput", "Cancelled", "Execution", "Progress", "run_backtest", "warm_up"]


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


@dataclass
class Sleeve:
    """One symbol's arrays and kernel state."""

    symbol: str
    bars: Bars
    capital: float
    start: int
    masks: Masks4
    dist: np.ndarray
    vol_scale: np.ndarray
    day: np.ndarray
    params: np.ndarray
    fstate: np.ndarray
    istate: np.ndarray
    pos: np.ndarray
    fills: np.ndarray
    trips: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    units: np.ndarray
    cursor: int = 0


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
    exits = strategy_exits(strategy)
    _check_inputs(bars, execution, exits, capital, chunk_bars, max_points, periods_per_year)
    interval = _interval(bars, resolution)
    _check_timeframes(strategy, interval)
    name = resolution or _resolution_name(interval)
    share = capital / len(bars)
    params = kernel_params(execution, exits, share, name, interval)
    sleeves = [
        _sleeve(s, bars[s], strategy, execution, exits, params, share, trade_start_ns, name)
        for s in sorted(bars)
    ]
    clock = _clock(sleeves, trade_start_ns)
    if clock.size == 0:
        raise ValueError("no bars at or after trade_start_ns")
    _simulate(sleeves, clock, chunk_bars, on_progress)
    step = interval or (int(np.median(np.diff(clock))) if clock.size > 1 else DAY_NS)
    ppy = periods_per_year or default_periods_per_year(step)
    return _output(sleeves, clock, ppy, max_points)


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


def distances(bars: Bars, ex: Execution, exits: Exits) -> np.ndarray:
    """Return the (n, 3) ATR-based stop, target and trailing distances per signal bar (NaN: none)."""
    n = len(bars)
    dist = np.full((n, 3), np.nan)
    if n == 0:
        return dist
    levels = (exits.stop_loss, exits.take_profit, exits.trailing_stop)
    seed_stop = exits.stop_loss is None and (ex.atr_multiplier or 0.0) > 0
    if not seed_stop and not any(lv is not None and lv.kind == "atr" for lv in levels):
        return dist  # no ATR-based level: skip the ATR pass
    atr = atr_nb(_f64(bars.high), _f64(bars.low), _f64(bars.close), ex.atr_period)
    if seed_stop:
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


def _sleeve(
    symbol: str,
    bars: Bars,
    strategy: Strategy,
    ex: Execution,
    exits: Exits,
    params: np.ndarray,
    cap: float,
    t0: int,
    name: str | None,
) -> Sleeve:
    """Compute a sleeve's signals and allocate its state and records."""
    n = len(bars)
    le, lx, se, sx = strategy_masks(strategy, bars, name)
    if not ex.allow_short:
        se = np.zeros(n, dtype=np.bool_)
    fstate, istate, pos = new_state(cap, ex.max_open_positions)
    dist = distances(bars, ex, exits)
    params = params.copy()
    pct = params[[K_STOP_PCT, K_TP_PCT, K_TP_R, K_TRAIL_PCT]]
    params[K_HAS_LEVELS] = float(bool(np.isfinite(pct).any() or np.isfinite(dist).any()))
    start = int(np.searchsorted(bars.ts, t0, side="left"))
    return Sleeve(
        symbol, bars, cap, start, (le, lx, se, sx), dist,
        volatility_scale(bars, ex), np.asarray(bars.ts, dtype=np.int64) // DAY_NS, params,
        fstate, istate, pos, fills=np.zeros(2 * n + 2, dtype=FILL_DTYPE),
        trips=np.zeros(n + 1, dtype=TRIP_DTYPE), equity=np.full(n, cap), cash=np.full(n, cap),
        units=np.zeros(n), cursor=start,
    )  # fmt: skip


def _clock(sleeves: list[Sleeve], t0: int) -> np.ndarray:
    """Return the sorted union of bar times at or after t0."""
    parts = [np.asarray(s.bars.ts[s.start :], dtype=np.int64) for s in sleeves]
    if len(parts) == 1:
        return parts[0]  # one symbol's bar times are sorted and unique already
    merged = np.sort(np.concatenate(parts), kind="stable")
    keep = np.ones(merged.size, dtype=np.bool_)
    keep[1:] = merged[1:] != merged[:-1]
    return merged[keep]


def _simulate(
    sleeves: list[Sleeve],
    clock: np.ndarray,
    chunk_bars: int,
    on_progress: Callable[[Progress], bool] | None,
) -> None:
    """Advance every sleeve chunk by chunk along the union clock, reporting progress."""
    peak, max_dd = -np.inf, 0.0
    for u0 in range(0, clock.size, chunk_bars):
        u1 = min(u0 + chunk_bars, clock.size)
        for s in sleeves:
            _advance(s, int(clock[u1 - 1]))
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


def _advance(s: Sleeve, until_ns: int) -> None:
    """Run a sleeve's kernel over its bars up to and including time until_ns."""
    end = int(np.searchsorted(s.bars.ts, until_ns, side="right"))
    if end <= s.cursor:
        return
    b = s.bars
    simulate_chunk_nb(
        s.cursor, end, _f64(b.open), _f64(b.high), _f64(b.low), _f64(b.close), *s.masks,
        s.dist, s.vol_scale, s.day, s.params, s.fstate, s.istate, s.pos, s.fills, s.trips,
        s.equity, s.cash, s.units,
    )  # fmt: skip
    s.cursor = end


def _at(s: Sleeve, times: np.ndarray) -> np.ndarray:
    """Return, for each time, the index of the sleeve's last bar at or before it (-1 if none)."""
    ts = s.bars.ts
    own = times.size == ts.size - s.start > 0 and times[0] == ts[s.start] and times[-1] == ts[-1]
    if own:  # the sleeve's own clock: every time is one of its bars
        return np.arange(s.start, ts.size)
    return np.searchsorted(ts, times, side="right") - 1


def _combined(sleeves: list[Sleeve], times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return combined (equity, cash) at the given times, forward-filling each sleeve."""
    if len(sleeves) == 1 and len(sleeves[0].bars) and times.size:
        s = sleeves[0]
        first = int(np.searchsorted(s.bars.ts, times[0]))
        last = first + times.size
        if (
            last <= len(s.bars)
            and s.bars.ts[first] == times[0]
            and s.bars.ts[last - 1] == times[-1]
        ):
            return s.equity[first:last], s.cash[first:last]  # its own bars: no fill-forward
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
    sleeves: list[Sleeve], clock: np.ndarray, ppy: float, max_points: int
) -> BacktestOutput:
    """Assemble metrics, sampled curves, fills, round trips and logs."""
    equity, cash = _combined(sleeves, clock)
    in_market = np.zeros(clock.size, dtype=bool)
    for s in sleeves:
        if len(s.bars) == 0:
            continue
        idx = _at(s, clock)
        in_market |= (idx >= 0) & (s.units[np.maximum(idx, 0)] != 0)
    trips = np.concatenate([s.trips[: s.istate[I_TRIPS]] for s in sleeves])
    metrics = compute_metrics(
        equity, in_market, trips["pnl"], ppy,
        r_multiple=trips["r_multiple"], both_hit=int(trips["both_hit"].sum()),
    )  # fmt: skip
    sample = sample_indices(clock.size, max_points)
    return BacktestOutput(
        metrics=metrics,
        equity=_equity_points(clock, equity, cash, sample),
        trades=[t for s in sleeves for t in _fills(s)],
        round_trips=[t for s in sleeves for t in _trips(s)],
        exposure=_exposure_points(sleeves, clock, equity, sample),
        logs=[_log(s) for s in sleeves],
        bars=int(clock.size),
        open_positions=[p for s in sleeves for p in _open_positions(s)],
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
    """Return each symbol's net signed position at the sampled points."""
    times = clock[sample]
    eq = equity[sample]
    columns = []
    for s in sleeves:
        j = _at(s, times) if len(s.bars) else np.full(times.size, -1)
        ok = j >= 0
        safe = np.maximum(j, 0)
        qty = np.where(ok, s.units[safe] if len(s.bars) else 0.0, 0.0)
        value = np.where(ok, qty * (np.asarray(s.bars.close)[safe] if len(s.bars) else 0.0), 0.0)
        weight = np.divide(value, eq, out=np.zeros(times.size), where=eq > 0)
        columns.append((s.symbol, qty.tolist(), value.tolist(), weight.tolist()))
    stamps = times.tolist()
    return [
        {"timestamp": stamps[k], "symbol": sym, "quantity": q[k], "value": v[k], "weight": w[k]}
        for k in range(times.size)
        for sym, q, v, w in columns
    ]


def _fills(s: Sleeve) -> list[dict]:
    """Return a sleeve's fills as dicts."""
    f = s.fills[: s.istate[I_FILLS]]
    stamps = np.asarray(s.bars.ts)[f["bar"]].tolist()
    sides = ["buy" if x == SIDE_BUY else "sell" for x in f["side"].tolist()]
    return [
        {"symbol": s.symbol, "timestamp": t, "side": side, "quantity": q, "price": p,
         "commission": c}
        for t, side, q, p, c in zip(
            stamps, sides, f["quantity"].tolist(), f["price"].tolist(),
            f["commission"].tolist(), strict=True,
        )
    ]  # fmt: skip


def _trips(s: Sleeve) -> list[dict]:
    """Return a sleeve's closed round trips as dicts."""
    t = s.trips[: s.istate[I_TRIPS]]
    ts = np.asarray(s.bars.ts)
    r = t["r_multiple"]
    r_list = [
        None if not ok else x for ok, x in zip(np.isfinite(r).tolist(), r.tolist(), strict=True)
    ]
    cols = zip(
        t["side"].tolist(), ts[t["entry_bar"]].tolist(), ts[t["exit_bar"]].tolist(),
        t["entry_price"].tolist(), t["exit_price"].tolist(), t["quantity"].tolist(),
        t["pnl"].tolist(), t["ret"].tolist(), r_list, t["reason"].tolist(),
        t["both_hit"].tolist(), strict=True,
    )  # fmt: skip
    return [
        {"symbol": s.symbol, "side": "long" if side > 0 else "short", "entry_time": et,
         "exit_time": xt, "entry_price": ep, "exit_price": xp, "quantity": q, "pnl": pnl,
         "return": ret, "r_multiple": rm, "exit_reason": REASON_NAMES[reason], "both_hit": both}
        for side, et, xt, ep, xp, q, pnl, ret, rm, reason, both in cols
    ]  # fmt: skip


def _open_positions(s: Sleeve) -> list[dict]:
    """Return the sleeve's positions still open at the end."""
    if len(s.bars) == 0:
        return []
    last = float(s.bars.close[-1])
    out = []
    for row in s.pos:
        if row[P_UNITS] <= 0:
            continue
        value = float(position_value_nb(row, last))
        out.append(
            {
                "symbol": s.symbol,
                "side": "long" if row[P_SIDE] > 0 else "short",
                "entry_time": int(s.bars.ts[int(row[P_ENTRY_BAR])]),
                "entry_price": float(row[P_ENTRY]),
                "quantity": float(row[P_UNITS]),
                "last_price": last,
                "value": value,
                "unrealized_pnl": float(row[P_SIDE] * row[P_UNITS] * (last - row[P_ENTRY])),
            }
        )
    return out


def _log(s: Sleeve) -> str:
    """Return a one-line summary of a sleeve."""
    return (
        f"{s.symbol}: {len(s.bars) - s.start} bars traded ({s.start} warm-up), "
        f"{int(s.istate[I_FILLS])} fills, {int(s.istate[I_TRIPS])} round trips, "
        f"{int(s.istate[I_SKIPPED])} entries refused by risk rules or sizing, "
        f"final cash {float(s.fstate[F_CASH]):.2f}"
    )


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
