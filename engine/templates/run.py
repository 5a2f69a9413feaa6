"""run_template: run a grid or DCA plan on its own kernel and report like engine.run.run_backtest.

Fill rules (engine.nb.resting): a resting limit buy at p fills when the bar's low touches p, at p,
or at the open when the bar opens at or below p; a limit sell mirrors it with the high; a stop sell
at p fills when the low touches p, at p, or at the open when the bar opens at or below p; a stop
buy mirrors it. Market orders fill at the open. Limits pay maker_bps, market and stop orders
taker_bps, on each fill's notional, from cash. No slippage, long only; leverage below.

Grid (engine.nb.grid): ``levels`` are price lines; slot j rests a buy at line j or a sell at line
j + 1. At the first trading bar's open every slot whose buy line is at or above the open buys at
market (taker) and rests its sell; the others rest their buys. A filled buy rests a sell one line
up, a filled sell a buy one line down; a replacement order can fill from the next bar on. Within
a bar orders fill along open -> low -> high -> close (close >= open) or open -> high -> low ->
close: crossed at the open first (at the open), then buys from the highest line down and sells
from the lowest line up. Capital per slot: without ``order_size``, each slot's quantity is
capital x leverage / slots / (1 + max(maker, taker)) / its buy line, so every slot can be bought
at once with fees; with ``order_size`` every order is that many units (whatever the leverage).
A buy whose cost (price x quantity + fee) exceeds the buying power, cash + (leverage - 1) x
capital, stays resting and is counted as refused. Each filled sell closes a round trip (reason
``grid``).

DCA (engine.nb.dca): a market buy of ``amount`` quote (fee on top; less if the buying power,
cash + (leverage - 1) x capital, is short) at the open of the first bar of each calendar period
(UTC; weeks start Monday) or every ``every_bars`` bars from the first trading bar. Take profit:
a resting limit sell of everything at average fill price x (1 + take_profit); stop loss: a
resting stop sell at average x (1 - stop_loss). Each exit closes one round trip (the cycle) and
the next scheduled buy starts a new one.

Leverage (1 to 125, default 1) lends the account up to (leverage - 1) x capital: cash may go
negative down to (1 - leverage) x capital (a fixed credit line, no interest; at leverage 1 cash
never goes below 0, the unlevered rules above). Liquidation, with the maintenance margin rate m
(``maintenance_margin_rate``; None -> 0.5 / leverage when leverage > 1, never at 1, as
engine.execution.Execution.maintenance_rate): the whole long position is liquidated when equity
(cash + units x price) falls to m x units x price, i.e. at price -cash / (units x (1 - m)), which
exists only while cash is borrowed (negative). It is checked like a stop along the bar's path
(longs: on the way down to the low): an open at or below it liquidates at the open; otherwise the
bar reaching it liquidates at it. Grid: checked before and after each buy on the way down (a
buy that itself leaves equity at or under the maintenance margin liquidates at its own price),
so a lower buy line is never filled past the liquidation price. DCA: the higher of the stop
loss and the liquidation price applies, checked at the open, then after the scheduled buy
against the bar's range (a buy that leaves equity at or under the maintenance margin thus
liquidates at the open). A liquidation sells every unit at once with the taker
fee as one round trip with exit_reason ``liquidation`` (entry: the held units' average price
and first entry time), cancels every resting order, and the template stops trading for the
rest of the run (what is left, m x notional minus the fee, or less after a gap, stays as cash;
it may be negative after a gap: the account owes it). A log line reports the liquidation.

Results as run_backtest's: metrics (engine.stats) over the trading period's equity, equity and
exposure sampled to max_points, fills as ``trades`` with commission and ``liquidity``
(maker/taker), round trips, positions open at the end, one log line (and one for a
liquidation); on_progress after each chunk
of chunk_bars bars, returning False raises Cancelled. Outputs do not depend on the chunk size.
``warm_up`` compiles (or loads from the cache) both kernels with the one signature every run
uses, whatever the plan, fees or leverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.data.bars import iso
from engine.data.periods import DAY_NS
from engine.data.store import Bars
from engine.execution import Execution
from engine.frame import closes_at
from engine.nb.dca import (
    D_SIZE,
    D_UNITS,
    N_CYCLE_BAR,
    P_AMOUNT,
    P_FLOOR,
    P_MAKER,
    P_MMR,
    P_SIZE,
    P_SL,
    P_TAKER,
    P_TP,
    dca_chunk_nb,
)
from engine.nb.grid import (
    G_SIZE,
    GP_FLOOR,
    GP_MAKER,
    GP_MMR,
    GP_SIZE,
    GP_TAKER,
    S_ENTRY,
    S_ENTRY_BAR,
    S_QTY,
    S_SIDE,
    SELL,
    grid_chunk_nb,
    new_slots_nb,
    start_nb,
)
from engine.nb.resting import (
    BUY,
    FILL_DTYPE,
    N_FILLS,
    N_REFUSED,
    N_SIZE,
    N_TRIPS,
    REASON_LIQUIDATION,
    REASON_NAMES,
    TRIP_DTYPE,
)
from engine.output import LogLine
from engine.run import BacktestOutput, Cancelled, Progress
from engine.stats import compute_metrics, period_returns
from engine.stats import periods_per_year as default_periods_per_year
from engine.templates.params import TemplateError
from engine.templates.plans import DcaPlan, GridPlan

__all__ = ["run_template", "warm_up"]

HOUR_NS = 3_600 * 10**9


@dataclass
class Book:
    """A kernel's state, records and per-bar curves."""

    fstate: np.ndarray
    istate: np.ndarray
    fills: np.ndarray
    trips: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    units: np.ndarray


