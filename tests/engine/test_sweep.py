"""Sweeps: every variant equals its own run; ranking, paths, limits."""

import numpy as np
import pytest

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import Bars
from engine.execution import Execution
from engine.run import run_backtest
from engine.strategy.compile import compile_strategy
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


def test_variants_equal_their_own_runs():
    data = bars()
    ex = Execution(
        sizing="fraction", size=1.0, fee_bps=10, atr_multiplier=0.0, max_trade_amount=1e12
    )
    t0 = int(data["BTC-USD"].ts[500])
    variants = expand(SPEC, GRID)
    assert len(variants) == 12
    rows, best = run_sweep(
        data, variants, ex, 10_000.0, t0, rank_by="total_return", resolution="1m"
    )
    by_number = {r["number"]: r for r in rows}
    for v in variants:
        alone = run_backtest(data, v.strategy, ex, 10_000.0, t0, resolution="1m")
        assert by_number[v.number]["metrics"] == alone.metrics
        assert by_number[v.number]["params"] == v.params
    returns = [r["metrics"]["total_return"] for r in rows]
    assert returns == sorted(returns, reverse=True)
    assert [r["rank"] for r in rows] == list(range(1, 13))
    assert best.metrics == rows[0]["metrics"]


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
