"""Score strategies: the JSON Schema, compiling, diagnostics and an end-to-end run."""

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from engine.data.store import RESOLUTIONS, Bars
from engine.diagnostics import r_summary, score_diagnostics, score_key
from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.expr import parse
from engine.strategy.form import Exits, Level
from engine.strategy.score import unparse

R_NAMES = ("pnl_r", "gross_profit_r", "gross_loss_r", "expectancy_r", "avg_win_r", "avg_loss_r")

SCHEMA = json.loads(
    (Path(__file__).parents[3] / "protocol" / "score_strategy.schema.json").read_text()
)
EXAMPLE = SCHEMA["examples"][0]
HOUR = RESOLUTIONS["1h"]


def changed(**edits: object) -> dict:
    """The example with top-level fields replaced (None removes one)."""
    spec = copy.deepcopy(EXAMPLE)
    for key, value in edits.items():
        if value is None:
            spec.pop(key)
        else:
            spec[key] = value
    return spec


def test_schema_is_valid_and_accepts_the_documented_example():
    Draft202012Validator.check_schema(SCHEMA)
    Draft202012Validator(SCHEMA).validate(EXAMPLE)


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        (changed(threshold=None), "threshold"),
        (changed(risk={"stop": {"type": "pips", "value": 10}}), "risk.stop.type"),
        (changed(risk={"stop": {"type": "percent", "value": 2}}), "risk.stop.value"),
        (changed(conditions=[]), "conditions"),
        (changed(conditions=[{"name": "a", "when": "close > open"}]), "conditions[0].score"),
        (changed(variables={"ema12": "ema(12)"}), "variables.ema12"),
        (changed(variables={"close": "ema(12)"}), "variables.close"),
        (changed(stop_loss={"type": "atr", "value": 2}), "stop_loss"),
        (changed(type="scores"), "type"),
        (changed(side="both"), "side"),
    ],
)
def test_schema_and_compiler_reject_broken_objects(spec, path):
    assert not Draft202012Validator(SCHEMA).is_valid(spec)
    with pytest.raises(StrategyError) as err:
        compile_strategy(spec)
    assert err.value.path == path


def test_documented_example_compiles_to_score_rule_and_fixed_r_exits():
    s = compile_strategy(EXAMPLE)
    assert pickle.loads(pickle.dumps(s)) == s
    assert s.sides == ("long",) and s.long_entry == () and s.short_entry == ()
    assert s.exits == Exits(stop_loss=Level("atr", 1.5), take_profit=Level("r", 3.0))
    rule = s.score
    assert rule.names == ("trend_up", "not_overbought", "above_200")
    assert rule.scores == (2.0, 1.0, 1.0) and rule.threshold == 3.0
    texts = [item.condition.name for item in rule.items]
    assert texts == ["ema(12) > ema(26)", "rsi(14) < 70", "close > sma(200)"]
    assert [item.condition.timeframe for item in rule.items] == [None, None, "4h"]
    assert {item.condition.role for item in rule.items} == {"FILTER"}
    assert [c.name for c in s.long_exit] == ["ema(12) < ema(26)"]
    assert rule.items[2].condition in s.conditions  # run.py checks their timeframes


def test_variables_nest_are_case_insensitive_and_may_be_conditions():
    s = compile_strategy(
        changed(
            variables={"Spread": "ema(12) - ema(26)", "bull": "spread > 0 and rsi > 50"},
            conditions=[
                {"name": "bull", "when": "BULL or -spread > 3 * rsi(7)", "score": 1.5},
                {"name": "neg", "when": "spread < 0", "score": -1},
            ],
            threshold=1.5,
            side="short",
            risk={"stop": {"type": "percent", "value": 0.02}},
            exit=None,
        )
    )
    first = s.score.items[0].condition.name
    assert first == "ema(12) - ema(26) > 0 and rsi() > 50 or -(ema(12) - ema(26)) > 3 * rsi(7)"
    assert s.sides == ("short",) and s.exits.take_profit == Level("r", 3.0)
    assert s.exits.stop_loss == Level("percent", 0.02) and s.long_exit == s.short_exit == ()


