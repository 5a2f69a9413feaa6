"""Leverage for grid and DCA templates: buying power, borrowing and liquidation, worked by hand.

Rules (engine.templates.run): cash may go down to (1 - leverage) x capital; a long position is
liquidated when cash + units x price falls to m x units x price, m = 0.5 / leverage by default,
i.e. at price -cash / (units x (1 - m)); an open below it liquidates at the open.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from engine.data.store import Bars
from engine.execution import Execution
from engine.nb.dca import dca_chunk_nb
from engine.nb.grid import grid_chunk_nb
from engine.run import run_backtest
from engine.templates import DcaPlan, GridPlan, TemplateError, compile_template
from engine.templates.run import run_template, warm_up
from tests.engine.templates.helpers import fills, make_bars

H = 3600 * 10**9
FLAT = (100.0, 100.0, 100.0, 100.0)


def cash_curve(out) -> list[float]:
    """The cash of every bar (runs here are shorter than max_points)."""
    return [p["cash"] for p in out.equity]


# --- leverage 1 is the unlevered engine, byte for byte -------------------------------------


def wave_bars(n: int = 1500) -> Bars:
    """A triangle wave between about 80 and 120 with integer noise: exact arithmetic, no libm."""
    rng = np.random.default_rng(5)
    k = np.arange(n)
    close = np.abs(k % 200 - 100) * 0.4 + 80 + rng.integers(-150, 151, n) / 100
    open_ = np.concatenate(([100.0], close[:-1])) + rng.integers(-50, 51, n) / 100
    high = np.maximum(open_, close) + rng.integers(0, 200, n) / 100
    low = np.minimum(open_, close) - rng.integers(0, 200, n) / 100
    return Bars(k.astype(np.int64) * H, open_, high, low, close, np.ones(n))


# Digests of the fills, round trips, curves and open positions (digest() below), computed by
# running the code as it was before leverage existed (commit d521f1a, which also reproduces the
# digests taken then of its whole output). grid_units and dca_daily refuse buys for cash
# many times, so the cash floor is exercised too.
GOLDEN = {
    "grid": (GridPlan(tuple(float(x) for x in np.linspace(82, 118, 13))), "b30e806ef3f6c026"),
    "grid_units": (
        GridPlan(tuple(float(x) for x in np.linspace(85, 115, 7)), 30.0),
        "6146293f5ddda5f8",
    ),
    "dca": (DcaPlan(40.0, None, 5, take_profit=0.04, stop_loss=0.08), "eceac10cec84ff36"),
    "dca_daily": (DcaPlan(150.0, "1d"), "e4a9e12a8971c856"),
}


# The parts of the output the digests cover, each row cut to the fields it had then: the
# output builder every run shares has added fields since (net and gross exposure to equity
# points, commission and liquidated to round trips), and words the logs its own way (left out,
# like the metrics and the other summaries of the curves).
OLD_FIELDS = {
    "equity": ("timestamp", "equity", "cash", "positions"),
    "trades": ("symbol", "timestamp", "side", "quantity", "price", "commission", "liquidity"),
    "round_trips": (
        "symbol", "side", "entry_time", "exit_time", "entry_price", "exit_price", "quantity",
        "pnl", "return", "r_multiple", "exit_reason", "both_hit",
    ),
    "exposure": ("timestamp", "symbol", "quantity", "value", "weight"),
    "open_positions": (
        "symbol", "side", "entry_time", "entry_price", "quantity", "last_price", "value",
        "unrealized_pnl",
    ),
}  # fmt: skip


def digest(out) -> str:
    """A short SHA-256 of the output's fills, round trips, curves and open positions."""
    body = {
        name: [{f: row[f] for f in fields} for row in getattr(out, name)]
        for name, fields in OLD_FIELDS.items()
    }
    body["bars"] = out.bars
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", list(GOLDEN))
def test_leverage_one_is_byte_for_byte_the_unlevered_engine(name) -> None:
    plan, expected = GOLDEN[name]
    bars = {"X": wave_bars()}
    kw = {"maker_bps": 2.0, "taker_bps": 5.0, "chunk_bars": 500}
    default = run_template(bars, plan, 5000.0, 20 * H, **kw)
    assert digest(default) == expected
    assert run_template(bars, plan, 5000.0, 20 * H, leverage=1, **kw) == default
    # at leverage 1 cash never goes negative, so even an explicit maintenance rate never bites
    explicit = run_template(bars, plan, 5000.0, 20 * H, leverage=1, maintenance_margin_rate=0.9,
                            **kw)  # fmt: skip
    assert explicit == default


