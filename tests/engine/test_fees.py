"""Fee models on hand-computed fills: flat, tiered by 30-day volume, a venue's rates."""

import json
from pathlib import Path

import numpy as np
import pytest

from engine.data.store import Bars
from engine.execution import Execution
from engine.fees import DEFAULT_TIERS, fee_table, venues
from engine.nb import records as rec
from engine.nb.orders import fill_rate_nb
from engine.run import run_backtest
from engine.strategy.form import Condition, Strategy
from tests.engine.kernel import BASE, run

DAY = rec.DAY_NS
# volume above 1500 of traded notional: maker 5 bps, taker 10 bps; below: 10 and 20
TIERS = [[0.0, 0.001, 0.002], [1500.0, 0.0005, 0.001]]


def test_tier_changes_once_enough_volume_has_traded():
    fills, trips, *_ = run(BASE, le=[0, 3], lx=[2, 4], tiers=TIERS)
    # buy at bar 1's open 10 at the taker rate 0.002, all in: 1000 / (10 * 1.002) units
    q1 = 1000 / (10 * 1.002)
    c1 = q1 * 10 * 0.002
    # sell at bar 3's open 12: 30-day volume 998.0 < 1500, still 0.002
    c2 = q1 * 12 * 0.002
    cash = 1000 - q1 * 10 - c1 + q1 * 12 - c2
    # volume now 998 + 1197.6 >= 1500: the buy at bar 4's open 12.2 pays 0.001
    q3 = cash / (12.2 * 1.001)
    c3 = q3 * 12.2 * 0.001
    # and the sell at bar 5's open 12.1 too
    c4 = q3 * 12.1 * 0.001
    assert [f["quantity"] for f in fills] == pytest.approx([q1, q1, q3, q3], rel=1e-12)
    assert [f["commission"] for f in fills] == pytest.approx([c1, c2, c3, c4], rel=1e-12)
    assert [t["commission"] for t in trips] == pytest.approx([c1 + c2, c3 + c4], rel=1e-12)
    assert not any(f["maker"] for f in fills)


def test_volume_older_than_30_days_no_longer_counts():
    # bars 20 days apart: at the sell (day 60) the buy of day 20 has left the window (fills after
    # day 30 count), at the buy of day 80 only the sell of day 60 (1197.6) counts: tier 0 all along
    fills, *_ = run(BASE, le=[0, 3], lx=[2, 4], tiers=TIERS, ts=np.arange(6) * 20 * DAY)
    q1 = 1000 / (10 * 1.002)
    cash = 1000 - q1 * 10 * 1.002 + q1 * 12 * 0.998
    q3 = cash / (12.2 * 1.002)
    rates = [f["commission"] / (f["quantity"] * f["price"]) for f in fills]
    assert rates == pytest.approx([0.002] * 4, rel=1e-12)
    assert fills[2]["quantity"] == pytest.approx(q3, rel=1e-12)


def test_fill_rate_charges_maker_or_taker_of_the_reached_tier():
    ts = np.array([0, DAY, 2 * DAY], np.int64)
    tiers = np.array(TIERS)
    fills = np.zeros(4, rec.FILL_DTYPE)
    fstate, istate, _, _ = rec.new_state(1000.0)
    assert fill_rate_nb(0, True, ts, tiers, fills, istate, fstate) == 0.001
    assert fill_rate_nb(0, False, ts, tiers, fills, istate, fstate) == 0.002
    fills[0]["bar"], fills[0]["quantity"], fills[0]["price"] = 0, 200.0, 10.0
    istate[rec.I_FILLS], fstate[rec.F_VOL30] = 1, 2000.0
    assert fill_rate_nb(1, True, ts, tiers, fills, istate, fstate) == 0.0005
    assert fill_rate_nb(1, False, ts, tiers, fills, istate, fstate) == 0.001


def test_default_tiers_are_the_documented_table():
    table = fee_table("tiered_maker_taker", 0.0)
    assert table.tolist() == [
        [0.0, 0.001, 0.001],
        [1e6, 0.0009, 0.001],
        [5e6, 0.0008, 0.001],
        [2e7, 0.00042, 0.0006],
    ]
    assert len(DEFAULT_TIERS) == 4
    assert fee_table("none", 5.0).tolist() == [[0.0, 0.0, 0.0]]
    assert fee_table("fixed_bps", 5.0).tolist() == [[0.0, 0.0005, 0.0005]]