@pytest.mark.parametrize(
    ("edits", "path", "words"),
    [
        (
            {"conditions": [{"name": "a", "when": "fast > slwo", "score": 1}], "threshold": 1},
            "conditions[0].when",
            "undefined variable 'slwo' (variables: fast, slow, r) at position 7",
        ),
        (
            {"conditions": [{"name": "a", "when": "fast >", "score": 1}], "threshold": 1},
            "conditions[0].when",
            "missing operand at end of expression at position 6",
        ),
        (
            {"conditions": [{"name": "a", "when": "fast", "score": 1}], "threshold": 1},
            "conditions[0].when",
            "must be a condition",
        ),
        (
            {"conditions": [{"name": "a", "when": "r and fast > 1", "score": 1}], "threshold": 1},
            "conditions[0].when",
            "'and' needs conditions, not a number at position 0",
        ),
        ({"exit": ["fast < slow2"]}, "exit[0].condition", "unknown indicator 'slow'"),
        ({"exit": ["fast < sloww"]}, "exit[0].condition", "undefined variable 'sloww'"),
        ({"variables": {"a": "b + 1", "b": "c"}}, "variables.b", "undefined variable 'c'"),
        (
            {"variables": {"a": "b + 1", "b": "a * 2"}},
            "variables.a",
            "refers to itself (a -> b -> a)",
        ),
        ({"variables": {"fast": "ema(", "slow": "1"}}, "variables.fast", "missing operand"),
        ({"variables": {"x": "1", "X": "2"}}, "variables.X", "same name as 'x'"),
        ({"variables": {"a b": "1"}}, "variables.a b", "variable name"),
        ({"threshold": 5}, "threshold", "can never be reached (all conditions: 4)"),
        ({"threshold": 0}, "threshold", "above 0"),
        ({"risk": None}, "risk", "must be an object"),
        ({"risk": {"stop": {"type": "atr", "value": 1}, "reward_risk": 0}}, "risk.reward_risk", ""),
        ({"atr_period": 14}, "atr_period", "execution settings"),
    ],
)
def test_compile_errors_name_the_path_and_the_fault(edits, path, words):
    with pytest.raises(StrategyError) as err:
        compile_strategy(changed(**edits))
    assert err.value.path == path
    assert words in err.value.message


def test_condition_item_errors_name_their_field():
    cases = [
        ({"name": "a", "when": "close > 1", "score": True}, "conditions[0].score"),
        ({"name": "", "when": "close > 1", "score": 1}, "conditions[0].name"),
        ({"name": "a", "when": "close > 1", "score": 1, "timeframe": "2h"}, "conditions[0].timeframe"),
        ({"name": "a", "when": "close > 1", "score": 1, "signal_type": "EXIT"}, "conditions[0].signal_type"),
        ({"name": "a", "when": "close > 1", "score": 1, "weight": 1}, "conditions[0].weight"),
        ({"name": "a", "when": 3, "score": 1}, "conditions[0].when"),
    ]  # fmt: skip
    for item, path in cases:
        with pytest.raises(StrategyError) as err:
            compile_strategy(changed(conditions=[item], threshold=1))
        assert err.value.path == path, item
    dup = [{"name": "a", "when": "close > 1", "score": 1}] * 2
    with pytest.raises(StrategyError) as err:
        compile_strategy(changed(conditions=dup, threshold=1))
    assert err.value.path == "conditions[1].name"


@pytest.mark.parametrize(
    "text",
    [
        "a - (b - c) > -3 and not (x or y)",
        "-(a + b) * c / (d / e) <= 2.5e-07",
        "(a > 1 or b > 2) and c < 3 or not d == 4",
        "macd_signal(12, 26, window_sign=9) != -1 and cross_above(sma(volume, 20), x)",
        "shift(a > b, 2) and abs(-a) > min(a, max(b, 1.5))",
    ],
)
def test_unparse_reads_back_to_the_same_tree(text):
    node = parse(text)
    assert parse(unparse(node)) == node


def test_substituted_expression_too_large_is_refused():
    spec = changed(variables={"a": " + ".join(["sma(50)"] * 20)}, exit=None)  # 59 parts
    spec["conditions"] = [{"name": "big", "when": "a + a > a + a", "score": 1}]
    spec["threshold"] = 1
    with pytest.raises(StrategyError) as err:
        compile_strategy(spec)
    assert err.value.path == "conditions[0].when" and "substituted" in err.value.message


# Diagnostics on bars whose condition shares are known by construction. Trading period: 40 bars
# k = 0..39 after 10 warm-up bars on which every condition holds (they must not count).
# up (close > open, score 2) holds when k % 5 in {0, 1}: 16 of 40 = 40%.
# busy (volume > 100, score 1) holds when k % 4 == 0: 10 of 40 = 25%.
# Both hold when k % 20 in {0, 16}: 4 bars. Totals: 3 on 4 bars (10%), 2 on 12 (30%),
# 1 on 6 (15%), 0 on 18 (45%).
WARM, N = 10, 40


def known_bars(offset_ns: int = 0) -> Bars:
    k = np.arange(-WARM, N)
    up = (k < 0) | np.isin(k % 5, [0, 1])
    busy = (k < 0) | (k % 4 == 0)
    ts = offset_ns + np.arange(k.size, dtype=np.int64) * HOUR
    op = np.full(k.size, 100.0)
    close = np.where(up, 101.0, 100.0)
    return Bars(ts, op, close + 1.0, op - 1.0, close, np.where(busy, 200.0, 50.0))