# --- buying power --------------------------------------------------------------------------


def test_grid_quantities_at_2x_are_double_and_cash_is_borrowed() -> None:
    # Lines 100, 110, 120; capital 2000 over 2 slots; maker 1%, taker 2% (sizing uses 2%).
    # 1x: q0 = 2000 / 2 / 1.02 / 100 = 9.8039, q1 = 2000 / 2 / 1.02 / 110 = 8.9127.
    # 2x: q = 2000 x 2 / 2 / 1.02 / line: 19.6078 and 17.8253, exactly twice.
    # Bar 0 opens at 105: slot 1 (line 110) buys at market at 105, then the low 99 fills slot 0
    # at 100. 2x cash: 2000 - q1 x 105 x 1.02 - q0 x 100 x 1.01
    #   = 2000 - 2000 x 105 / 110 - 2000 x 1.01 / 1.02 = 2000 - 1909.0909 - 1980.3922 = -1889.4831,
    # above the floor -2000. Liquidation: m = 0.25, price 1889.48 / (37.4332 x 0.75) = 67.30,
    # far below the low 99.
    bars = {"X": make_bars([(105, 106, 99, 100)])}
    plan = compile_template("tpl_grid", {"grid_levels": 3, "upper_price": 120, "lower_price": 100})
    one = run_template(bars, plan, 2000.0, 0, maker_bps=100, taker_bps=200)
    two = run_template(bars, plan, 2000.0, 0, maker_bps=100, taker_bps=200, leverage=2)
    q1, q0 = 4000 / 2 / 1.02 / 110, 4000 / 2 / 1.02 / 100
    assert [t["quantity"] for t in two.trades] == pytest.approx([q1, q0], rel=1e-12)
    assert [t["quantity"] for t in two.trades] == pytest.approx(
        [2 * t["quantity"] for t in one.trades], rel=1e-12
    )
    assert [t["price"] for t in two.trades] == [105.0, 100.0]
    assert two.equity[-1]["cash"] == pytest.approx(-1889.483066, rel=1e-9)
    assert two.equity[-1]["equity"] == pytest.approx(-1889.483066 + (q0 + q1) * 100, rel=1e-9)
    assert two.round_trips == [] and len(two.logs) == 2  # the summary and the final cash


@pytest.mark.parametrize(
    ("leverage", "bought"),
    [(1, False), (1.5, False), (2, True)],
)
def test_grid_buy_beyond_the_buying_power_stays_resting(leverage, bought) -> None:
    # 5 units at 100 cost 500; capital 300: buying power 300 x leverage = 300, 450, 600.
    bars = {"X": make_bars([(105, 106, 104, 105), (104, 104, 99, 100)])}
    plan = GridPlan((100.0, 110.0), 5.0)
    out = run_template(bars, plan, 300.0, 0, maker_bps=0, taker_bps=0, leverage=leverage)
    if bought:
        assert fills(out) == [(1, "buy", 5.0, 100.0, 0.0, "maker")]
        assert cash_curve(out) == [300.0, -200.0]  # 200 borrowed
    else:
        assert out.trades == [] and "1 entries refused" in out.logs[0]


def test_dca_at_2x_borrows_up_to_the_capital() -> None:
    # Capital 1000, 400 quote per bar at 100, taker fee 0.1%, 2x: cash may fall to -1000.
    # Buys 1-4: 400 + 0.4 each: cash 599.6, 199.2, -201.2, -601.6.
    # Buy 5: buying power -601.6 + 1000 = 398.4: spend 398.4 / 1.001 = 398.001998, fee
    #   0.398002, 3.98001998 units; cash -1000. Buy 6: no buying power left: refused.
    # Equity: -1000 + 19.98001998 x 100 = 998.001998 = 1000 - the fees (1.6 + 0.398002).
    # Liquidation price 1000 / (19.98 x 0.75) = 66.73 (m = 0.25): far below 100.
    bars = {"X": make_bars([FLAT] * 6)}
    plan = DcaPlan(400.0, None, 1)
    out = run_template(bars, plan, 1000.0, 0, maker_bps=0, taker_bps=10, leverage=2)
    spend5 = 398.4 / 1.001
    assert [t["quantity"] for t in out.trades] == pytest.approx([4, 4, 4, 4, spend5 / 100])
    assert cash_curve(out) == pytest.approx([599.6, 199.2, -201.2, -601.6, -1000, -1000])
    assert out.equity[-1]["equity"] == pytest.approx(998.001998)
    assert "1 entries refused" in out.logs[0]
    # unlevered: the third buy spends what is left, 199.2 / 1.001, then three are refused
    one = run_template(bars, plan, 1000.0, 0, maker_bps=0, taker_bps=10)
    assert cash_curve(one) == pytest.approx([599.6, 199.2, 0, 0, 0, 0])
    assert "3 entries refused" in one.logs[0]


