"""run_backtest: chunking invariance, cancellation, sleeves, sampling and input checks."""

import dataclasses
import json
import math

import numpy as np
import pytest

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import empty_bars
from engine.run import Cancelled, Execution, run_backtest, sample_indices, warm_up
from engine.strategy.compile import StrategyError, compile_strategy

T0 = 1_704_067_200_000_000_000
STRATEGY = compile_strategy(
    {
        "entry": [
            {"name": "macd_bullish_cross", "signal_type": "TRIGGER"},
            {"name": "is_above_sma", "signal_type": "FILTER", "params": {"window": 50}},
        ],
        "exit": [{"name": "macd_bearish_cross"}],
    }
)
EXECUTION = Execution(fee_bps=10.0, slippage_bps=5.0, atr_multiplier=2.0, max_hold_bars=300)


@pytest.fixture(scope="module")
def bars():
    btc = generate_bars(DEMO_SYMBOLS[1], T0, 3_000, np.random.default_rng(11))
    eth = generate_bars(DEMO_SYMBOLS[2], T0 + 60 * 10**9 * 500, 2_000, np.random.default_rng(12))
    return {"BTC-USD": btc, "ETH-USD": eth}


def as_json(out) -> str:
    return json.dumps(dataclasses.asdict(out), sort_keys=True, allow_nan=False)


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


def test_sleeves_sum_on_the_union_clock(bars):
    start = int(bars["BTC-USD"].ts[200])
    both = run_backtest(bars, STRATEGY, EXECUTION, 10_000.0, start, max_points=10**6)
    alone = {
        s: run_backtest({s: b}, STRATEGY, EXECUTION, 5_000.0, start, max_points=10**6)
        for s, b in bars.items()
    }
    btc_curve = {p["timestamp"]: p["equity"] for p in alone["BTC-USD"].equity}
    eth_ts = np.array([p["timestamp"] for p in alone["ETH-USD"].equity])
    eth_eq = [5_000.0] + [p["equity"] for p in alone["ETH-USD"].equity]
    for point in both.equity[::97]:
        # ETH starts later (its capital counts as cash) and ends earlier (forward-filled)
        eth = eth_eq[int(np.searchsorted(eth_ts, point["timestamp"], side="right"))]
        assert point["equity"] == pytest.approx(btc_curve[point["timestamp"]] + eth, rel=1e-12)
    assert both.trades == alone["BTC-USD"].trades + alone["ETH-USD"].trades


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
    assert {r["exit_reason"] for r in out.round_trips} <= {"signal", "stop", "max_hold"}
    assert len(out.equity) <= 2_000 and len(out.exposure) == 2 * len(out.equity)


def test_signal_timeframe_other_than_run_is_rejected(bars):
    strategy = compile_strategy(
        {
            "entry": [
                {"name": "sma_cross_up"},
                {"name": "is_above_sma", "timeframe": "1h", "signal_type": "FILTER"},
            ]
        }
    )
    with pytest.raises(StrategyError) as info:
        run_backtest(bars, strategy, EXECUTION, 1_000.0, T0)
    assert info.value.path == "entry[1].timeframe"
    same = compile_strategy({"entry": [{"name": "sma_cross_up", "timeframe": "1m"}]})
    run_backtest(bars, same, EXECUTION, 1_000.0, T0)


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


def test_symbol_without_bars_keeps_its_capital_as_cash(bars):
    one = {"BTC-USD": bars["BTC-USD"], "NONE": empty_bars()}
    out = run_backtest(one, STRATEGY, EXECUTION, 2_000.0, int(bars["BTC-USD"].ts[100]))
    alone = run_backtest(
        {"BTC-USD": bars["BTC-USD"]}, STRATEGY, EXECUTION, 1_000.0, int(bars["BTC-USD"].ts[100])
    )
    assert out.equity[-1]["equity"] == pytest.approx(alone.equity[-1]["equity"] + 1_000.0)


def test_warm_up_runs():
    warm_up()
