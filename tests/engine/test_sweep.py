"""Sweeps: every variant equals its own run; ranking, paths, limits."""

import dataclasses

import numpy as np
import pytest

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import Bars
from engine.execution import Execution
from engine.run import Cancelled, Progress, prepare_frame, run_backtest, run_metrics
from engine.strategy.compile import compile_strategy
from engine.strategy.form import Exits, Level
from engine.sweep import MAX_VARIANTS, SweepError, expand, rank_key, run_sweep, set_path

SPEC = {
    "entry": [
        {"name": "sma_cross_up", "params": {"window_fast": 10, "window_slow": 30}},
        {"name": "is_above_sma", "signal_type": "FILTER", "params": {"window": 50}},
    ],
    "exit": [{"name": "sma_cross_down", "params": {"window_fast": 10, "window_slow": 30}}],
}
GRID = {
    "entry[0].params.window_fast": [5, 10, 15],
    "exit[0].params.window_fast": [5, 10],
    "entry[0].params.window_slow": [30, 40],
}


def bars() -> dict[str, Bars]:
    m = generate_bars(DEMO_SYMBOLS[1], 1_704_067_200_000_000_000, 20_000, np.random.default_rng(11))
    return {"BTC-USD": m}


RISKY_SPEC = {
    "side": "both",
    "entry": [{"name": "sma_cross_up", "params": {"window_fast": 10, "window_slow": 30}}],
    "exit": [{"name": "sma_cross_down", "params": {"window_fast": 10, "window_slow": 30}}],
    "short_entry": [{"name": "sma_cross_down", "params": {"window_fast": 10, "window_slow": 30}}],
    "short_exit": [{"name": "sma_cross_up", "params": {"window_fast": 10, "window_slow": 30}}],
    "take_profit": {"type": "r", "value": 2.0},
}
RISKY_GRID = {
    "entry[0].params.window_fast": [5, 12],
    "stop_loss": [{"type": "atr", "value": 1.5}, {"type": "percent", "value": 0.01}, None],
    "trailing_stop": [None, {"type": "percent", "value": 0.004}],
    "max_hold_bars": [None, 90],
}
RISKY_EX = Execution(
    allow_short=True, fee_bps=7, slippage_bps=2, atr_multiplier=2.0, max_open_positions=3,
    enable_volatility_adjustment=True, max_trade_amount=1e12, leverage=3.0,
    cooldown_config={"1m": {"short_loss_limit": 2, "long_loss_limit": 4,
                            "short_window_bars": 60, "long_window_bars": 600}},
)  # fmt: skip


def two_symbols() -> dict[str, Bars]:
    start = 1_704_067_200_000_000_000
    rng = np.random.default_rng(5)
    return {
        "BTC-USD": generate_bars(DEMO_SYMBOLS[0], start, 6_000, rng),
        "ETH-USD": generate_bars(DEMO_SYMBOLS[1], start + 60 * 10**9 * 7, 5_000, rng),
    }


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_variants_equal_their_own_runs(workers):
    data = bars()
    ex = Execution(
        sizing="fraction", size=1.0, fee_bps=10, atr_multiplier=0.0, max_trade_amount=1e12
    )
    t0 = int(data["BTC-USD"].ts[500])
    variants = expand(SPEC, GRID)
    assert len(variants) == 12
    rows, best = run_sweep(
        data, variants, ex, 10_000.0, t0, rank_by="total_return", resolution="1m",
        workers=workers,
    )  # fmt: skip
    by_number = {r["number"]: r for r in rows}
    for v in variants:
        alone = run_backtest(data, v.strategy, ex, 10_000.0, t0, resolution="1m")
        assert by_number[v.number]["metrics"] == alone.metrics
        assert by_number[v.number]["params"] == v.params
    returns = [r["metrics"]["total_return"] for r in rows]
    assert returns == sorted(returns, reverse=True)
    assert [r["rank"] for r in rows] == list(range(1, 13))
    assert best.metrics == rows[0]["metrics"]


@pytest.mark.parametrize("symbols", [1, 2])
def test_risk_model_variants_equal_their_own_runs(symbols):
    data = dict(list(two_symbols().items())[:symbols])
    t0 = int(data["BTC-USD"].ts[400])
    variants = expand(RISKY_SPEC, RISKY_GRID)
    rows, best = run_sweep(data, variants, RISKY_EX, 10_000.0, t0, rank_by="sharpe_ratio")
    assert len(rows) == 24
    for row in rows:
        alone = run_backtest(data, variants[row["number"] - 1].strategy, RISKY_EX, 10_000.0, t0)
        assert row["metrics"] == alone.metrics
    assert sum(r["metrics"]["trade_count"] for r in rows) > 24 * 10
    assert best.metrics == rows[0]["metrics"] and best.round_trips


