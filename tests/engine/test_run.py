"""run_backtest: chunking invariance, cancellation, sleeves, sampling and input checks."""

import dataclasses
import json
import math

import numpy as np
import pytest

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import RESOLUTIONS, empty_bars, resample
from engine.run import Cancelled, Execution, run_backtest, sample_indices, warm_up
from engine.strategy.compile import StrategyError
from engine.strategy.form import Condition, Exits, Level, Strategy

T0 = 1_704_067_200_000_000_000
MACD = (("window_fast", 12), ("window_slow", 26), ("window_sign", 9))
STRATEGY = Strategy(
    name="seed 001 example",
    long_entry=(
        Condition("signal", "macd_bullish_cross", MACD, path="entry[0]"),
        Condition("signal", "is_above_sma", (("window", 50),), role="FILTER", path="entry[1]"),
    ),
    long_exit=(Condition("signal", "macd_bearish_cross", MACD, role="EXIT", path="exit[0]"),),
)
EXECUTION = Execution(fee_bps=10.0, slippage_bps=5.0, atr_multiplier=2.0, max_hold_bars=300)


@pytest.fixture(scope="module")
def bars():
    btc = generate_bars(DEMO_SYMBOLS[1], T0, 3_000, np.random.default_rng(11))
    eth = generate_bars(DEMO_SYMBOLS[2], T0 + 60 * 10**9 * 500, 2_000, np.random.default_rng(12))
    return {"BTC-USD": btc, "ETH-USD": eth}


def as_json(out) -> str:
    return json.dumps(dataclasses.asdict(out), sort_keys=True, allow_nan=False, default=list)


def test_chunk_size_does_not_change_output(bars):
    start = int(bars["BTC-USD"].ts[200])
    a = run_backtest(bars, STRATEGY, EXECUTION, 10_000.0, start, chunk_bars=7)
    b = run_backtest(bars, STRATEGY, EXECUTION, 10_000.0, start, chunk_bars=100_000)
    assert as_json(a) == as_json(b)
    assert a.metrics["trade_count"] > 0 and len(a.trades) >= 2


def test_progress_is_reported_and_cancel_raises(bars):
    seen = []
    start = int(bars["BTC-USD"].ts[200])
    run_backtest(
        bars, STRATEGY, EXECUTION, 10_000.0, start, chunk_bars=500, on_progress=seen.append
    )
    assert [p.bars_done for p in seen] == sorted(p.bars_done for p in seen)
    assert seen[-1].bars_done == seen[-1].bars_total == 2_800
    assert {"equity", "drawdown", "trade_count"} <= seen[-1].metrics.keys()
    with pytest.raises(Cancelled):
        run_backtest(
            bars, STRATEGY, EXECUTION, 10_000.0, start, chunk_bars=500, on_progress=lambda p: False
        )


def test_portfolio_shares_one_cash_balance_on_the_union_clock(bars):
    start = int(bars["BTC-USD"].ts[200])
    ex = dataclasses.replace(EXECUTION, sizing="fraction", size=0.9, max_trade_amount=1e9,
                             max_units_per_trade=1e9)  # fmt: skip
    out = run_backtest(bars, STRATEGY, ex, 10_000.0, start, max_points=10**6)
    # ETH's bars lie inside BTC's minutes: the clock is BTC's from the start on
    assert [p["timestamp"] for p in out.equity] == bars["BTC-USD"].ts[200:].tolist()
    assert {t["symbol"] for t in out.trades} == {"BTC-USD", "ETH-USD"}
    stamps = [t["timestamp"] for t in out.trades]
    assert stamps == sorted(stamps)  # one account: fills in time order across symbols
    # one cash balance: every fill of either symbol moves it
    cash = 10_000.0
    by_time = {p["timestamp"]: p for p in out.equity}
    for t in out.trades:
        cash += (-1 if t["side"] == "buy" else 1) * t["quantity"] * t["price"] - t["commission"]
    assert out.equity[-1]["cash"] == pytest.approx(cash, rel=1e-9)
    # each entry spends at most 0.9 x equity / 2 symbols
    for t in out.trades:
        if t["side"] == "buy":
            before = by_time[t["timestamp"]]["equity"]
            assert t["quantity"] * t["price"] <= 0.9 * before / 2 * 1.05
    last = out.equity[-1]
    value = sum(p["value"] for p in out.open_positions)
    assert last["equity"] == pytest.approx(last["cash"] + value, rel=1e-12)


def test_final_equity_is_cash_plus_open_position(bars):
    one = {"BTC-USD": bars["BTC-USD"]}
    out = run_backtest(one, STRATEGY, Execution(), 1_000.0, int(one["BTC-USD"].ts[100]))
    last = out.equity[-1]
    value = sum(p["value"] for p in out.open_positions)
    assert last["equity"] == pytest.approx(last["cash"] + value, rel=1e-12)
    assert last["timestamp"] == int(one["BTC-USD"].ts[-1])
    cash = 1_000.0 + sum(
        (-1 if t["side"] == "buy" else 1) * t["quantity"] * t["price"] - t["commission"]
        for t in out.trades
    )
    assert last["cash"] == pytest.approx(cash, rel=1e-9)