def run_template(
    bars: dict[str, Bars],
    plan: GridPlan | DcaPlan,
    capital: float,
    trade_start_ns: int,
    *,
    maker_bps: float,
    taker_bps: float,
    on_progress: Callable[[Progress], bool] | None = None,
    chunk_bars: int = 20_000,
    max_points: int = 2_000,
    periods_per_year: float | None = None,
    leverage: float = 1.0,
    maintenance_margin_rate: float | None = None,
    risk_free_rate: float = 0.0,
    benchmark: Bars | None = None,
) -> BacktestOutput:
    """Run a grid or DCA plan over one symbol's bars; see the module docstring for the rules."""
    symbol, b = _check(bars, plan, capital, maker_bps, taker_bps, chunk_bars, max_points)
    mmr = _margin(leverage, maintenance_margin_rate)
    floor = (1.0 - float(leverage)) * capital  # +0.0 at leverage 1
    start = int(np.searchsorted(b.ts, trade_start_ns, side="left"))
    if start >= len(b):
        raise ValueError("no bars at or after trade_start_ns")
    o, h, lo, c = (
        np.ascontiguousarray(x, dtype=np.float64) for x in (b.open, b.high, b.low, b.close)
    )
    maker, taker = maker_bps / 1e4, taker_bps / 1e4
    book = _book(len(b), capital, plan)
    if isinstance(plan, GridPlan):
        slots = _grid_slots(plan, capital * float(leverage), max(maker, taker))
        gp = np.zeros(GP_SIZE)
        gp[GP_MAKER], gp[GP_TAKER], gp[GP_FLOOR], gp[GP_MMR] = maker, taker, floor, mmr
        start_nb(start, o[start], slots, gp, book.fstate, book.istate, book.fills)

        def step(i0: int, i1: int) -> int:
            return grid_chunk_nb(i0, i1, o, h, lo, c, slots, gp, *_arrays(book))
    else:
        params = _dca_params(plan, maker, taker, floor, mmr)
        buy = dca_schedule(np.asarray(b.ts, dtype=np.int64), start, plan)

        def step(i0: int, i1: int) -> int:
            return dca_chunk_nb(i0, i1, o, h, lo, c, buy, params, *_arrays(book))

    _loop(step, book, start, len(b), chunk_bars, on_progress)
    opened = _grid_open(slots) if isinstance(plan, GridPlan) else _dca_open(book)
    ts = np.asarray(b.ts, dtype=np.int64)
    step_ns = int(np.median(np.diff(ts))) if len(b) > 1 else DAY_NS
    ppy = periods_per_year or default_periods_per_year(step_ns)
    versus = None if benchmark is None else closes_at(benchmark, ts[start:])
    return _output(symbol, b, start, book, opened, (ppy, risk_free_rate, versus), max_points)


