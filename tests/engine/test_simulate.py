"""The bar-loop kernel on tiny hand-made series, with fills worked out by hand."""

import pytest

from engine.nb import records as rec
from engine.nb.records import F_CASH
from tests.engine.kernel import BASE, REASON, run


def test_entry_next_open_fee_lot_and_signal_exit():
    fills, trips, eq, fstate, _ = run(BASE, le=[0], lx=[2], fee=0.001, lot=1.0)
    # buy at bar 1 open 10: 1000 / (10 * 1.001) = 99.9 -> 99 units, 990 notional, 0.99 fee
    assert fills[0]["bar"] == 1 and fills[0]["price"] == 10.0 and fills[0]["quantity"] == 99.0
    assert fills[0]["commission"] == pytest.approx(0.99, rel=1e-12)
    # exit decided at bar 2's close, sells at bar 3 open 12: 1188 notional, 1.188 fee
    assert fills[1]["bar"] == 3 and fills[1]["price"] == 12.0
    assert fills[1]["commission"] == pytest.approx(1.188, rel=1e-12)
    assert fstate[F_CASH] == pytest.approx(1000 - 990.99 + 1188 - 1.188, rel=1e-12)
    assert trips[0]["pnl"] == pytest.approx(1186.812 - 990.99, rel=1e-12)
    assert trips[0]["ret"] == pytest.approx((1186.812 - 990.99) / 990.99, rel=1e-12)
    assert trips[0]["reason"] == REASON["signal"] and trips[0]["side"] == 1
    assert eq[2] == pytest.approx(9.01 + 99 * 11.8, rel=1e-12)
    assert eq[-1] == pytest.approx(fstate[F_CASH], rel=1e-12)


def test_fill_at_same_bar_close():
    fills, trips, *_ = run(BASE, le=[0], lx=[2], fill_close=1.0)
    # buy at bar 0's close 10 -> 100 units; sell at bar 2's close 11.8
    assert [(int(f["bar"]), f["price"]) for f in fills] == [(0, 10.0), (2, 11.8)]
    assert trips[0]["pnl"] == pytest.approx(100 * 1.8)


def test_slippage_on_both_sides():
    fills, trips, _, fstate, _ = run(BASE, le=[0], lx=[2], slip=0.01, lot=0.5)
    # buy at 10 * 1.01 = 10.1: 1000 / 10.1 = 99.0099 -> 99.0 units, cost 999.9
    assert fills[0]["price"] == pytest.approx(10.1) and fills[0]["quantity"] == 99.0
    # sell at 12 * 0.99 = 11.88 -> 1176.12
    assert fills[1]["price"] == pytest.approx(11.88)
    assert fstate[F_CASH] == pytest.approx(0.1 + 1176.12, rel=1e-12)
    assert trips[0]["pnl"] == pytest.approx(1176.12 - 999.9, rel=1e-12)


def test_short_fill_pnl_and_collateral_equity():
    fills, trips, eq, fstate, units = run(BASE, se=[0], sx=[2], fee=0.001)
    # sell short at bar 1 open 10: 1000 / 10.01 = 99.9001 units; cover at bar 3 open 12
    q = 1000 / 10.01
    assert fills[0]["side"] == rec.SIDE_SELL and fills[0]["quantity"] == pytest.approx(q)
    assert fills[1]["side"] == rec.SIDE_BUY and fills[1]["price"] == 12.0
    assert trips[0]["side"] == -1
    assert trips[0]["pnl"] == pytest.approx(-2 * q - q * 10 * 0.001 - q * 12 * 0.001)
    # at bar 2's close (11.8) the short is worth q * (2 * 10 - 11.8)
    assert eq[2] == pytest.approx(q * (20 - 11.8), rel=1e-12) and units[2] == pytest.approx(-q)
    assert fstate[F_CASH] == pytest.approx(1000 + trips[0]["pnl"], rel=1e-12)


def test_stop_gap_through_fills_at_open():
    rows = list(BASE)
    rows[2] = (8.5, 8.9, 8.0, 8.6)  # opens below the stop at 10 - 1 = 9
    fills, trips, _, fstate, _ = run(rows, le=[0], dist=(1.0, None, None))
    assert fills[1]["bar"] == 2 and fills[1]["price"] == 8.5 and trips[0]["reason"] == 1
    assert fstate[F_CASH] == pytest.approx(100 * 8.5)
    assert trips[0]["r_multiple"] == pytest.approx(-1.5)  # lost 1.5 per unit on 1.0 risk


def test_stop_inside_bar_fills_at_stop_price_and_on_the_fill_bar():
    rows = list(BASE)
    rows[2] = (9.5, 9.7, 8.8, 9.2)
    fills, trips, _, fstate, _ = run(rows, le=[0], dist=(1.0, None, None))
    assert fills[1]["bar"] == 2 and fills[1]["price"] == 9.0 and trips[0]["reason"] == 1
    assert fstate[F_CASH] == pytest.approx(900.0) and trips[0]["r_multiple"] == pytest.approx(-1)
    rows = list(BASE)
    rows[1] = (10.0, 10.2, 8.9, 9.5)
    fills, *_ = run(rows, le=[0], dist=(1.0, None, None))
    assert [f["bar"] for f in fills] == [1, 1] and fills[1]["price"] == 9.0


