"""Build a finished run's output from its Book: metrics, sampled curves, fills, trips, logs."""

from __future__ import annotations

import weakref

import numpy as np

from engine.book import Book, curves, exposure_arrays
from engine.data.bars import iso
from engine.nb.orders import value_at_nb
from engine.nb.records import (
    F_CASH,
    I_FILLS,
    I_TRIPS,
    P_ENTRY,
    P_ENTRY_BAR,
    P_SIDE,
    P_UNITS,
    REASON_LIQUIDATION,
    REASON_NAMES,
    S_SKIPPED,
    SIDE_BUY,
)
from engine.output import BacktestOutput, LogLine, Table
from engine.stats import compute_metrics, period_returns


def output_of(b: Book, ppy: float) -> BacktestOutput:
    """Assemble metrics, sampled curves, fills, round trips and logs."""
    equity, cash = curves(b)
    in_market, units, marks = exposure_arrays(b)
    values = units * marks
    round_trips = _trips(b)
    return BacktestOutput(
        metrics=metrics_of(b, equity, in_market, ppy),
        equity=_equity_points(b, equity, cash, values),
        trades=_fills(b),
        round_trips=round_trips,
        exposure=_exposure_points(b, equity, units, values),
        logs=_logs(b, round_trips),
        bars=int(b.clock.size),
        open_positions=_open_positions(b),
        period={"start": int(b.clock[0]), "end": int(b.clock[-1])},
        **period_returns(equity, b.clock),
    )


def metrics_of(
    b: Book, equity: np.ndarray, in_market: np.ndarray, ppy: float
) -> dict[str, float | None]:
    """Return the run's metrics from its equity curve, exposure, fills and closed round trips."""
    trips = b.trips[: b.istate[I_TRIPS]]
    times = b.ts[np.stack([trips["entry_bar"], trips["exit_bar"]])]
    return compute_metrics(
        equity, in_market, trips["pnl"], ppy,
        r_multiple=trips["r_multiple"], both_hit=int(trips["both_hit"].sum()),
        timestamps=b.clock, benchmark=buy_and_hold(b),
        commissions=float(b.fills["commission"][: b.istate[I_FILLS]].sum()),
        trip_returns=trips["ret"], trip_times=times,
        trip_bars=trips["exit_bar"] - trips["entry_bar"],
        risk_free_rate=b.risk_free_rate, versus=b.versus,
    )  # fmt: skip


_BENCH: tuple = (None, None, None)  # weakrefs to the last run's clock and closes, its curve


def buy_and_hold(b: Book) -> np.ndarray:
    """Return the equal-weight buy-and-hold value per clock step, 1 at the first step.

    Each symbol with bars in the trading period is bought at its first traded bar's close with
    an equal share of the capital and held: the share is worth close / first close from then on
    (its last close between its bars; cash, 1, before its first bar). One symbol: its closes.
    """
    global _BENCH
    close = b.ohlc[3]
    ref_clock, ref_close, curve = _BENCH
    if ref_clock is not None and ref_clock() is b.clock and ref_close() is close:
        return curve  # a sweep's variants share the frame's arrays
    if not b.portfolio:
        start = int(b.starts[0])
        curve = close[start : start + b.clock.size] / close[start]
        _BENCH = (weakref.ref(b.clock), weakref.ref(close), curve)
        return curve
    steps, total, held = b.clock.size, np.zeros(b.clock.size), 0
    for s in range(len(b.symbols)):
        lo, hi = int(b.starts[s]), int(b.bounds[s, 1])
        if hi <= lo:
            continue
        held += 1
        last = np.full(steps, -1)
        last[np.searchsorted(b.clock, b.ts[lo:hi])] = np.arange(hi - lo)
        last = np.maximum.accumulate(last)  # the symbol's latest bar at each step
        total += np.where(last >= 0, close[lo + np.maximum(last, 0)] / close[lo], 1.0)
    curve = total / max(held, 1)
    _BENCH = (weakref.ref(b.clock), weakref.ref(close), curve)
    return curve


# The listings' column names and label sets, in the order their rows show them.
FILL_LABELS = {"side": ("buy", "sell"), "liquidity": ("taker", "maker")}
TRIP_LABELS = {"side": ("long", "short"), "exit_reason": REASON_NAMES}


def _equity_points(b: Book, equity: np.ndarray, cash: np.ndarray, values: np.ndarray) -> Table:
    """Return the sampled equity curve with the total net and gross exposure."""
    eq, ca = equity[b.snap_steps], cash[b.snap_steps]
    cols = {
        "timestamp": b.clock[b.snap_steps], "equity": eq, "cash": ca, "positions": eq - ca,
        "net_exposure": values.sum(axis=1), "gross_exposure": np.abs(values).sum(axis=1),
    }  # fmt: skip
    return Table(cols, times=("timestamp",))