KNOWN = compile_strategy(
    {
        "type": "score",
        "variables": {"body": "close - open"},
        "conditions": [
            {"name": "up", "when": "body > 0", "score": 2},
            {"name": "busy", "when": "volume > 100", "score": 1},
        ],
        "threshold": 3,
        "risk": {"stop": {"type": "percent", "value": 0.02}},
    }
)


def trip(bars: Bars, k_entry: int, **extra: object) -> dict:
    t = int(bars.ts[WARM + k_entry])
    base = {"entry_time": t, "exit_time": t + 2 * HOUR, "entry_price": 100.0,
            "exit_price": 106.0, "return": 0.06, "r_multiple": 3.0, "pnl": 6.0}  # fmt: skip
    return base | extra


def test_distributions_equal_the_constructed_shares():
    bars = known_bars()
    d = score_diagnostics(KNOWN, bars, [], int(bars.ts[WARM]))
    assert d["conditions_distribution_pct"] == pytest.approx({"up": 0.40, "busy": 0.25})
    assert d["score_distribution_pct"] == pytest.approx(
        {"0": 0.45, "1": 0.15, "2": 0.30, "3": 0.10}
    )
    assert list(d["score_distribution_pct"]) == ["0", "1", "2", "3"]
    assert d["trades_detail"] == []


def test_portfolio_pools_every_symbols_candles():
    a, b = known_bars(), known_bars(offset_ns=5 * HOUR)  # b's trading period starts 5 bars later
    d = score_diagnostics(KNOWN, {"A": a, "B": b}, [], int(a.ts[WARM]))
    # b also counts its last 5 warm-up bars (all true): up 16 + 21 of 85, busy 10 + 15 of 85.
    assert d["conditions_distribution_pct"] == pytest.approx({"up": 37 / 85, "busy": 25 / 85})
    assert d["score_distribution_pct"]["3"] == pytest.approx((4 + 9) / 85)


def test_trade_records_read_the_signal_bar():
    bars = known_bars()
    trips = [
        trip(bars, 3, r_multiple=-1.0, exit_price=98.0, **{"return": -0.02}),
        trip(bars, 1),
    ]
    d = score_diagnostics(KNOWN, bars, trips, int(bars.ts[WARM]))
    first, second = d["trades_detail"]
    # numbered by entry time; signal bars k=0 (both hold: 3) and k=2 (neither: 0)
    assert first == {
        "number": 1, "symbol": None, "entry_price": 100.0, "exit_price": 106.0, "pnl_r": 3.0,
        "pnl_pct": 0.06, "total_score_at_entry": 3.0,
        "conditions_at_entry": {"up": True, "busy": True},
        "score_breakdown_at_entry": {"up": 2.0, "busy": 1.0},
    }  # fmt: skip
    assert second["number"] == 2 and second["pnl_r"] == -1.0 and second["pnl_pct"] == -0.02
    assert second["total_score_at_entry"] == 0.0
    assert second["conditions_at_entry"] == {"up": False, "busy": False}
    assert second["score_breakdown_at_entry"] == {"up": 0.0, "busy": 0.0}
    # fill="close": the entry bar is the signal bar; k=16 has both, k=5 only up
    closes = [trip(bars, 16), trip(bars, 5)]
    d = score_diagnostics(KNOWN, bars, closes, int(bars.ts[WARM]), fill="close")
    assert [t["total_score_at_entry"] for t in d["trades_detail"]] == [2.0, 3.0]
    with pytest.raises(ValueError, match="not a bar"):
        score_diagnostics(KNOWN, bars, [trip(bars, 1, entry_time=1)], 0)


def test_r_summary_by_hand():
    rs = [2.9, -1.1, None, 3.0, -1.0]
    pnl = [29.0, -11.0, 5.0, 30.0, -10.0]
    trips = [
        {"r_multiple": r, "pnl": p, "both_hit": i == 1}
        for i, (r, p) in enumerate(zip(rs, pnl, strict=True))
    ]
    expected = {"pnl_r": 3.8, "gross_profit_r": 5.9, "gross_loss_r": -2.1, "profit_factor": 5.9 / 2.1,
                "expectancy_r": 0.95, "avg_win_r": 2.95, "avg_loss_r": -1.05, "trades": 5, "wins": 3,
                "losses": 2, "win_rate": 0.6, "both_hit": 1}  # fmt: skip
    assert r_summary(trips) == pytest.approx(expected)
    empty = r_summary([])
    assert empty["trades"] == 0 and empty["win_rate"] is None and empty["pnl_r"] is None
    assert r_summary(trips[:1])["profit_factor"] is None  # no losses: undefined


