"""run_template: run a grid or DCA plan on its kernel through the pipeline of every run.

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

Results as run_backtest's, from the same Book, records and output builder (engine.book.plan_book,
engine.drive.run_chunks, engine.results.output_of): metrics (engine.stats) over the trading
period's equity, equity and exposure sampled to max_points, fills as ``trades`` with commission
and ``liquidity`` (maker/taker), round trips (r_multiple None: a plan sets no initial risk),
positions open at the end (each held grid slot; the open DCA cycle at its average price), the
summary log line (refused buys counted as refused entries), one for a liquidation and the final
cash; on_progress after each chunk of chunk_bars bars, returning False raises Cancelled. Outputs
do not depend on the chunk size. ``warm_up`` compiles (or loads from the cache) both kernels
with the one signature every run uses, whatever the plan, fees or leverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from engine.book import Book, plan_book
from engine.data.periods import DAY_NS
from engine.data.store import RESOLUTIONS, Bars
from engine.drive import Step, run_chunks
from engine.execution import Execution
from engine.frame import Frame, prepare_frame
from engine.nb.dca import (
    D_COST,
    D_SIZE,
    DI_SIZE,
    I_CYCLE_BAR,
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
    GI_SIZE,
    GP_FLOOR,
    GP_MAKER,
    GP_MMR,
    GP_SIZE,
    GP_TAKER,
    S_ENTRY,
    S_ENTRY_BAR,
    S_ENTRY_FEE,
    S_QTY,
    S_SIDE,
    grid_chunk_nb,
    new_slots_nb,
    start_nb,
)
from engine.nb.records import (
    I_SKIPPED,
    LONG,
    P_COMMISSION,
    P_ENTRY,
    P_ENTRY_BAR,
    P_MARGIN,
    P_SIDE,
    P_UNITS,
    S_SKIPPED,
    SIDE_SELL,
)
from engine.nb.resting import F_UNITS
from engine.output import BacktestOutput, Progress
from engine.results import output_of
from engine.stats import periods_per_year as default_periods_per_year
from engine.templates.params import TemplateError
from engine.templates.plans import DcaPlan, GridPlan

__all__ = ["dca_schedule", "run_template", "warm_up"]

HOUR_NS = RESOLUTIONS["1h"]
FIRST_RECORDS = 256  # plus two a slot; doubled by engine.drive whenever a chunk could overflow


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
    b = _check(bars, plan, capital, maker_bps, taker_bps, chunk_bars, max_points)
    ex = _execution(leverage, maintenance_margin_rate)
    ts = np.asarray(b.ts, dtype=np.int64)
    step_ns = int(np.median(np.diff(ts))) if len(b) > 1 else DAY_NS
    ppy = periods_per_year or default_periods_per_year(step_ns)
    frame = prepare_frame(
        bars, ex, trade_start_ns, periods_per_year=ppy, risk_free_rate=risk_free_rate,
        benchmark=benchmark,
    )  # fmt: skip
    floor = (1.0 - float(leverage)) * capital  # +0.0 at leverage 1
    terms = (maker_bps / 1e4, taker_bps / 1e4, floor, ex.maintenance_rate())
    if isinstance(plan, GridPlan):
        book, step, hold = _grid(frame, plan, capital, float(leverage), terms, max_points)
    else:
        book, step, hold = _dca(frame, plan, capital, terms, max_points)
    run_chunks(book, chunk_bars, on_progress, step)
    book.sstate[0, S_SKIPPED] = book.istate[I_SKIPPED]
    hold(book)
    return output_of(book, ppy)


def _check(
    bars: dict[str, Bars],
    plan: GridPlan | DcaPlan,
    capital: float,
    maker_bps: float,
    taker_bps: float,
    chunk_bars: int,
    max_points: int,
) -> Bars:
    """Return the one symbol's bars, or raise ValueError."""
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
    (b,) = bars.values()
    return b


def _execution(leverage: float, maintenance_margin_rate: float | None) -> Execution:
    """Check leverage and the maintenance rate; return them as an Execution."""
    if not _finite(leverage) or not 1 <= leverage <= 125:
        raise TemplateError("leverage", f"must be a number from 1 to 125, got {leverage!r}")
    m = maintenance_margin_rate
    if m is not None and (not _finite(m) or not 0 <= m < 1 / leverage):
        raise TemplateError(
            "maintenance_margin_rate", f"must be at least 0 and below 1 / leverage, got {m!r}"
        )
    return Execution(leverage=leverage, maintenance_margin_rate=m)