def test_no_fill_before_trade_start(bars):
    one = {"BTC-USD": bars["BTC-USD"]}
    start = int(one["BTC-USD"].ts[2_000])
    out = run_backtest(one, STRATEGY, EXECUTION, 1_000.0, start)
    assert out.bars == 1_000 and out.equity[0]["timestamp"] >= start
    assert all(t["timestamp"] > start for t in out.trades)


def test_outputs_are_json_safe_and_metrics_finite_or_none(bars):
    out = run_backtest(bars, STRATEGY, EXECUTION, 10_000.0, int(bars["BTC-USD"].ts[200]))
    as_json(out)
    assert all(v is None or math.isfinite(v) for v in out.metrics.values())
    reasons = {"signal", "stop", "take_profit", "trailing_stop", "max_hold"}
    assert {r["exit_reason"] for r in out.round_trips} <= reasons
    assert len(out.equity) <= 2_000 and len(out.exposure) == 2 * len(out.equity)


def test_condition_timeframe_finer_than_the_run_is_rejected(bars):
    hourly = {"BTC-USD": resample(bars["BTC-USD"], RESOLUTIONS["1h"])}
    sma = (("window", 5),)
    finer = Condition("signal", "is_above_sma", sma, "15m", "FILTER", "entry[1]")
    strategy = Strategy(name="s", long_entry=(STRATEGY.long_entry[0], finer))
    with pytest.raises(StrategyError) as info:
        run_backtest(hourly, strategy, EXECUTION, 1_000.0, T0, resolution="1h")
    assert info.value.path == "entry[1].timeframe"
    coarser = Condition("signal", "is_above_sma", sma, "4h", "FILTER", "entry[1]")
    strategy = Strategy(name="s", long_entry=(STRATEGY.long_entry[0], coarser))
    run_backtest(hourly, strategy, EXECUTION, 1_000.0, T0, resolution="1h")


def test_bad_inputs_raise_value_error(bars):
    with pytest.raises(ValueError):
        run_backtest(bars, STRATEGY, EXECUTION, 0.0, T0)
    with pytest.raises(ValueError):
        run_backtest(bars, STRATEGY, Execution(max_hold_bars=0), 1.0, T0)
    with pytest.raises(ValueError):
        run_backtest(bars, STRATEGY, EXECUTION, 1.0, T0 + 10**18)


@pytest.mark.parametrize(("n", "max_points"), [(1, 5), (5, 5), (6, 5), (2001, 2000), (10, 3)])
def test_sample_indices(n, max_points):
    idx = sample_indices(n, max_points)
    assert len(idx) <= max_points and idx[-1] == n - 1
    assert np.all(np.diff(idx) > 0)


def test_symbol_without_bars_changes_nothing_under_risk_sizing(bars):
    # risk sizing risks a fraction of the whole account: an idle symbol leaves every fill as is
    start = int(bars["BTC-USD"].ts[100])
    both = {"BTC-USD": bars["BTC-USD"], "NONE": empty_bars()}
    out = run_backtest(both, STRATEGY, EXECUTION, 2_000.0, start)
    alone = run_backtest({"BTC-USD": bars["BTC-USD"]}, STRATEGY, EXECUTION, 2_000.0, start)
    assert out.trades == alone.trades and out.round_trips == alone.round_trips
    assert [p["equity"] for p in out.equity] == [p["equity"] for p in alone.equity]
    assert out.metrics == alone.metrics
    assert len(out.exposure) == 2 * len(alone.exposure)


def test_warm_up_runs():
    warm_up()


def test_round_trips_carry_side_r_and_both_hit_and_metrics_count_them(bars):
    one = {"BTC-USD": bars["BTC-USD"]}
    strategy = dataclasses.replace(
        STRATEGY,
        short_entry=(Condition("signal", "macd_bearish_cross", MACD),),
        short_exit=(Condition("signal", "macd_bullish_cross", MACD),),
        exits=Exits(stop_loss=Level("atr", 1.0), take_profit=Level("r", 1.5)),
    )
    ex = Execution(allow_short=True, max_open_positions=1)
    out = run_backtest(one, strategy, ex, 10_000.0, int(one["BTC-USD"].ts[100]))
    trips = out.round_trips
    assert {t["side"] for t in trips} == {"long", "short"}
    assert all(t["r_multiple"] is not None for t in trips)
    assert out.metrics["both_hit"] == sum(t["both_hit"] for t in trips)
    r = [t["r_multiple"] for t in trips]
    assert out.metrics["pnl_r"] == pytest.approx(sum(r))
    assert out.metrics["wins"] + out.metrics["losses"] <= len(trips)
    # without fees, a take-profit at 1.5 R books 1.5 R (more on a gap), a stop -1 R (less on one)
    tp = [t["r_multiple"] for t in trips if t["exit_reason"] == "take_profit"]
    stop = [t["r_multiple"] for t in trips if t["exit_reason"] == "stop"]
    assert tp and all(x >= 1.5 - 1e-9 for x in tp) and min(tp) == pytest.approx(1.5)
    assert stop and all(x <= -1 + 1e-9 for x in stop) and max(stop) == pytest.approx(-1)
    no_short = run_backtest(one, strategy, Execution(), 10_000.0, int(one["BTC-USD"].ts[100]))
    assert {t["side"] for t in no_short.round_trips} == {"long"}


