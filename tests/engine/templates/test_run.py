"""Grid and DCA runs on hand-made bars: every fill, fee, round trip and balance worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.store import Bars
from engine.run import Cancelled
from engine.templates import DcaPlan, GridPlan, compile_template
from engine.templates.run import dca_schedule, run_template
from tests.engine.templates.helpers import H, fills, make_bars

# Lines 100, 110, 120, 130: slot 0 buys 100 / sells 110, slot 1 110 / 120, slot 2 120 / 130.
GRID_BARS = [
    (115, 116, 112, 114),  # 0: slot 2's buy line 120 >= open: market buy at 115 (taker)
    (113, 114, 108, 109),  # 1: low reaches 110: slot 1 buys at 110
    (109, 121, 108, 120),  # 2: high reaches 120: slot 1 sells at 120, rests its buy at 110
    (98, 99, 95, 96),  # 3: opens below 110 and 100: both buy at the open, 110's slot first
    (125, 132, 124, 131),  # 4: opens above 110 and 120: sell at the open; high sells 130
    (131, 131, 119, 119.5),  # 5: slot 2's buy at 120 (rested on bar 4) fills at 120
]


def test_grid_every_fill_known_in_advance() -> None:
    plan = compile_template(
        "tpl_grid", {"grid_levels": 4, "upper_price": "130", "lower_price": "100", "order_size": 1}
    )
    assert plan == GridPlan((100.0, 110.0, 120.0, 130.0), 1.0)
    out = run_template({"X": make_bars(GRID_BARS)}, plan, 3000.0, 0, maker_bps=10, taker_bps=20)
    assert fills(out) == [
        (0, "buy", 1.0, 115.0, 0.23, "taker"),
        (1, "buy", 1.0, 110.0, 0.11, "maker"),
        (2, "sell", 1.0, 120.0, 0.12, "maker"),
        (3, "buy", 1.0, 98.0, 0.098, "maker"),  # slot 1 (line 110), gapped through: the open
        (3, "buy", 1.0, 98.0, 0.098, "maker"),  # slot 0 (line 100)
        (4, "sell", 1.0, 125.0, 0.125, "maker"),  # slot 0 (line 110), at the open
        (4, "sell", 1.0, 125.0, 0.125, "maker"),  # slot 1 (line 120), at the open
        (4, "sell", 1.0, 130.0, 0.13, "maker"),  # slot 2 (line 130), in the range
        (5, "buy", 1.0, 120.0, 0.12, "maker"),
    ]
    trips = [x for t in out.round_trips for x in (t["entry_price"], t["exit_price"], t["pnl"])]
    assert trips == pytest.approx(
        [110, 120, 10 - 0.11 - 0.12, 98, 125, 27 - 0.098 - 0.125,
         98, 125, 27 - 0.098 - 0.125, 115, 130, 15 - 0.23 - 0.13]
    )  # fmt: skip
    # each round trip's commission is both its fills' fees; a plan sets no risk: no R multiple
    assert [t["commission"] for t in out.round_trips] == pytest.approx(
        [0.11 + 0.12, 0.098 + 0.125, 0.098 + 0.125, 0.23 + 0.13]
    )
    assert {(t["exit_reason"], t["r_multiple"], t["liquidated"]) for t in out.round_trips} == {
        ("grid", None, False)
    }
    cash = [2884.77, 2774.66, 2894.54, 2698.344, 3077.964, 2957.844]
    units = [1, 2, 1, 3, 0, 1]
    closes = [r[3] for r in GRID_BARS]
    assert [p["cash"] for p in out.equity] == pytest.approx(cash)
    assert [p["equity"] for p in out.equity] == pytest.approx(
        [c + u * p for c, u, p in zip(cash, units, closes, strict=True)]
    )
    assert [p["quantity"] for p in out.exposure] == units
    (held,) = out.open_positions
    assert (held["entry_price"], held["quantity"], held["last_price"]) == (120.0, 1.0, 119.5)
    assert out.metrics["trade_count"] == 4
    assert out.metrics["exposure"] == pytest.approx(5 / 6)
    assert out.metrics["total_return"] == pytest.approx((2957.844 + 119.5) / 2998.77 - 1)


def test_grid_replacement_waits_for_the_next_bar() -> None:
    # Bar 1 buys at 110 and reaches 120 in the same bar: the sell rested on bar 1 waits.
    bars = make_bars([(115, 116, 112, 114), (113, 125, 108, 111), (111, 121, 111, 120)])
    plan = GridPlan((100.0, 110.0, 120.0, 130.0), 1.0)
    out = run_template({"X": bars}, plan, 3000.0, 0, maker_bps=0, taker_bps=0)
    assert [(b, s, p) for b, s, _, p, _, _ in fills(out)] == [
        (0, "buy", 115.0), (1, "buy", 110.0), (2, "sell", 120.0),
    ]  # fmt: skip


def test_grid_falling_bar_fills_buys_from_the_highest_line_down() -> None:
    # The first open, 125, is above every buy line (100, 110, 120): three buys rest; a falling
    # bar down to 95 fills them at their lines, 120 first.
    bars = make_bars([(125, 126, 124, 125), (124, 124, 95, 96)])
    plan = GridPlan((100.0, 110.0, 120.0, 130.0), 1.0)
    out = run_template({"X": bars}, plan, 1000.0, 0, maker_bps=0, taker_bps=0)
    assert [(b, p) for b, _, _, p, _, _ in fills(out)] == [(1, 120.0), (1, 110.0), (1, 100.0)]


def test_grid_capital_split_over_slots() -> None:
    # Lines 100, 110, 120; capital 2000 over 2 slots, fee 1% (maker) / 2% (taker): each slot
    # gets 1000 / 1.02 of quote at its buy line. Open 105: slot 1 (line 110) buys at market.
    bars = make_bars([(105, 106, 99, 100)])
    plan = compile_template("tpl_grid", {"grid_levels": 3, "upper_price": 120, "lower_price": 100})
    out = run_template({"X": bars}, plan, 2000.0, 0, maker_bps=100, taker_bps=200)
    q0, q1 = 1000 / 1.02 / 100, 1000 / 1.02 / 110
    assert fills(out) == [
        (0, "buy", pytest.approx(q1), 105.0, pytest.approx(q1 * 105 * 0.02), "taker"),
        (0, "buy", pytest.approx(q0), 100.0, pytest.approx(q0 * 100 * 0.01), "maker"),
    ]
    assert out.equity[-1]["cash"] == pytest.approx(2000 - q1 * 105 * 1.02 - q0 * 100 * 1.01)


def test_grid_order_size_cash_short_refuses_and_keeps_resting() -> None:
    bars = make_bars([(105, 106, 104, 105), (104, 104, 99, 100)])
    plan = GridPlan((100.0, 110.0), 5.0)  # 5 units at 100 cost 500, capital 300
    out = run_template({"X": bars}, plan, 300.0, 0, maker_bps=0, taker_bps=0)
    assert out.trades == []
    assert "1 entries refused" in out.logs[0]  # the buy, refused for cash
    assert out.logs[-1] == "account: final cash 300.00"


def random_bars(n: int, seed: int) -> Bars:
    """A noisy wave between about 80 and 120."""
    rng = np.random.default_rng(seed)
    close = 100 + 15 * np.sin(np.arange(n) / 40) + rng.normal(0, 1.5, n)
    open_ = np.concatenate(([100.0], close[:-1])) + rng.normal(0, 0.5, n)
    high = np.maximum(open_, close) + rng.uniform(0, 2, n)
    low = np.minimum(open_, close) - rng.uniform(0, 2, n)
    return Bars(np.arange(n, dtype=np.int64) * H, open_, high, low, close, np.ones(n))


@pytest.mark.parametrize(
    "plan",
    [GridPlan(tuple(float(x) for x in np.linspace(80, 120, 21))),
     DcaPlan(10.0, None, 3, take_profit=0.03, stop_loss=0.05)],
)  # fmt: skip
def test_chunk_size_and_record_growth_do_not_change_results(plan) -> None:
    bars = {"X": random_bars(3000, 7)}
    kw = {"maker_bps": 2.0, "taker_bps": 5.0}
    one = run_template(bars, plan, 10_000.0, 10 * H, chunk_bars=1, **kw)
    big = run_template(bars, plan, 10_000.0, 10 * H, chunk_bars=100_000, **kw)
    assert len(one.trades) > 600  # past the first record buffer (256 + 2 per slot): it grew
    assert one == big


def test_progress_and_cancel() -> None:
    bars = {"X": random_bars(100, 1)}
    seen = []
    run_template(
        bars, DcaPlan(10.0, None, 5), 1000.0, 0, maker_bps=0, taker_bps=0, chunk_bars=30,
        on_progress=lambda p: seen.append(p.bars_done) is None,
    )  # fmt: skip
    assert seen == [30, 60, 90, 100]
    with pytest.raises(Cancelled):
        run_template(
            bars, DcaPlan(10.0, None, 5), 1000.0, 0, maker_bps=0, taker_bps=0, chunk_bars=30,
            on_progress=lambda p: False,
        )  # fmt: skip


def test_no_bar_in_the_trading_window_is_an_error() -> None:
    bars = {"X": make_bars([(100, 101, 99, 100)] * 3)}
    with pytest.raises(ValueError, match="no bars at or after trade_start_ns"):
        run_template(bars, DcaPlan(10.0), 100.0, 3 * H, maker_bps=0, taker_bps=0)


def test_grid_and_dca_reject_several_symbols() -> None:
    bars = make_bars([(100, 101, 99, 100)])
    with pytest.raises(ValueError, match="symbols"):
        run_template({"A": bars, "B": bars}, DcaPlan(10.0), 100.0, 0, maker_bps=0, taker_bps=0)


DCA_BARS = [
    (100, 101, 99, 100),  # 0: buy 100 quote = 1 unit at 100; take profit at 110
    (100, 105, 95, 96),  # 1: no buy (every 2 bars); 105 < 110
    (80, 82, 79, 81),  # 2: buy 1.25 at 80; average 200 / 2.25 = 88.89, take profit 97.78
    (90, 99, 89, 95),  # 3: high 99 reaches 97.78: sell 2.25 there = 220 (maker)
    (100, 100, 100, 100),  # 4: a new cycle: buy 1 at 100
]


def test_dca_schedule_average_cost_and_take_profit() -> None:
    plan = compile_template("tpl_dca", {"amount": "100", "every_bars": 2, "take_profit": 0.1})
    assert plan == DcaPlan(100.0, None, 2, 0.1, None)
    out = run_template({"X": make_bars(DCA_BARS)}, plan, 1000.0, 0, maker_bps=5, taker_bps=10)
    tp = 200 / 2.25 * 1.1
    assert fills(out) == [
        (0, "buy", 1.0, 100.0, 0.1, "taker"),
        (2, "buy", 1.25, 80.0, 0.1, "taker"),
        (3, "sell", 2.25, pytest.approx(tp), pytest.approx(0.11), "maker"),
        (4, "buy", 1.0, 100.0, 0.1, "taker"),
    ]
    (trip,) = out.round_trips
    assert trip["entry_price"] == pytest.approx(200 / 2.25)
    assert trip["pnl"] == pytest.approx(220 - 0.11 - 200 - 0.2)
    assert trip["exit_reason"] == "take_profit"
    assert trip["commission"] == pytest.approx(0.1 + 0.1 + 0.11)
    assert (trip["entry_time"], trip["exit_time"]) == (0, 3 * H)
    cash = [899.9, 899.9, 799.8, 1019.69, 919.59]
    assert [p["cash"] for p in out.equity] == pytest.approx(cash)
    assert out.equity[-1]["equity"] == pytest.approx(1019.59)
    (held,) = out.open_positions
    assert (held["entry_time"], held["entry_price"], held["quantity"]) == (4 * H, 100.0, 1.0)


def test_dca_stop_loss_gap_fills_at_the_open_and_both_hit_resolves_as_stop() -> None:
    rows = [
        (100, 100, 100, 100),  # 0: buy 1 at 100; stop 90, take profit 110
        (85, 86, 84, 85),  # 1: opens below 90: stop at the open, 85 (taker)
        (100, 100, 100, 100),  # 2: new cycle, buy 1 at 100
        (100, 111, 89, 100),  # 3: range holds both 90 and 110: the stop, flagged both_hit
    ]
    plan = DcaPlan(100.0, None, 2, take_profit=0.1, stop_loss=0.1)
    out = run_template({"X": make_bars(rows)}, plan, 1000.0, 0, maker_bps=0, taker_bps=0)
    sells = [(b, p, liq) for b, s, _, p, _, liq in fills(out) if s == "sell"]
    assert sells == [(1, 85.0, "taker"), (3, 90.0, "taker")]
    assert [(t["exit_reason"], t["both_hit"]) for t in out.round_trips] == [
        ("stop", False), ("stop", True),
    ]  # fmt: skip
    assert out.metrics["both_hit"] == 1


def test_dca_take_profit_gap_fills_at_the_open() -> None:
    rows = [(100, 100, 100, 100), (120, 121, 119, 120)]  # take profit 105; opens at 120
    out = run_template(
        {"X": make_bars(rows)}, DcaPlan(100.0, None, 5, take_profit=0.05), 1000.0, 0,
        maker_bps=0, taker_bps=0,
    )  # fmt: skip
    assert out.round_trips[0]["exit_price"] == 120.0


def test_dca_calendar_schedule() -> None:
    # Hourly bars from Sunday 2024-01-28 20:00 UTC; trading from 22:00.
    t0 = int(np.datetime64("2024-01-28T20:00", "ns").astype(np.int64))
    ts = t0 + np.arange(24 * 40, dtype=np.int64) * H
    start = 2
    stamps = ts.astype("datetime64[ns]")

    def buys(interval: str) -> list[str]:
        mask = dca_schedule(ts, start, DcaPlan(1.0, interval))
        return [str(s)[:16] for s in stamps[mask]]

    assert buys("1d")[:3] == ["2024-01-28T22:00", "2024-01-29T00:00", "2024-01-30T00:00"]
    assert len(buys("1d")) == 1 + 40  # the last bar is 2024-03-08T19:00
    assert buys("1w") == ["2024-01-28T22:00"] + [
        f"2024-{d}T00:00" for d in ("01-29", "02-05", "02-12", "02-19", "02-26", "03-04")
    ]
    assert buys("1M") == ["2024-01-28T22:00", "2024-02-01T00:00", "2024-03-01T00:00"]
    assert buys("4h")[:3] == ["2024-01-28T22:00", "2024-01-29T00:00", "2024-01-29T04:00"]
    every = dca_schedule(ts, start, DcaPlan(1.0, None, every_bars=5))
    assert np.flatnonzero(every)[:3].tolist() == [2, 7, 12]
