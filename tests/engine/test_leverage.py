"""Leverage: margin, buying power and liquidation on crafted crashes, computed by hand."""

import numpy as np
import pytest

from engine.data.store import Bars
from engine.execution import Execution
from engine.nb import records as rec
from engine.run import run_backtest
from engine.strategy.form import Condition, Strategy
from tests.engine.kernel import run

LIQ = rec.REASON_NAMES.index("liquidation")
FLAT = (100.0, 100.0, 100.0, 100.0)


def test_margin_and_value_of_a_leveraged_long():
    rows = [FLAT, FLAT, (100.0, 104.0, 99.0, 103.0), FLAT]
    fills, trips, eq, fstate, _ = run(rows, le=[0], leverage=5.0)
    # all in at 5x: 1000 * 5 / 100 = 50 units, 1000 of margin, cash 0
    assert fills[0]["quantity"] == pytest.approx(50.0)
    assert eq[1] == pytest.approx(1000.0) and eq[2] == pytest.approx(1000.0 + 50 * 3)
    assert len(trips) == 0 and fstate[rec.F_CASH] == pytest.approx(0.0)


def test_liquidation_inside_a_bar_at_the_maintenance_price():
    # 5x, maintenance 0.5 / 5 = 0.1: a long from 100 is liquidated at 100 * 0.8 / 0.9 = 88.89,
    # where margin + pnl = 20 - 11.11 = 8.89 per unit = 0.1 x 88.89
    rows = [FLAT, FLAT, (95.0, 96.0, 85.0, 90.0), FLAT]
    _, trips, eq, fstate, _ = run(rows, le=[0], leverage=5.0, mmr=0.1)
    liq = 100 * 0.8 / 0.9
    assert trips[0]["reason"] == LIQ and trips[0]["exit_bar"] == 2
    assert trips[0]["exit_price"] == pytest.approx(liq, rel=1e-12)
    assert trips[0]["pnl"] == pytest.approx(50 * (liq - 100), rel=1e-12)
    assert fstate[rec.F_CASH] == pytest.approx(50 * 0.1 * liq, rel=1e-12)  # 444.44 left
    assert eq[3] == pytest.approx(444.444444, rel=1e-6)


def test_gap_through_the_liquidation_price_fills_at_the_open():
    rows = [FLAT, FLAT, (80.0, 82.0, 75.0, 78.0), FLAT]
    _, trips, _, fstate, _ = run(rows, le=[0], leverage=5.0, mmr=0.1)
    assert trips[0]["reason"] == LIQ and trips[0]["exit_price"] == 80.0
    assert fstate[rec.F_CASH] == pytest.approx(0.0, abs=1e-9)  # 50 * (20 - 20): margin gone


def test_short_liquidation_and_a_tighter_stop_wins():
    # 4x short from 100, maintenance 0.05: (100 + 25) / 1.05 = 119.05
    rows = [FLAT, FLAT, (101.0, 121.0, 100.0, 120.0), FLAT]
    _, trips, *_ = run(rows, se=[0], leverage=4.0, mmr=0.05)
    assert trips[0]["reason"] == LIQ
    assert trips[0]["exit_price"] == pytest.approx(125 / 1.05, rel=1e-12)
    _, trips, *_ = run(rows, se=[0], leverage=4.0, mmr=0.05, stop_pct=0.1)
    assert rec.REASON_NAMES[trips[0]["reason"]] == "stop" and trips[0]["exit_price"] == 110.0


def test_buying_power_caps_units_at_cash_times_leverage():
    # risk sizing wants 0.5 * 1000 / 0.5 = 1000 units; 3x with a 0.1% fee buys at most
    # 1000 * 3 / (100 * (1 + 0.001 * 3)) units
    fills, *_ = run([FLAT] * 3, le=[0], dist=(0.5, None, None), leverage=3.0,
                    sizing=rec.SIZING_RISK, risk=0.5, fee=0.001)  # fmt: skip
    assert fills[0]["quantity"] == pytest.approx(3000 / (100 * 1.003), rel=1e-12)


def test_no_liquidation_at_leverage_one_by_default():
    rows = [FLAT, FLAT, (50.0, 51.0, 30.0, 40.0), FLAT]
    _, trips, eq, *_ = run(rows, le=[0])
    assert len(trips) == 0 and eq[2] == pytest.approx(400.0)


def test_run_reports_a_liquidated_trade_and_logs_it():
    x = np.array([100.0, 100.0, 100.0, 90.0, 90.0])
    low = np.array([100.0, 100.0, 100.0, 85.0, 90.0])
    bars = Bars(
        np.arange(5, dtype=np.int64) * rec.DAY_NS, x, x, low, x, np.array([2.0, 1, 1, 1, 1])
    )
    strategy = Strategy(name="l", long_entry=(Condition("expr", "volume > 1.5"),))
    ex = Execution(leverage=5, sizing="fraction", atr_multiplier=0.0, fee_model="none",
                   max_trade_amount=1e9, max_units_per_trade=1e9)  # fmt: skip
    out = run_backtest({"BTC": bars}, strategy, ex, 1000.0, 0, resolution="1d")
    (trip,) = out.round_trips
    assert trip["liquidated"] and trip["exit_reason"] == "liquidation"
    assert trip["exit_price"] == pytest.approx(100 * 0.8 / 0.9)
    assert any(line.startswith("liquidation: BTC long of 50") for line in out.logs)
    assert out.equity[-1]["equity"] == pytest.approx(50 * 0.1 * 100 * 0.8 / 0.9)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"leverage": 0.5}, "leverage"),
        ({"leverage": 200}, "leverage"),
        ({"leverage": 2, "maintenance_margin_rate": 0.5}, "maintenance_margin_rate"),
    ],
)
def test_bad_leverage_settings_name_the_field(data, field):
    with pytest.raises(ValueError, match=field):
        Execution.from_dict(data)


def test_default_maintenance_rate_is_half_over_leverage():
    assert Execution(leverage=4).maintenance_rate() == 0.125
    assert np.isnan(Execution().maintenance_rate())
    assert Execution(maintenance_margin_rate=0.2).maintenance_rate() == 0.2
