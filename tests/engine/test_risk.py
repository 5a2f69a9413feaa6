"""Risk rules on hand-made bars: sizing and caps, entry gates, pyramiding, cooldown tiers."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data.store import RESOLUTIONS, Bars
from engine.execution import Execution, cooldown_tiers, kernel_params
from engine.nb import records as rec
from engine.run import volatility_scale
from engine.strategy.form import Exits, Level
from tests.engine.kernel import BASE, run

RISK = {"sizing": rec.SIZING_RISK, "risk": 0.01}


def buys(fills) -> list[int]:
    """Return the bars of the buy fills."""
    return [int(f["bar"]) for f in fills if f["side"] == rec.SIDE_BUY]


def test_risk_sizing_units_from_stop_distance():
    # 1% of 1000 = 10 at risk; stop 0.5 below the entry -> 20 units
    fills, *_ = run(BASE, le=[0], dist=(0.5, None, None), **RISK)
    assert fills[0]["quantity"] == pytest.approx(20.0)
    # a 4% percent stop at the entry 10 is 0.4 away -> 25 units
    fills, *_ = run(BASE, le=[0], stop_pct=0.04, **RISK)
    assert fills[0]["quantity"] == pytest.approx(25.0)
    # no stop distance: risk sizing cannot size, the entry is skipped
    fills, *_ = run(BASE, le=[0], **RISK)
    assert len(fills) == 0


@pytest.mark.parametrize(
    ("caps", "units"),
    [
        ({"max_units": 15.0}, 15.0),
        ({"max_amount": 120.0}, 12.0),  # 120 / price 10
        ({"risk": 0.5}, 100.0),  # 500 at risk / 0.5 = 1000 units, but cash buys only 100
        ({"risk": 0.5, "fee": 0.01}, 1000 / 10.1),  # cash must also pay the fee
        ({"max_amount": 123.0, "lot": 5.0}, 10.0),  # 12.3 units floored to a lot of 5
    ],
)
def test_caps_and_lot(caps, units):
    fills, *_ = run(BASE, le=[0], dist=(0.5, None, None), **{**RISK, **caps})
    assert fills[0]["quantity"] == pytest.approx(units, rel=1e-12)


def test_min_trade_amount_skips_small_entries():
    fills, *_ = run(BASE, le=[0], dist=(0.5, None, None), min_amount=250.0, **RISK)
    assert len(fills) == 0  # 20 units * 10 = 200 < 250
    fills, *_ = run(BASE, le=[0], dist=(0.5, None, None), min_amount=200.0, **RISK)
    assert len(fills) == 1


@pytest.mark.parametrize(("sizing", "size", "units"), [("UNITS", 7.0, 7.0), ("AMOUNT", 55.0, 5.5)])
def test_units_and_amount_sizing(sizing, size, units):
    fills, *_ = run(BASE, le=[0], sizing=getattr(rec, "SIZING_" + sizing), size=size)
    assert fills[0]["quantity"] == pytest.approx(units)


def test_min_balance_threshold_blocks_entries_below_it():
    rows = list(BASE)
    rows[2] = (9.5, 9.7, 8.8, 9.2)  # all-in 100 units stopped at 9 -> equity 900
    fills, *_ = run(rows, le=[0, 3], dist=(1.0, None, None), min_equity=950.0)
    assert buys(fills) == [1]
    fills, *_ = run(rows, le=[0, 3], dist=(1.0, None, None), min_equity=850.0)
    assert buys(fills) == [1, 4]


def test_pyramiding_up_to_max_open_positions_each_with_its_own_stop():
    rows = list(BASE)
    rows[4] = (12.2, 12.4, 10.9, 12.1)  # reaches the third position's stop (12 - 1) only
    fills, trips, *_ = run(rows, le=[0, 1, 2, 3], lx=[4], dist=(1.0, None, None), max_pos=3,
                           size=0.25)  # fmt: skip
    assert buys(fills) == [1, 2, 3]  # the entry at bar 4 finds three positions open
    q1 = 0.25 * 1000 / 10
    q2 = 0.25 * (1000 - q1 * 10 + q1 * 10.5) / 10.5
    q3 = 0.25 * (1000 - q1 * 10 - q2 * 10.5 + (q1 + q2) * 12) / 12
    assert [f["quantity"] for f in fills[:3]] == pytest.approx([q1, q2, q3], rel=1e-12)
    # bar 4: the third is stopped at 11; the exit signal at bar 4 closes the rest at bar 5's open
    assert [(int(t["exit_bar"]), t["exit_price"]) for t in trips] == [
        (4, 11.0),
        (5, 12.1),
        (5, 12.1),
    ]
    assert [t["quantity"] for t in trips] == pytest.approx([q3, q1, q2], rel=1e-12)


def test_max_trades_per_day_counts_entries_per_utc_day():
    fills, *_ = run(BASE, le=[0, 1, 2, 3, 4], days=[0, 0, 0, 1, 1, 1], max_pos=5, size=0.1,
                    max_per_day=1)  # fmt: skip
    assert buys(fills) == [1, 3]


FLAT = [(10.0, 10.0, 10.0, 10.0)] * 30
EVERY = range(30)


def test_short_cooldown_tier_trips_and_expires():
    # each trade loses its fees; losses close at bars 2, 3, ...: 2 losses within 3 bars
    # trips at bar 3 and refuses entries on bars 3..6; then at bar 9, and so on
    fills, trips, *_ = run(FLAT, le=EVERY, lx=EVERY, fee=0.001, cd_short_limit=2,
                           cd_short_window=3, cd_short_bars=3)  # fmt: skip
    assert buys(fills)[:6] == [1, 2, 7, 8, 13, 14]
    assert all(t["pnl"] < 0 for t in trips)


def test_long_cooldown_tier_window_longer_than_its_duration():
    # 3 losses within 10 bars block 5 bars: trips at bar 4 (losses 2, 3, 4) -> refused 4..9;
    # the loss at bar 11 still sees 2, 3, 4 in its window -> refused 11..16; the losses at 18
    # and 19 plus 11 trip again at 19 -> refused 19..24
    fills, *_ = run(FLAT, le=EVERY, lx=EVERY, fee=0.001, cd_long_limit=3, cd_long_window=10,
                    cd_long_bars=5)  # fmt: skip
    assert buys(fills)[:7] == [1, 2, 3, 10, 17, 18, 25]


def test_deprecated_cooldown_keys_default_from_trading_defaults():
    path = Path(__file__).parents[2] / "engine" / "trading_defaults.json"
    assert json.loads(path.read_text()) == {
        "cooldown_bars": 24, "daily_momentum_limit": 3, "weekly_momentum_limit": 3
    }  # fmt: skip
    hour = RESOLUTIONS["1h"]
    # short tier: 3 losses within a day (24 bars of 1h); long tier: 3 within a week (168)
    assert cooldown_tiers(Execution(), "1h", hour) == ((3, 24, 24), (3, 168, 24))
    ex = Execution(cooldown_bars=5, daily_momentum_limit=2)
    assert cooldown_tiers(ex, "1d", RESOLUTIONS["1d"]) == ((2, 1, 5), (3, 7, 5))


def test_cooldown_config_for_the_run_interval_wins():
    config = {"1h": {"short_loss_limit": 4, "long_loss_limit": 6, "short_window_bars": 48,
                     "long_window_bars": 144}}  # fmt: skip
    ex = Execution.from_dict({"cooldown_config": config})
    assert cooldown_tiers(ex, "1h", RESOLUTIONS["1h"]) == ((4, 48, 48), (6, 144, 144))
    assert cooldown_tiers(ex, "4h", RESOLUTIONS["4h"]) == ((3, 6, 24), (3, 42, 24))
    p = kernel_params(ex, Exits(), 1000.0, "1h", RESOLUTIONS["1h"])
    assert (p[rec.K_CD_SHORT_LIMIT], p[rec.K_CD_LONG_BARS]) == (4, 144)


def test_kernel_params_from_settings():
    ex = Execution(fee_model="none", fee_bps=10.0, max_hold_bars=9, min_balance_threshold=0.2)
    exits = Exits(stop_loss=Level("percent", 0.03), take_profit=Level("r", 2.5), max_hold_bars=4)
    p = kernel_params(ex, exits, 5000.0, None, None)
    assert ex.fees().tolist() == [[0.0, 0.0, 0.0]]
    assert p[rec.K_MAX_HOLD] == 4 and p[rec.K_MIN_EQUITY] == 1000.0
    assert p[rec.K_STOP_PCT] == 0.03 and p[rec.K_TP_R] == 2.5 and np.isnan(p[rec.K_TP_PCT])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"sizing": "kelly"}, "sizing"),
        ({"fee_bps": -1}, "fee_bps"),
        ({"max_open_positions": 0}, "max_open_positions"),
        ({"max_risk_per_trade": 1.5}, "max_risk_per_trade"),
        ({"cooldown_bars": -1}, "cooldown_bars"),
        ({"leverage": 0.5}, "leverage"),
        ({"leverage": 4, "maintenance_margin_rate": 0.25}, "maintenance_margin_rate"),
        ({"fee_model": "match_exchange", "venue": "nowhere"}, "venue"),
        ({"fee_model": "match_exchange"}, "venue"),
        ({"fee_model": "tiered_maker_taker", "fee_tiers": []}, "fee_tiers"),
        ({"fee_tiers": [{"min_volume_30d": 5, "maker_bps": 1, "taker_bps": 2}]}, "fee_tiers"),
        ({"fee_model": "flat"}, "fee_model"),
        ({"cooldown_config": {"1h": {"short_loss_limit": 4}}}, "cooldown_config.1h"),
    ],
)
def test_from_dict_names_the_bad_field(data, field):
    with pytest.raises(ValueError, match=field):
        Execution.from_dict(data)


def test_volatility_scale_against_pandas():
    rng = np.random.default_rng(5)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.03, 200))
    bars = Bars(np.arange(200, dtype=np.int64), close, close, close, close, np.ones(200))
    ex = Execution(enable_volatility_adjustment=True, volatility_window=24, target_volatility=0.02)
    realised = pd.Series(close).pct_change().rolling(24).std().to_numpy()
    expected = np.where(np.isnan(realised), 1.0, np.minimum(1.0, 0.02 / realised))
    np.testing.assert_allclose(volatility_scale(bars, ex), expected, rtol=1e-9)
    assert np.all(volatility_scale(bars, Execution()) == 1.0)