def test_venue_table_has_sources_and_rates():
    raw = json.loads((Path(__file__).parents[2] / "engine" / "venues.json").read_text())
    assert {"binance", "coinbase", "kraken", "bybit", "okx"} <= set(venues())
    for name, v in venues().items():
        assert 0 <= v["maker_bps"] <= v["taker_bps"] < 100, name
        assert v["source"].startswith("https://") and "20" in v["source"], name
    assert "_note" in raw


def test_match_exchange_charges_the_venue_taker_rate_on_market_fills():
    x = np.array([100.0, 100.0, 110.0, 110.0])
    bars = Bars(np.arange(4, dtype=np.int64) * DAY, x, x, x, x, np.array([2.0, 1.0, 0.0, 1.0]))
    strategy = Strategy(
        name="v",
        long_entry=(Condition("expr", "volume > 1.5"),),
        long_exit=(Condition("expr", "volume < 0.5"),),
    )
    ex = Execution(fee_model="match_exchange", venue="kraken", sizing="units", size=3.0,
                   atr_multiplier=0.0, min_trade_amount=0.0)  # fmt: skip
    out = run_backtest({"K": bars}, strategy, ex, 1000.0, 0, resolution="1d")
    taker = venues()["kraken"]["taker_bps"] / 1e4  # 40 bps
    assert [(t["price"], t["commission"], t["liquidity"]) for t in out.trades] == [
        (100.0, pytest.approx(3 * 100 * taker), "taker"),
        (110.0, pytest.approx(3 * 110 * taker), "taker"),
    ]
    assert out.round_trips[0]["pnl"] == pytest.approx(30 - 3 * 210 * taker)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"fee_model": "match_exchange", "venue": "mtgox"}, "venue"),
        ({"fee_model": "tiered_maker_taker",
          "fee_tiers": [{"min_volume_30d": 0, "maker_bps": 1, "taker_bps": 2},
                        {"min_volume_30d": 0, "maker_bps": 1, "taker_bps": 2}]}, "fee_tiers"),
        ({"fee_tiers": [{"min_volume_30d": 0, "maker_bps": -1, "taker_bps": 2}]}, "fee_tiers"),
    ],
)  # fmt: skip
def test_bad_fee_settings_name_the_field(data, field):
    with pytest.raises(ValueError, match=field):
        Execution.from_dict(data)


def test_fee_tiers_override_the_default_table():
    tiers = [{"min_volume_30d": 0, "maker_bps": 2, "taker_bps": 4},
             {"min_volume_30d": 1e5, "maker_bps": 1, "taker_bps": 3}]  # fmt: skip
    ex = Execution.from_dict({"fee_model": "tiered_maker_taker", "fee_tiers": tiers})
    assert ex.fees().tolist() == [[0.0, 0.0002, 0.0004], [1e5, 0.0001, 0.0003]]


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([{"min_volume_30d": 0, "maker_bps": 1}], r"fee_tiers\[0\].taker_bps: is required"),
        ([{"min_volume_30d": 0, "maker_bps": 1, "taker_bps": 2, "x": 1}], r"fee_tiers\[0\].x"),
        ([{"min_volume_30d": 0, "maker_bps": 10_000, "taker_bps": 2}], r"\[0\].maker_bps: must"),
        ([], "fee_tiers: must have at least 1"),
        ([{"min_volume_30d": 5, "maker_bps": 1, "taker_bps": 2}], r"\[0\].min_volume_30d: tiers"),
        ([{"min_volume_30d": 0, "maker_bps": 1, "taker_bps": 2}] * 2, r"\[1\].min_volume_30d"),
    ],
)
def test_a_bad_tier_table_is_refused_by_its_path(tiers, message) -> None:
    with pytest.raises(ValueError, match=message):
        Execution.from_dict({"fee_model": "tiered_maker_taker", "fee_tiers": tiers})