# --- liquidation ---------------------------------------------------------------------------

# Lines 100, 120, 150, capital 1000, 3x, no fees: each slot's quantity is 1000 x 3 / 2 / line,
# 15 at 100 and 12.5 at 120; m = 0.5 / 3 = 1/6; cash may fall to -2000.
CRASH = [
    (118, 119, 117, 118),  # 0: line 120 >= open: 12.5 at 118 = 1475; cash -475; liq 45.6
    (110, 111, 95, 96),  # 1: buys 15 at 100 (power -475 + 2000 = 1525 >= 1500); cash -1975;
    #                       27.5 units; liq 1975 / (27.5 x 5/6) = 86.1818 < low 95
    (96, 97, 80, 85),  # 2: low 80 reaches 86.1818: liquidated there
    (90, 125, 90, 110),  # 3: opens below both buy lines: they would buy at 90, but all stopped
]


def test_crash_liquidates_a_3x_grid_at_the_computed_price_and_stops_it() -> None:
    liq = 1975 / (27.5 * 5 / 6)  # 86.181818...
    out = run_template({"X": make_bars(CRASH)}, GridPlan((100.0, 120.0, 150.0)), 1000.0, 0,
                       maker_bps=0, taker_bps=0, leverage=3)  # fmt: skip
    assert fills(out) == [
        (0, "buy", 12.5, 118.0, 0.0, "taker"),
        (1, "buy", 15.0, 100.0, 0.0, "maker"),
        (2, "sell", 27.5, pytest.approx(liq, rel=1e-12), 0.0, "taker"),
    ]
    (trip,) = out.round_trips
    assert trip["exit_reason"] == "liquidation"
    assert (trip["entry_time"], trip["exit_time"]) == (0, 2 * H)
    assert trip["entry_price"] == pytest.approx(2975 / 27.5)  # 108.18, the units' average
    assert trip["pnl"] == pytest.approx(27.5 * liq - 2975)  # 2370 - 2975 = -605
    # what is left is the maintenance margin: 1/6 x 27.5 x 86.18 = 395, then nothing moves
    assert cash_curve(out) == pytest.approx([-475, -1975, 395, 395])
    assert [p["equity"] for p in out.equity][2:] == pytest.approx([395, 395])
    assert [p["quantity"] for p in out.exposure] == [12.5, 27.5, 0, 0]
    assert out.open_positions == []
    assert out.logs[1:] == [
        "liquidation: X long of 27.5 entered at 108.182, closed at 86.1818 at "
        "1970-01-01T02:00:00Z, pnl -605.00",  # the bar at 2 H after the epoch
        "account: final cash 395.00",
    ]
    assert out.logs[1].level == "warning" and out.logs[0].level == "info"
    assert trip["liquidated"] and trip["commission"] == 0.0


def test_liquidation_on_the_way_down_comes_before_a_lower_buy_line() -> None:
    # Lines 60, 100, 120, 150, 10 units per order, capital 1000, 3x (cash floor -2000), no fees.
    # Bar 0 buys 10 at 118 (cash -180), bar 1 10 at 100 (cash -1180, 20 units):
    # liq = 1180 / (20 x 5/6) = 70.8. Bar 2 falls to 50: the path meets 70.8 before the buy
    # line 60 (which cash could pay: 600 <= -1180 + 2000), so it liquidates at 70.8 and the 60
    # buy never fills. Cash: -1180 + 20 x 70.8 = 236 = 1/6 x 1416.
    rows = [CRASH[0], CRASH[1], (96, 97, 50, 55)]
    out = run_template({"X": make_bars(rows)}, GridPlan((60.0, 100.0, 120.0, 150.0), 10.0),
                       1000.0, 0, maker_bps=0, taker_bps=0, leverage=3)  # fmt: skip
    assert [(b, s, q, p) for b, s, q, p, _, _ in fills(out)] == [
        (0, "buy", 10.0, 118.0), (1, "buy", 10.0, 100.0), (2, "sell", 20.0, pytest.approx(70.8)),
    ]  # fmt: skip
    assert cash_curve(out) == pytest.approx([-180, -1180, 236])
    assert out.round_trips[0]["pnl"] == pytest.approx(1416 - 2180)