def _exposure_points(b: Book, equity: np.ndarray, units: np.ndarray, values: np.ndarray) -> Table:
    """Return each symbol's net signed position at the sampled points (point-major)."""
    eq = equity[b.snap_steps][:, None]
    weight = np.divide(values, eq, out=np.zeros(values.shape), where=eq > 0)
    points, count = values.shape[0], len(b.symbols)
    cols = {
        "timestamp": np.repeat(b.clock[b.snap_steps], count),
        "symbol": np.tile(np.arange(count, dtype=np.int64), points),
        "quantity": units.ravel(), "value": values.ravel(), "weight": weight.ravel(),
    }  # fmt: skip
    return Table(cols, {"symbol": tuple(b.symbols)}, ("timestamp",))


def _symbol_index(b: Book, bar: np.ndarray) -> np.ndarray:
    """Return the index of the symbol owning each bar index."""
    return np.searchsorted(b.bounds[:, 1], bar, side="right")


def _fills(b: Book) -> Table:
    """Return the fills, in time order."""
    f = b.fills[: b.istate[I_FILLS]]
    cols = {
        "symbol": _symbol_index(b, f["bar"]), "timestamp": b.ts[f["bar"]],
        "side": (f["side"] != SIDE_BUY).astype(np.int64), "quantity": f["quantity"],
        "price": f["price"], "commission": f["commission"],
        "liquidity": f["maker"].astype(np.int64),
    }  # fmt: skip
    return Table(cols, {"symbol": tuple(b.symbols), **FILL_LABELS}, ("timestamp",))


def _trips(b: Book) -> Table:
    """Return the closed round trips, in the order they closed."""
    t = b.trips[: b.istate[I_TRIPS]]
    cols = {
        "symbol": _symbol_index(b, t["exit_bar"]), "side": (t["side"] < 0).astype(np.int64),
        "entry_time": b.ts[t["entry_bar"]], "exit_time": b.ts[t["exit_bar"]],
        "entry_price": t["entry_price"], "exit_price": t["exit_price"],
        "quantity": t["quantity"], "pnl": t["pnl"], "return": t["ret"],
        "r_multiple": np.where(np.isfinite(t["r_multiple"]), t["r_multiple"], np.nan),
        "commission": t["commission"], "exit_reason": t["reason"], "both_hit": t["both_hit"],
        "liquidated": t["reason"] == REASON_LIQUIDATION,
    }  # fmt: skip
    return Table(cols, {"symbol": tuple(b.symbols), **TRIP_LABELS}, ("entry_time", "exit_time"))


OPEN_COLUMNS = (
    "symbol", "side", "entry_time", "entry_price", "quantity", "last_price", "value",
    "unrealized_pnl",
)  # fmt: skip


def _open_positions(b: Book) -> Table:
    """Return the positions still open at the end, valued at each symbol's last close."""
    m = b.pos.shape[0] // len(b.symbols)
    rows = []
    for k in range(b.pos.shape[0]):  # at most max_open_positions per symbol
        if b.pos[k, P_UNITS] <= 0:
            continue
        s = k // m
        last = float(b.ohlc[3][b.bounds[s, 1] - 1])
        side = float(b.pos[k, P_SIDE])
        units, entry = float(b.pos[k, P_UNITS]), float(b.pos[k, P_ENTRY])
        rows.append(
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
    labels = {"symbol": tuple(b.symbols), "side": TRIP_LABELS["side"]}
    return Table.of_rows(rows, OPEN_COLUMNS, labels, ("entry_time",))


def _logs(b: Book, round_trips: Table) -> list[LogLine]:
    """Return one summary line per symbol, one per liquidation, and the account's final cash."""
    count = len(b.symbols)
    trips = np.bincount(_symbol_index(b, b.trips["exit_bar"][: b.istate[I_TRIPS]]), minlength=count)
    fills = np.bincount(_symbol_index(b, b.fills["bar"][: b.istate[I_FILLS]]), minlength=count)
    lines = [
        LogLine(
            f"{sym}: {int(b.bounds[s, 1] - b.starts[s])} bars traded "
            f"({int(b.starts[s] - b.bounds[s, 0])} warm-up), {int(fills[s])} fills, "
            f"{int(trips[s])} round trips, {int(b.sstate[s, S_SKIPPED])} entries refused by risk "
            "rules or sizing"
        )
        for s, sym in enumerate(b.symbols)
    ]
    lines += [
        LogLine(
            f"liquidation: {t['symbol']} {t['side']} of {t['quantity']:g} entered at "
            f"{t['entry_price']:g}, closed at {t['exit_price']:g} at {iso(t['exit_time'])}, "
            f"pnl {t['pnl']:.2f}",
            "warning",
        )
        for t in _liquidated(round_trips)
    ]
    lines.append(LogLine(f"account: final cash {float(b.fstate[F_CASH]):.2f}"))
    return lines


def _liquidated(round_trips: Table) -> list[dict]:
    """The liquidated round trips as rows (a few, for their log lines)."""
    return [round_trips[int(i)] for i in np.flatnonzero(round_trips.columns["liquidated"])]