def test_percent_stop_and_r_target():
    # entry 10, stop 5% -> 9.5 (risk 0.5), target 2R -> 11.0, touched by bar 1's high 11.0
    fills, trips, *_ = run(BASE, le=[0], stop_pct=0.05, tp_r=2.0)
    assert fills[1]["bar"] == 1 and fills[1]["price"] == pytest.approx(11.0)
    assert trips[0]["reason"] == REASON["take_profit"]
    assert trips[0]["r_multiple"] == pytest.approx(2.0)


def test_target_gap_fills_at_open():
    # target at 10 + 1.5 = 11.5; bar 3 opens at 12 above it -> fills at 12 (bar 2's high 12 hits
    # first, so move the target out of bar 2's range with an ATR distance of 1.9 -> 11.9)
    fills, trips, *_ = run(BASE, le=[0], dist=(None, 1.9, None))
    assert fills[1]["bar"] == 2 and fills[1]["price"] == pytest.approx(11.9)
    rows = list(BASE)
    rows[2] = (10.5, 11.5, 10.4, 11.4)
    fills, trips, *_ = run(rows, le=[0], dist=(None, 1.9, None))
    assert fills[1]["bar"] == 3 and fills[1]["price"] == 12.0 and trips[0]["reason"] == 2


def test_stop_and_target_in_one_bar_resolve_as_stop_with_both_hit():
    rows = list(BASE)
    rows[2] = (10.2, 11.5, 8.5, 10.0)  # stop 9, target 11.2: both inside bar 2
    fills, trips, *_ = run(rows, le=[0], dist=(1.0, 1.2, None))
    assert fills[1]["bar"] == 2 and fills[1]["price"] == 9.0
    assert trips[0]["reason"] == REASON["stop"] and bool(trips[0]["both_hit"])


def test_trailing_stop_follows_the_best_high_of_earlier_bars():
    # trail 0.5 below the best high: bar 1 high 11 -> 10.5 (bar 2 low 10.6 holds); bar 2 high
    # 12 -> 11.5; bar 3 high 12.5 -> 12.0 is checked on bar 4 (low 12.0) -> exit at 12.0
    rows = list(BASE)
    rows[2] = (10.6, 12.0, 10.6, 11.8)
    fills, trips, *_ = run(rows, le=[0], dist=(None, None, 0.5))
    assert fills[1]["bar"] == 4 and fills[1]["price"] == pytest.approx(12.0)
    assert trips[0]["reason"] == REASON["trailing_stop"]
    assert trips[0]["r_multiple"] == pytest.approx(2.0 / 0.5)


def test_short_stop_and_trailing_percent():
    # short at 10, stop 10% above -> 11.0; bar 1's high is 11.0 -> stopped at 11 on the fill bar
    fills, trips, *_ = run(BASE, se=[0], stop_pct=0.1)
    assert fills[1]["bar"] == 1 and fills[1]["price"] == pytest.approx(11.0)
    assert trips[0]["reason"] == REASON["stop"] and trips[0]["r_multiple"] == pytest.approx(-1)


def test_max_hold_exits_at_next_open():
    fills, trips, *_ = run(BASE, le=[0], max_hold=2)
    # filled at bar 1, held bars 1 and 2, sells at bar 3's open
    assert fills[1]["bar"] == 3 and fills[1]["price"] == 12.0 and trips[0]["reason"] == 4


def test_open_position_stays_open_and_is_marked_to_close():
    fills, trips, eq, _fstate, units = run(BASE, le=[0, 3])
    assert len(fills) == 1 and len(trips) == 0
    assert eq[-1] == pytest.approx(100 * 12.0, rel=1e-12) and units[-1] == pytest.approx(100.0)


def test_re_entry_after_exit_and_no_order_from_last_bar():
    fills, *_ = run(BASE, le=[0, 3, 5], lx=[1])
    # buy bar 1, exit decided bar 1 -> sell bar 2, entry at bar 3 -> buy bar 4; bar 5 is last
    assert [(int(f["bar"]), int(f["side"])) for f in fills] == [(1, 0), (2, 1), (4, 0)]


def test_exit_then_reverse_on_one_bar_and_no_hedging():
    fills, _trips, *_ = run(BASE, le=[0], lx=[2], se=[2])
    # the long closes at bar 3's open, then the short opens at the same open
    assert [(int(f["bar"]), int(f["side"])) for f in fills] == [(1, 0), (3, 1), (3, 1)]
    fills, *_ = run(BASE, le=[0], se=[2])  # no long exit: the short entry is skipped
    assert len(fills) == 1