def _finite(x: object) -> bool:
    """Return whether x is a finite real number (not a bool)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


Terms = tuple[float, float, float, float]  # maker and taker rates, cash floor, maintenance rate


def _grid(
    frame: Frame, plan: GridPlan, capital: float, leverage: float, terms: Terms, max_points: int
) -> tuple[Book, Step, Callable[[Book], None]]:
    """Return the grid's Book (market buys of the first open done), its step and its holdings."""
    maker, taker, floor, mmr = terms
    slots = _grid_slots(plan, capital * leverage, max(maker, taker))
    gp = np.zeros(GP_SIZE)
    gp[GP_MAKER], gp[GP_TAKER], gp[GP_FLOOR], gp[GP_MMR] = maker, taker, floor, mmr
    first = FIRST_RECORDS + 2 * plan.slots
    book = plan_book(frame, gp, capital, max_points, (G_SIZE, GI_SIZE), plan.slots, first)
    start = int(frame.starts[0])
    start_nb(start, book.ohlc[0][start], slots, gp, book.fstate, book.istate, book.fills)

    def hold(b: Book) -> None:
        for j in np.flatnonzero(slots[:, S_SIDE] == SIDE_SELL).tolist():
            s = slots[j]
            _hold(b.pos, j, s[S_ENTRY_BAR], s[S_ENTRY], s[S_QTY], s[S_ENTRY_FEE])

    return book, _step(grid_chunk_nb, slots), hold


def _grid_slots(plan: GridPlan, power: float, fee: float) -> np.ndarray:
    """Return the slot table with each slot's order quantity; power is capital x leverage."""
    levels = np.asarray(plan.levels, dtype=np.float64)
    if plan.order_size is not None:
        qty = np.full(plan.slots, float(plan.order_size))
    else:
        qty = power / plan.slots / (1.0 + fee) / levels[:-1]
    return new_slots_nb(levels, qty)


def _dca(
    frame: Frame, plan: DcaPlan, capital: float, terms: Terms, max_points: int
) -> tuple[Book, Step, Callable[[Book], None]]:
    """Return the DCA's Book, its step and its holding (the open cycle)."""
    p = np.zeros(P_SIZE)
    p[P_MAKER], p[P_TAKER], p[P_FLOOR], p[P_MMR] = terms
    p[P_AMOUNT] = plan.amount
    p[P_TP] = np.nan if plan.take_profit is None else plan.take_profit
    p[P_SL] = np.nan if plan.stop_loss is None else plan.stop_loss
    book = plan_book(frame, p, capital, max_points, (D_SIZE, DI_SIZE), 1, FIRST_RECORDS + 6)
    buy = dca_schedule(frame.ts, int(frame.starts[0]), plan)

    def hold(b: Book) -> None:
        units = float(b.fstate[F_UNITS])
        if units > 0:
            _hold(b.pos, 0, b.istate[I_CYCLE_BAR], float(b.fstate[D_COST]) / units, units, 0.0)

    return book, _step(dca_chunk_nb, buy), hold


def _step(kernel: Callable[..., int], table: np.ndarray) -> Step:
    """Return the Book step of a plan's kernel reading its table (grid slots, DCA schedule)."""

    def step(b: Book, i: int, end: int) -> int:
        return kernel(
            i, end, *b.ohlc, table, b.params, b.fstate, b.istate, b.fills, b.trips, b.equity,
            b.cash, b.units,
        )  # fmt: skip

    return step


def _hold(pos: np.ndarray, k: int, bar: float, price: float, qty: float, fees: float) -> None:
    """Write a long holding into position row k as the strategy loop keeps an open position."""
    pos[k, P_SIDE], pos[k, P_UNITS], pos[k, P_ENTRY] = LONG, qty, price
    pos[k, P_MARGIN] = price  # the whole notional: its value is units x price
    pos[k, P_ENTRY_BAR], pos[k, P_COMMISSION] = bar, fees


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


def warm_up() -> None:
    """Run a tiny grid and DCA (3x, liquidated by a crash) so a worker compiles them up front."""
    n = 48
    x = np.concatenate([np.full(n // 2, 100.0), np.linspace(100.0, 40.0, n // 2)])
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    bars = {"X": Bars(ts, x, x + 1.0, x - 1.0, x - 0.5, np.ones(n))}
    grid = GridPlan(tuple(float(v) for v in np.linspace(90.0, 110.0, 5)))
    for plan in (grid, DcaPlan(50.0, None, 2, take_profit=0.05)):
        run_template(bars, plan, 1000.0, 0, maker_bps=1.0, taker_bps=2.0, leverage=3)