def test_gap_through_the_liquidation_price_fills_at_the_open_with_the_taker_fee() -> None:
    # As above with lines 100, 120, 150 and a 0.1% taker fee: bar 0 buys 10 at 118 (fee 1.18,
    # cash -181.18), bar 1 10 at 100 (maker, free; cash -1181.18); liq = 1181.18 x 6 / 100 =
    # 70.87. Bar 2 opens at 60: liquidated at the open, fee 1.2: cash -1181.18 + 1200 - 1.2 =
    # 17.62; pnl 1200 - 1.2 - 2181.18 = -982.38.
    rows = [CRASH[0], CRASH[1], (60, 62, 55, 58)]
    out = run_template({"X": make_bars(rows)}, GridPlan((100.0, 120.0, 150.0), 10.0), 1000.0, 0,
                       maker_bps=0, taker_bps=10, leverage=3)  # fmt: skip
    assert fills(out)[-1] == (2, "sell", 20.0, 60.0, 1.2, "taker")
    assert cash_curve(out) == pytest.approx([-181.18, -1181.18, 17.62])
    (trip,) = out.round_trips
    assert trip["exit_reason"] == "liquidation" and trip["pnl"] == pytest.approx(-982.38)


def test_a_buy_that_breaches_maintenance_liquidates_at_its_own_price() -> None:
    # Lines 90, 120, 130, 20 units per order, capital 1500, 3x (floor -3000), m = 0.3, no fees.
    # Bar 0 buys 20 at 119: cash -880, liq 880 / (20 x 0.7) = 62.86. Bar 1 falls to 85: the
    # buy at 90 (power -880 + 3000 = 2120 >= 1800) leaves cash -2680 with 40 units: equity at 90
    # = -2680 + 3600 = 920 <= 0.3 x 3600 = 1080, liq 2680 / 28 = 95.71 >= 90: liquidated at 90.
    rows = [(119, 119, 118, 118), (100, 100, 85, 88)]
    plan = GridPlan((90.0, 120.0, 130.0), 20.0)
    out = run_template({"X": make_bars(rows)}, plan, 1500.0, 0, maker_bps=0, taker_bps=0,
                       leverage=3, maintenance_margin_rate=0.3)  # fmt: skip
    assert [(b, s, q, p) for b, s, q, p, _, _ in fills(out)] == [
        (0, "buy", 20.0, 119.0), (1, "buy", 20.0, 90.0), (1, "sell", 40.0, 90.0),
    ]  # fmt: skip
    assert cash_curve(out) == pytest.approx([-880, 920])
    assert out.round_trips[0]["pnl"] == pytest.approx(3600 - 4180)


# DCA, capital 1000, 1500 quote per bar, 3x (floor -2000), no fees: bar 0 buys 15 at 100 (cash
# -500), bar 1 15 more (cash -2000, 30 units); liq = 2000 / (30 x 5/6) = 80. Bar 2 opens at 90,
# its buy is refused (no buying power left), its low 70 reaches 80: liquidated at 80, 2400 in,
# cash 400 = 1/6 x 2400, pnl -600. Bar 3 would buy again, but the DCA has stopped.
DCA_CRASH = [FLAT, FLAT, (90, 91, 70, 75), FLAT]


def test_crash_liquidates_a_3x_dca_and_no_buy_follows() -> None:
    out = run_template({"X": make_bars(DCA_CRASH)}, DcaPlan(1500.0, None, 1), 1000.0, 0,
                       maker_bps=0, taker_bps=0, leverage=3)  # fmt: skip
    assert fills(out) == [
        (0, "buy", 15.0, 100.0, 0.0, "taker"),
        (1, "buy", 15.0, 100.0, 0.0, "taker"),
        (2, "sell", 30.0, 80.0, 0.0, "taker"),
    ]
    (trip,) = out.round_trips
    assert (trip["exit_reason"], trip["entry_price"], trip["pnl"]) == ("liquidation", 100.0, -600.0)
    assert cash_curve(out) == [-500.0, -2000.0, 400.0, 400.0]
    assert out.logs[1].startswith("liquidation: X long of 30 entered at 100, closed at 80")


def test_a_dca_stop_above_the_liquidation_price_wins() -> None:
    # Stop loss 15%: 85 > 80, so the stop sells (2550 in, cash 550) and bar 3 buys again.
    out = run_template({"X": make_bars(DCA_CRASH)}, DcaPlan(1500.0, None, 1, stop_loss=0.15),
                       1000.0, 0, maker_bps=0, taker_bps=0, leverage=3)  # fmt: skip
    assert [t["exit_reason"] for t in out.round_trips] == ["stop"]
    assert out.round_trips[0]["exit_price"] == 85.0
    assert cash_curve(out) == [-500.0, -2000.0, 550.0, -950.0]
    assert not any(line.startswith("liquidation") for line in out.logs)