def test_run_metrics_equals_run_backtest_with_or_without_a_frame():
    data = two_symbols()
    t0 = int(data["BTC-USD"].ts[400])
    for symbols in (["BTC-USD"], ["BTC-USD", "ETH-USD"]):
        part = {s: data[s] for s in symbols}
        frame = prepare_frame(part, RISKY_EX, t0, "1m", 500_000.0)
        for v in expand(RISKY_SPEC, RISKY_GRID)[::5]:
            alone = run_backtest(part, v.strategy, RISKY_EX, 10_000.0, t0, resolution="1m",
                                 periods_per_year=500_000.0).metrics  # fmt: skip
            args = (part, v.strategy, RISKY_EX, 10_000.0, t0)
            kw = {"resolution": "1m", "periods_per_year": 500_000.0}
            assert run_metrics(*args, **kw) == alone
            assert run_metrics(*args, frame=frame, **kw) == alone
            assert run_metrics(*args, frame=frame, checked=True, **kw) == alone


@pytest.mark.parametrize(
    ("ex", "capital", "ppy", "message"),
    [
        (Execution(fee_bps=-1.0), 10_000.0, None, "fee_bps"),
        (Execution(), 0.0, None, "capital must be positive"),
        (Execution(), 10_000.0, -5.0, "periods_per_year must be > 0"),
    ],
)
def test_sweep_rejects_bad_shared_inputs_before_any_progress(ex, capital, ppy, message):
    data = bars()
    t0 = int(data["BTC-USD"].ts[500])
    seen: list[Progress] = []
    with pytest.raises(ValueError, match=message):
        run_sweep(
            data, expand(SPEC, GRID), ex, capital, t0, periods_per_year=ppy,
            on_progress=lambda p: seen.append(p) is None,
        )  # fmt: skip
    assert seen == []


def test_checked_run_metrics_still_checks_the_variants_exits():
    data = bars()
    t0 = int(data["BTC-USD"].ts[500])
    frame = prepare_frame(data, Execution(), t0, "1m")
    good = compile_strategy(SPEC)
    for exits, message in [
        (Exits(max_hold_bars=0), "max_hold_bars must be >= 1"),
        (Exits(stop_loss=Level("r", 1.0)), "exits.stop_loss"),
        (Exits(take_profit=Level("percent", -0.1)), "exits.take_profit"),
    ]:
        strategy = dataclasses.replace(good, exits=exits)
        with pytest.raises(ValueError, match=message):
            run_metrics(data, strategy, Execution(), 10_000.0, t0, frame=frame, checked=True)


def test_rows_and_progress_are_the_same_for_any_worker_count():
    data = bars()
    t0 = int(data["BTC-USD"].ts[500])
    variants = expand(SPEC, GRID)
    results = []
    for workers in (1, 3):
        seen: list[Progress] = []
        rows, _ = run_sweep(
            data, variants, Execution(), 10_000.0, t0, workers=workers,
            on_progress=lambda p, seen=seen: seen.append(p) is None,
        )  # fmt: skip
        done = [p.bars_done for p in seen]
        assert done == sorted(done) and done[-1] == 12 and all(p.bars_total == 12 for p in seen)
        results.append(rows)
    assert results[0] == results[1]


def test_progress_returning_false_cancels_the_sweep():
    data = bars()
    t0 = int(data["BTC-USD"].ts[500])
    calls = []
    with pytest.raises(Cancelled):
        run_sweep(
            data, expand(SPEC, GRID), Execution(), 10_000.0, t0, workers=2,
            on_progress=lambda p: calls.append(p.bars_done) or False,
        )  # fmt: skip
    assert len(calls) == 1 and calls[0] < 12


