"""The bar-loop kernel on tiny hand-made series, with fills worked out by hand."""

import numpy as np
import pytest

from engine.nb.records import (
    F_CASH,
    F_UNITS,
    FILL_DTYPE,
    I_FILLS,
    I_TRIPS,
    TRIP_DTYPE,
    new_state,
)
from engine.nb.simulate import simulate_chunk_nb

# open, high, low, close
BASE = [
    (10.0, 10.5, 9.5, 10.0),
    (10.0, 11.0, 9.8, 10.5),
    (10.5, 12.0, 10.4, 11.8),
    (12.0, 12.5, 11.9, 12.2),
    (12.2, 12.4, 12.0, 12.1),
    (12.1, 12.3, 11.9, 12.0),
]


def run(rows, entry=(), exit_=(), stop=None, fee=0.0, slip=0.0, max_hold=0, lot=0.0, cash=1000.0):
    """Run the kernel over hand-made bars with entry/exit at the given bar indices."""
    o, h, lo, c = (np.array(col) for col in zip(*rows, strict=True))
    n = o.size
    e = np.zeros(n, bool)
    e[list(entry)] = True
    x = np.zeros(n, bool)
    x[list(exit_)] = True
    sd = np.full(n, np.nan if stop is None else stop)
    fstate, istate = new_state(cash)
    fills, trips = np.zeros(2 * n + 2, FILL_DTYPE), np.zeros(n + 1, TRIP_DTYPE)
    eq, ca, un = np.zeros(n), np.zeros(n), np.zeros(n)
    args = (
        o,
        h,
        lo,
        c,
        e,
        x,
        sd,
        fee,
        slip,
        max_hold,
        lot,
        fstate,
        istate,
        fills,
        trips,
        eq,
        ca,
        un,
    )
    simulate_chunk_nb(0, n, *args)
    return fills[: istate[I_FILLS]], trips[: istate[I_TRIPS]], eq, fstate, c


def test_entry_next_open_fee_lot_and_signal_exit():
    fills, trips, eq, fstate, _close = run(BASE, entry=[0], exit_=[2], fee=0.001, lot=1.0)
    # buy at bar 1 open 10: 1000 / (10 * 1.001) = 99.9 -> 99 units, 990 notional, 0.99 fee
    assert fills[0]["bar"] == 1 and fills[0]["price"] == 10.0 and fills[0]["quantity"] == 99.0
    assert fills[0]["commission"] == pytest.approx(0.99, rel=1e-12)
    # exit decided at bar 2's close, sells at bar 3 open 12: 1188 notional, 1.188 fee
    assert fills[1]["bar"] == 3 and fills[1]["price"] == 12.0
    assert fills[1]["commission"] == pytest.approx(1.188, rel=1e-12)
    assert fstate[F_CASH] == pytest.approx(1000 - 990.99 + 1188 - 1.188, rel=1e-12)
    assert trips[0]["pnl"] == pytest.approx(1186.812 - 990.99, rel=1e-12)
    assert trips[0]["ret"] == pytest.approx((1186.812 - 990.99) / 990.99, rel=1e-12)
    assert trips[0]["reason"] == 0
    # while holding, equity is cash + units * close
    assert eq[2] == pytest.approx(9.01 + 99 * 11.8, rel=1e-12)
    assert eq[-1] == pytest.approx(fstate[F_CASH], rel=1e-12)


def test_slippage_on_both_sides():
    fills, trips, _, fstate, _ = run(BASE, entry=[0], exit_=[2], slip=0.01, lot=0.5)
    # buy at 10 * 1.01 = 10.1: 1000 / 10.1 = 99.0099 -> 99.0 units, cost 999.9
    assert fills[0]["price"] == pytest.approx(10.1) and fills[0]["quantity"] == 99.0
    # sell at 12 * 0.99 = 11.88 -> 1176.12
    assert fills[1]["price"] == pytest.approx(11.88)
    assert fstate[F_CASH] == pytest.approx(0.1 + 1176.12, rel=1e-12)
    assert trips[0]["pnl"] == pytest.approx(1176.12 - 999.9, rel=1e-12)


def test_stop_gap_through_fills_at_open():
    rows = list(BASE)
    rows[2] = (8.5, 8.9, 8.0, 8.6)  # opens below the stop at 10 - 1 = 9
    fills, trips, _, fstate, _ = run(rows, entry=[0], stop=1.0)
    assert fills[1]["bar"] == 2 and fills[1]["price"] == 8.5 and trips[0]["reason"] == 1
    assert fstate[F_CASH] == pytest.approx(100 * 8.5) and fstate[F_UNITS] == 0.0


def test_stop_inside_bar_fills_at_stop_price():
    rows = list(BASE)
    rows[2] = (9.5, 9.7, 8.8, 9.2)
    fills, trips, _, fstate, _ = run(rows, entry=[0], stop=1.0)
    assert fills[1]["bar"] == 2 and fills[1]["price"] == 9.0 and trips[0]["reason"] == 1
    assert fstate[F_CASH] == pytest.approx(900.0)


def test_stop_on_the_fill_bar_after_its_open():
    rows = list(BASE)
    rows[1] = (10.0, 10.2, 8.9, 9.5)
    fills, _trips, *_ = run(rows, entry=[0], stop=1.0)
    assert [f["bar"] for f in fills] == [1, 1] and fills[1]["price"] == 9.0


def test_max_hold_exits_at_next_open():
    fills, trips, *_ = run(BASE, entry=[0], max_hold=2)
    # filled at bar 1, held bars 1 and 2, sells at bar 3's open
    assert fills[1]["bar"] == 3 and fills[1]["price"] == 12.0 and trips[0]["reason"] == 2


def test_open_position_stays_open_and_is_marked_to_close():
    fills, trips, eq, fstate, close = run(BASE, entry=[0, 3])
    assert len(fills) == 1 and len(trips) == 0
    assert eq[-1] == pytest.approx(fstate[F_CASH] + fstate[F_UNITS] * close[-1], rel=1e-12)
    assert fstate[F_UNITS] == pytest.approx(100.0)


def test_re_entry_after_exit_and_no_order_from_last_bar():
    fills, _trips, *_ = run(BASE, entry=[0, 3, 5], exit_=[1])
    # buy bar 1, exit decided bar 1 -> sell bar 2, entry at bar 3 -> buy bar 4; bar 5 is last
    assert [(int(f["bar"]), int(f["side"])) for f in fills] == [(1, 0), (2, 1), (4, 0)]