def _check(
    bars: dict[str, Bars],
    plan: GridPlan | DcaPlan,
    capital: float,
    maker_bps: float,
    taker_bps: float,
    chunk_bars: int,
    max_points: int,
) -> tuple[str, Bars]:
    """Return the one symbol and its bars, or raise ValueError."""
    if len(bars) != 1:
        raise TemplateError("symbols", f"grid and DCA templates trade one symbol, got {len(bars)}")
    checks = [
        (isinstance(plan, GridPlan | DcaPlan), "plan must be a GridPlan or a DcaPlan"),
        (capital > 0, "capital must be positive"),
        (maker_bps >= 0 and taker_bps >= 0, "maker_bps and taker_bps must be >= 0"),
        (chunk_bars >= 1 and max_points >= 2, "chunk_bars >= 1 and max_points >= 2"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    ((symbol, b),) = bars.items()
    return symbol, b


def _margin(leverage: float, maintenance_margin_rate: float | None) -> float:
    """Check leverage and the maintenance rate; return the rate (NaN: no liquidation)."""
    if not _finite(leverage) or not 1 <= leverage <= 125:
        raise TemplateError("leverage", f"must be a number from 1 to 125, got {leverage!r}")
    m = maintenance_margin_rate
    if m is not None and (not _finite(m) or not 0 <= m < 1 / leverage):
        raise TemplateError(
            "maintenance_margin_rate", f"must be at least 0 and below 1 / leverage, got {m!r}"
        )
    return Execution(leverage=leverage, maintenance_margin_rate=m).maintenance_rate()


def _finite(x: object) -> bool:
    """Return whether x is a finite real number (not a bool)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _book(n: int, capital: float, plan: GridPlan | DcaPlan) -> Book:
    """Return fresh state and records sized for a first stretch of bars."""
    size = G_SIZE if isinstance(plan, GridPlan) else D_SIZE
    fstate = np.zeros(size)
    fstate[0] = capital  # G_CASH == D_CASH == 0
    per_bar = plan.slots if isinstance(plan, GridPlan) else 3
    cap = 256 + 2 * per_bar  # doubled by _grow whenever a chunk could overflow it
    return Book(
        fstate, np.zeros(N_SIZE, dtype=np.int64),
        np.zeros(cap, FILL_DTYPE), np.zeros(cap, TRIP_DTYPE),
        np.full(n, capital), np.full(n, capital), np.zeros(n),
    )  # fmt: skip


def _arrays(book: Book) -> tuple[np.ndarray, ...]:
    """Return the kernel arguments after the params: state, records, curves."""
    return (book.fstate, book.istate, book.fills, book.trips, book.equity, book.cash, book.units)


def _grid_slots(plan: GridPlan, power: float, fee: float) -> np.ndarray:
    """Return the slot table with each slot's order quantity; power is capital x leverage."""
    levels = np.asarray(plan.levels, dtype=np.float64)
    if plan.order_size is not None:
        qty = np.full(plan.slots, float(plan.order_size))
    else:
        qty = power / plan.slots / (1.0 + fee) / levels[:-1]
    return new_slots_nb(levels, qty)


def _dca_params(plan: DcaPlan, maker: float, taker: float, floor: float, mmr: float) -> np.ndarray:
    """Return the DCA kernel's params array."""
    p = np.zeros(P_SIZE)
    p[P_AMOUNT], p[P_TAKER], p[P_MAKER] = plan.amount, taker, maker
    p[P_FLOOR], p[P_MMR] = floor, mmr
    p[P_TP] = np.nan if plan.take_profit is None else plan.take_profit
    p[P_SL] = np.nan if plan.stop_loss is None else plan.stop_loss
    return p


def dca_schedule(ts: np.ndarray, start: int, plan: DcaPlan) -> np.ndarray:
    """Return the bars whose open buys: the first trading bar, then each new period's first bar."""
    buy = np.zeros(ts.size, dtype=np.bool_)
    if plan.every_bars is not None:
        buy[start :: plan.every_bars] = True
        return buy
    period = _period(ts[start:], plan.interval or "1d")
    buy[start] = True
    buy[start + 1 :] = period[1:] != period[:-1]
    return buy


def _period(ts: np.ndarray, interval: str) -> np.ndarray:
    """Return each time's UTC calendar period number."""
    if interval in ("1h", "4h"):
        return ts // (HOUR_NS * (4 if interval == "4h" else 1))
    days = ts // DAY_NS
    if interval == "1d":
        return days
    if interval == "1w":
        return (days + 3) // 7  # 1970-01-01 was a Thursday: weeks start on Monday
    months = ts.astype("datetime64[ns]").astype("datetime64[M]")
    return months.astype(np.int64)


def _loop(
    step: Callable[[int, int], int],
    book: Book,
    start: int,
    n: int,
    chunk_bars: int,
    on_progress: Callable[[Progress], bool] | None,
) -> None:
    """Run the kernel chunk by chunk, growing the records when full and reporting progress."""
    peak, max_dd = -np.inf, 0.0
    for u0 in range(start, n, chunk_bars):
        u1 = min(u0 + chunk_bars, n)
        i = u0
        while i < u1:
            i = step(i, u1)
            if i < u1:
                _grow(book)
        if on_progress is None:
            continue
        eq = book.equity[u0:u1]
        peak = max(peak, float(eq.max()))
        max_dd = max(max_dd, float((1.0 - eq / np.maximum.accumulate(np.maximum(eq, peak))).max()))
        metrics = {
            "equity": float(eq[-1]),
            "drawdown": float(1.0 - eq[-1] / peak),
            "max_drawdown": max_dd,
            "trade_count": float(book.istate[N_TRIPS]),
        }
        if on_progress(Progress(u1 - start, n - start, metrics)) is False:
            raise Cancelled()


def _grow(book: Book) -> None:
    """Double the fill and round-trip records."""
    book.fills = np.concatenate([book.fills, np.zeros(book.fills.size, FILL_DTYPE)])
    book.trips = np.concatenate([book.trips, np.zeros(book.trips.size, TRIP_DTYPE)])


def _grid_open(slots: np.ndarray) -> list[tuple[int, float, float]]:
    """Return (entry bar, entry price, quantity) of every slot holding units."""
    held = slots[slots[:, S_SIDE] == SELL]
    return [(int(r[S_ENTRY_BAR]), float(r[S_ENTRY]), float(r[S_QTY])) for r in held]


def _dca_open(book: Book) -> list[tuple[int, float, float]]:
    """Return the open DCA cycle as (first buy bar, average price, quantity), if any."""
    units = float(book.fstate[D_UNITS])
    if units <= 0:
        return []
    return [(int(book.istate[N_CYCLE_BAR]), float(book.fstate[2]) / units, units)]


def _output(
    symbol: str,
    b: Bars,
    start: int,
    book: Book,
    opened: list[tuple[int, float, float]],
    annual: tuple[float, float, np.ndarray | None],
    max_points: int,
) -> BacktestOutput:
    """Assemble metrics, sampled curves, fills, round trips and the log line."""
    ts = np.asarray(b.ts, dtype=np.int64)
    eq, cash, units = book.equity[start:], book.cash[start:], book.units[start:]
    trips = book.trips[: book.istate[N_TRIPS]]
    close = np.asarray(b.close, dtype=np.float64)[start:]
    ppy, risk_free_rate, versus = annual  # per year, annual risk-free rate, benchmark closes
    metrics = compute_metrics(
        eq, units > 0, trips["pnl"], ppy, both_hit=int(trips["both_hit"].sum()),
        timestamps=ts[start:], benchmark=close,
        commissions=float(book.fills["commission"][: book.istate[N_FILLS]].sum()),
        trip_returns=trips["ret"], trip_times=ts[np.stack([trips["entry_bar"], trips["exit_bar"]])],
        trip_bars=trips["exit_bar"] - trips["entry_bar"], risk_free_rate=risk_free_rate,
        versus=versus,
    )  # fmt: skip
    sample = _sample(eq.size, max_points)
    last = float(close[-1])
    return BacktestOutput(
        metrics=metrics,
        equity=[
            {"timestamp": int(ts[start + k]), "equity": float(eq[k]), "cash": float(cash[k]),
             "positions": float(eq[k] - cash[k])}
            for k in sample
        ],
        trades=_fills(symbol, ts, book),
        round_trips=_trips(symbol, ts, trips),
        exposure=[
            {"timestamp": int(ts[start + k]), "symbol": symbol, "quantity": float(units[k]),
             "value": float(units[k] * close[k]),
             "weight": float(units[k] * close[k] / eq[k]) if eq[k] > 0 else 0.0}
            for k in sample
        ],
        logs=[_log(symbol, len(b), start, book), *_liquidation_log(symbol, trips, ts)],
        bars=int(eq.size),
        period={"start": int(ts[start]), "end": int(ts[-1])},
        **period_returns(eq, ts[start:]),
        open_positions=[
            {"symbol": symbol, "side": "long", "entry_time": int(ts[bar]), "entry_price": price,
             "quantity": qty, "last_price": last, "value": qty * last,
             "unrealized_pnl": qty * (last - price)}
            for bar, price, qty in opened
        ],
    )  # fmt: skip


def _sample(n: int, max_points: int) -> np.ndarray:
    """Return the last index of each of at most max_points equal buckets, ending at n - 1."""
    size = -(-n // max_points)
    return np.minimum(np.arange(size - 1, n + size - 1, size), n - 1)


def _fills(symbol: str, ts: np.ndarray, book: Book) -> list[dict]:
    """Return the fills as dicts."""
    f = book.fills[: book.istate[N_FILLS]]
    return [
        {"symbol": symbol, "timestamp": int(ts[bar]), "side": "buy" if side == BUY else "sell",
         "quantity": q, "price": p, "commission": fee, "liquidity": "maker" if mk else "taker"}
        for bar, side, q, p, fee, mk in zip(
            f["bar"].tolist(), f["side"].tolist(), f["quantity"].tolist(), f["price"].tolist(),
            f["commission"].tolist(), f["maker"].tolist(), strict=True,
        )
    ]  # fmt: skip


def _trips(symbol: str, ts: np.ndarray, trips: np.ndarray) -> list[dict]:
    """Return the closed round trips as dicts, in run_backtest's shape."""
    return [
        {"symbol": symbol, "side": "long", "entry_time": int(ts[t["entry_bar"]]),
         "exit_time": int(ts[t["exit_bar"]]), "entry_price": float(t["entry_price"]),
         "exit_price": float(t["exit_price"]), "quantity": float(t["quantity"]),
         "pnl": float(t["pnl"]), "return": float(t["ret"]), "r_multiple": None,
         "exit_reason": REASON_NAMES[int(t["reason"])], "both_hit": bool(t["both_hit"])}
        for t in trips
    ]  # fmt: skip


def _log(symbol: str, n: int, start: int, book: Book) -> LogLine:
    """Return a one-line summary."""
    return LogLine(
        f"{symbol}: {n - start} bars traded ({start} warm-up), {int(book.istate[N_FILLS])} fills, "
        f"{int(book.istate[N_TRIPS])} round trips, {int(book.istate[N_REFUSED])} buys refused "
        f"for cash, final cash {float(book.fstate[0]):.2f}"
    )


def _liquidation_log(symbol: str, trips: np.ndarray, ts: np.ndarray) -> list[LogLine]:
    """Return a line for the liquidation that stopped the run, if any (run_backtest's wording)."""
    return [
        LogLine(
            f"liquidation: {symbol} long of {float(t['quantity']):g} entered at "
            f"{float(t['entry_price']):g}, closed at {float(t['exit_price']):g} at "
            f"{iso(int(ts[t['exit_bar']]))}, pnl {float(t['pnl']):.2f}; the template stopped"
            " trading",
            "warning",
        )
        for t in trips
        if t["reason"] == REASON_LIQUIDATION
    ]


def warm_up() -> None:
    """Run a tiny grid and DCA (3x, liquidated by a crash) so a worker compiles them up front."""
    n = 48
    x = np.concatenate([np.full(n // 2, 100.0), np.linspace(100.0, 40.0, n // 2)])
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    bars = {"X": Bars(ts, x, x + 1.0, x - 1.0, x - 0.5, np.ones(n))}
    grid = GridPlan(tuple(float(v) for v in np.linspace(90.0, 110.0, 5)))
    for plan in (grid, DcaPlan(50.0, None, 2, take_profit=0.05)):
        run_template(bars, plan, 1000.0, 0, maker_bps=1.0, taker_bps=2.0, leverage=3)