def crash_bars(n: int, seed: int) -> Bars:
    """A noisy wave that collapses after two thirds of the run."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    close = 100 + 10 * np.sin(k / 30) + rng.normal(0, 1, n) - np.maximum(k - 2 * n // 3, 0) * 0.2
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) + rng.uniform(0, 1, n)
    low = np.minimum(open_, close) - rng.uniform(0, 1, n)
    return Bars(k.astype(np.int64) * H, open_, high, low, close, np.ones(n))


@pytest.mark.parametrize(
    "plan",
    [GridPlan(tuple(float(x) for x in np.linspace(60, 115, 41))), DcaPlan(40.0, None, 2)],
)
def test_leveraged_runs_do_not_depend_on_the_chunk_size(plan) -> None:
    bars = {"X": crash_bars(1200, 3)}
    kw = {"maker_bps": 2.0, "taker_bps": 5.0, "leverage": 5}
    one = run_template(bars, plan, 10_000.0, 5 * H, chunk_bars=1, **kw)
    big = run_template(bars, plan, 10_000.0, 5 * H, chunk_bars=100_000, **kw)
    assert one == big
    (trip,) = [t for t in one.round_trips if t["exit_reason"] == "liquidation"]
    after = [t for t in one.trades if t["timestamp"] > trip["exit_time"]]
    assert after == [] and one.open_positions == []


# --- validation, warm-up, signal templates -------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"leverage": 0.5}, "leverage"),
        ({"leverage": 0}, "leverage"),
        ({"leverage": 126}, "leverage"),
        ({"leverage": float("nan")}, "leverage"),
        ({"leverage": True}, "leverage"),
        ({"leverage": "2"}, "leverage"),
        ({"leverage": 2, "maintenance_margin_rate": 0.5}, "maintenance_margin_rate"),
        ({"leverage": 2, "maintenance_margin_rate": -0.1}, "maintenance_margin_rate"),
    ],
)
def test_bad_leverage_is_refused_naming_the_field(kw, field) -> None:
    bars = {"X": make_bars([FLAT])}
    with pytest.raises(TemplateError, match=field) as err:
        run_template(bars, DcaPlan(10.0), 100.0, 0, maker_bps=0, taker_bps=0, **kw)
    assert err.value.path == field and err.value.code == "INVALID_PARAMETER"


def test_leverage_125_is_accepted() -> None:
    bars = {"X": make_bars([FLAT] * 3)}
    out = run_template(bars, DcaPlan(10.0, None, 1), 100.0, 0, maker_bps=0, taker_bps=0,
                       leverage=125)  # fmt: skip
    assert len(out.trades) == 3


def test_warm_up_compiles_the_one_signature_every_run_uses() -> None:
    warm_up()
    kernels = (grid_chunk_nb, dca_chunk_nb)
    seen = [len(k.signatures) for k in kernels]
    bars = {"X": wave_bars(300)}
    for plan in (GOLDEN["grid"][0], GOLDEN["dca"][0]):
        for leverage in (1, 3):
            run_template(bars, plan, 5000.0, 0, maker_bps=1, taker_bps=2, leverage=leverage)
    assert [len(k.signatures) for k in kernels] == seen == [1, 1]


def test_signal_templates_take_leverage_through_execution() -> None:
    # tpl_ma_cross (sma 2 / 3): closes 100 x 4 then 104: the fast average (102) crosses above the
    # slow one (101.33) on bar 4; the entry fills at bar 5's open, 104. All in (fraction 1, no
    # fee): 1000 / 104 = 9.615 units at 1x, 2000 / 104 = 19.231 at 2x.
    close = np.array([100.0, 100, 100, 100, 104, 104, 104])
    ts = np.arange(close.size, dtype=np.int64) * H
    bars = {"X": Bars(ts, close, close, close, close, np.ones(close.size))}
    strategy = compile_template("tpl_ma_cross", {"window_fast": 2, "window_slow": 3})
    qty = []
    for leverage in (1, 2):
        ex = Execution(leverage=leverage, sizing="fraction", fee_model="none", atr_multiplier=0.0)
        out = run_backtest(bars, strategy, ex, 1000.0, 0, resolution="1h")
        qty.append(out.trades[0]["quantity"])
    assert qty == pytest.approx([1000 / 104, 2000 / 104], rel=1e-12)