def test_periods_per_year_override_scales_annualised_metrics(bars):
    one = {"BTC-USD": bars["BTC-USD"]}
    start = int(one["BTC-USD"].ts[100])
    a = run_backtest(one, STRATEGY, EXECUTION, 10_000.0, start)
    b = run_backtest(one, STRATEGY, EXECUTION, 10_000.0, start, periods_per_year=252.0)
    ratio = math.sqrt(252.0 / (365 * 24 * 60))
    assert b.metrics["sharpe_ratio"] == pytest.approx(a.metrics["sharpe_ratio"] * ratio)
    assert b.metrics["max_drawdown"] == a.metrics["max_drawdown"]


def test_full_risk_model_is_chunk_invariant_and_deterministic(bars):
    strategy = dataclasses.replace(
        STRATEGY,
        short_entry=(Condition("signal", "macd_bearish_cross", MACD),),
        short_exit=(Condition("signal", "macd_bullish_cross", MACD),),
        exits=Exits(take_profit=Level("r", 2.0), trailing_stop=Level("percent", 0.004)),
    )
    ex = Execution.from_dict(
        {
            "allow_short": True, "fee_bps": 5.0, "slippage_bps": 2.0,
            "enable_volatility_adjustment": True, "target_volatility": 0.0005,
            "max_trades_per_day": 7, "max_hold_bars": 120,
            "cooldown_config": {"1m": {"short_loss_limit": 2, "long_loss_limit": 3,
                                       "short_window_bars": 60, "long_window_bars": 240}},
        }
    )  # fmt: skip
    start = int(bars["BTC-USD"].ts[200])
    a = run_backtest(bars, strategy, ex, 10_000.0, start, chunk_bars=13, resolution="1m")
    b = run_backtest(bars, strategy, ex, 10_000.0, start, chunk_bars=50_000, resolution="1m")
    assert as_json(a) == as_json(b)
    assert len(a.round_trips) > 5
    refused = [
        int(line.split(" entries refused")[0].rsplit(" ", 1)[1])
        for line in a.logs
        if " entries refused" in line
    ]
    assert sum(refused) > 0
    reasons = {t["exit_reason"] for t in a.round_trips}
    assert {"trailing_stop", "signal"} <= reasons


def test_curve_pass_equals_the_drawdown_moment_and_episode_kernels_bit_for_bit():
    from engine.nb.metrics import curve_pass_nb, drawdown_nb, episodes_nb, return_moments_nb

    rng = np.random.default_rng(4)
    for trial in range(400):
        n = int(rng.integers(0, 2_000))
        kind = trial % 5
        if kind == 0:
            eq = 1e6 * np.cumprod(1 + rng.normal(0, 1e-2, n))
        elif kind == 1:
            eq = np.round(rng.uniform(0.5, 2.0, n), 2)  # many ties with the peak
        elif kind == 4:
            eq = np.repeat(rng.uniform(1, 2, n // 10 + 1), 10)[:n]  # flat stretches
        elif kind == 2:
            eq = np.cumsum(rng.normal(0, 1, n)) + 100.0
            eq[rng.integers(0, max(n, 1), 3 if n else 0)] = np.nan
        else:
            eq = np.abs(np.cumsum(rng.normal(0, 1, n))) + 1e-9  # drawdowns near 100%
        ts = np.cumsum(rng.integers(1, 10**9, n)).astype(np.int64)
        moments, episodes = n >= 3 and eq[0] > 0, trial % 3 > 0
        want = drawdown_nb(eq) + (return_moments_nb(eq) if moments else (np.nan,) * 3)
        want += episodes_nb(eq, ts) if episodes else (0, 0.0, 0, 0, 0, -np.inf)
        out = np.full(n + trial % 3, np.inf)  # stale values, longer than needed at times
        res = curve_pass_nb(eq, moments, out, ts, episodes)
        got, r = res[:5] + res[6:], res[5]
        assert len(got) == len(want) == 11
        assert all(a == b or (a != a and b != b) for a, b in zip(want, got, strict=True))
        if moments:
            assert np.array_equal(r, eq[1:] / eq[:-1] - 1.0, equal_nan=True)
        else:
            assert r.size == 0