def test_expand_sets_paths_and_checks_each_variant():
    variants = expand(SPEC, {"entry[1].params.window": [20, 60]})
    assert [v.strategy.long_entry[1].param_dict["window"] for v in variants] == [20, 60]
    with pytest.raises(SweepError) as info:
        expand(SPEC, {"entry[0].params.window_fast": [10, 35]})  # 35 >= window_slow 30
    assert info.value.path == "strategy.entry[0].params.window_fast"
    with pytest.raises(SweepError) as info:
        expand(SPEC, {"entry[7].params.window": [1]})
    assert info.value.path == "sweep.grid.entry[7].params.window"
    with pytest.raises(SweepError) as info:
        expand(SPEC, {"entry[0].params.window_fast": []})
    assert info.value.path == "sweep.grid.entry[0].params.window_fast"
    big = {f"entry[0].params.p{i}": list(range(10)) for i in range(5)}
    with pytest.raises(SweepError, match=str(MAX_VARIANTS)):
        expand(SPEC, big)


def test_set_path_rejects_malformed_paths():
    obj = {"a": [{"b": 1}]}
    set_path(obj, "a[0].b", 2)
    assert obj == {"a": [{"b": 2}]}
    for bad in ("", "a..b", "a[x]", "a[0]b", "1a"):
        with pytest.raises(ValueError):
            set_path(obj, bad, 0)


def test_rank_key_orders_lower_is_better_and_undefined_last():
    rows = [
        {"number": 1, "metrics": {"max_drawdown": 0.3}},
        {"number": 2, "metrics": {"max_drawdown": None}},
        {"number": 3, "metrics": {"max_drawdown": 0.1}},
    ]
    assert [r["number"] for r in sorted(rows, key=rank_key("max_drawdown"))] == [3, 1, 2]


def test_compiled_variant_matches_direct_compile():
    v = expand(SPEC, {"stop_loss": [{"type": "percent", "value": 0.02}]})[0]
    assert v.strategy == compile_strategy({**SPEC, "stop_loss": {"type": "percent", "value": 0.02}})


def test_run_metrics_reuses_its_thread_scratch_without_stale_values():
    import engine.book as book_module

    data, short = bars(), two_symbols()
    ex = Execution(
        sizing="fraction", size=1.0, fee_bps=10, atr_multiplier=0.0, max_trades_per_day=10**6,
        cooldown_config={}, cooldown_bars=0, daily_momentum_limit=0, weekly_momentum_limit=0,
        min_balance_threshold=0.0,
    )  # fmt: skip
    fast = compile_strategy(  # in for one bar whenever close > SMA 5: thousands of trips
        {
            "entry": [{"name": "is_above_sma", "signal_type": "FILTER", "params": {"window": 5}}],
            "exit": [{"name": "sma_cross_down", "params": {"window_fast": 2, "window_slow": 3}}],
            "max_hold_bars": 1,
        }
    )
    slow = expand(SPEC, GRID)[0].strategy
    cases = [
        (data, fast, int(data["BTC-USD"].ts[50])),  # > 4,096 fills: the records grow
        ({"ETH-USD": short["ETH-USD"]}, slow, int(short["ETH-USD"].ts[300])),
        (data, slow, int(data["BTC-USD"].ts[900])),
        (data, fast, int(data["BTC-USD"].ts[50])),
    ]
    for bars_, strategy, t0 in cases:
        scratch = book_module.SCRATCH
        for arr in (scratch.curves, scratch.fills, scratch.trips):
            arr.view(np.uint8)[:] = 0x7F  # poison whatever a previous run left
        alone = run_backtest(bars_, strategy, ex, 10_000.0, t0, resolution="1m")
        got = run_metrics(bars_, strategy, ex, 10_000.0, t0, resolution="1m")
        assert got == alone.metrics
    assert alone.metrics["trade_count"] * 2 > 4_096
    assert book_module.SCRATCH.fills.size > 4_096


def test_sweep_equals_own_runs_on_a_grid_sharing_a_filter_many_times():
    data = bars()
    ex = Execution(sizing="fraction", size=1.0, fee_bps=10, atr_multiplier=0.0)
    t0 = int(data["BTC-USD"].ts[500])
    grid = {
        "entry[0].params.window_fast": [2, 3, 5, 8, 13],
        "entry[0].params.window_slow": [21, 34, 55],
        "exit[0].params.window_fast": [3, 8],
    }
    variants = expand(SPEC, grid)
    rows, _ = run_sweep(data, variants, ex, 10_000.0, t0, resolution="1m", workers=2)
    for row in rows:
        alone = run_backtest(data, variants[row["number"] - 1].strategy, ex, 10_000.0, t0,
                             resolution="1m")  # fmt: skip
        assert row["metrics"] == alone.metrics