def test_score_keys():
    assert [score_key(x) for x in (3.0, 0.1 + 0.2, -0.0, 2.5)] == ["3", "0.3", "0", "2.5"]


# End to end: 1h bars in blocks of six (signal, fill, exit, three flat bars). Every bar but a
# signal bar has close == open, so only signal bars can score 3 or more. Stop 2% (1R = 2 at an
# entry of 100), target 3R = 106; fee 10 bps a fill.
FEE = 0.001
BLOCKS = [  # (up, busy, wide) on the signal bar, then what the exit bar's range touches
    ((True, True, True), "target"),  # 2 + 1 + 1 = 4
    ((True, True, False), "stop"),  # 3
    ((True, False, False), "target"),  # 2: no entry
    ((True, False, True), "both"),  # 3: stop and target on one bar
    ((False, True, True), "target"),  # 2: no entry
    ((True, True, False), "target"),  # 3
]
SCORED = {
    "type": "score",
    "variables": {"range": "high - low"},
    "conditions": [
        {"name": "up", "when": "close > open", "score": 2},
        {"name": "busy", "when": "volume > 1000", "score": 1},
        {"name": "wide", "when": "range > 1.5", "score": 1},
    ],
    "threshold": 3,
    "risk": {"stop": {"type": "percent", "value": 0.02}, "reward_risk": 3},
}


def block_bars() -> Bars:
    rows = [(100.0, 100.5, 99.5, 100.0, 500.0)] * 4  # (open, high, low, close, volume)
    flat = (100.0, 100.5, 99.5, 100.0, 500.0)
    for (up, busy, wide), outcome in BLOCKS:
        high = 101.5 if wide else 100.5
        rows.append((100.0, high, 99.5, 100.4 if up else 100.0, 2000.0 if busy else 500.0))
        rows.append(flat)  # the fill bar: entry at its open, 100; range inside 98..106
        high = 107.0 if outcome in ("target", "both") else 100.5
        low = 97.0 if outcome in ("stop", "both") else 99.5
        rows += [(100.0, high, low, 100.0, 500.0), flat, flat, flat]
    o, h, lo, c, v = (np.array(col) for col in zip(*rows, strict=True))
    return Bars(np.arange(o.size, dtype=np.int64) * HOUR, o, h, lo, c, v)


def test_score_strategy_runs_end_to_end_with_fixed_r_exits():
    from engine.run import Execution, run_backtest

    bars = block_bars()
    strategy = compile_strategy(SCORED)
    out = run_backtest({"X": bars}, strategy, Execution(fee_bps=FEE * 1e4), 10_000.0, 0)
    score = 2 * (bars.close > bars.open) + (bars.volume > 1000) + ((bars.high - bars.low) > 1.5)
    signals = np.flatnonzero(score[:-1] >= 3)
    assert signals.size == 4
    trips = out.round_trips
    assert [t["entry_time"] for t in trips] == bars.ts[signals + 1].tolist()
    assert [t["entry_price"] for t in trips] == [100.0] * 4
    # r = (pnl at the level - both fees) / (units * 2): target 3 - (100 + 106) * f / 2
    target_r, stop_r = 3 - 103 * FEE, -1 - 99 * FEE
    assert [t["exit_reason"] for t in trips] == ["take_profit", "stop", "stop", "take_profit"]
    assert [t["exit_price"] for t in trips] == pytest.approx([106.0, 98.0, 98.0, 106.0])
    expected_r = [target_r, stop_r, stop_r, target_r]
    assert [t["r_multiple"] for t in trips] == pytest.approx(expected_r, abs=1e-9)
    assert [t["both_hit"] for t in trips] == [False, False, True, False]

    summary = r_summary(trips)
    assert summary["pnl_r"] == pytest.approx(sum(expected_r), abs=1e-9)
    assert summary["avg_loss_r"] == pytest.approx(stop_r) and summary["both_hit"] == 1
    assert summary["wins"] == 2 and summary["losses"] == 2 and summary["win_rate"] == 0.5
    for key in R_NAMES:
        assert summary[key] == pytest.approx(out.metrics[key])

    d = score_diagnostics(strategy, bars, trips, 0)
    assert [t["total_score_at_entry"] for t in d["trades_detail"]] == score[signals].tolist()
    assert d["trades_detail"][1]["conditions_at_entry"] == {"up": True, "busy": True, "wide": False}
    n = len(bars)
    assert d["conditions_distribution_pct"]["up"] == pytest.approx(5 / n)
    assert d["score_distribution_pct"]["4"] == pytest.approx(1 / n)
