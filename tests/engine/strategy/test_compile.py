"""compile_strategy: seed 001 and v2 strategies compile to the internal form; faults name their path."""

import copy
import json
import pickle

import pytest

from engine.strategy.catalog import describe_signals
from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.form import Condition, Exits, Level

SEED_001 = json.loads(
    '{"name": "ETH Strategy", "asset": "ETH", "entry": [{"name": "macd_bullish_cross", '
    '"timeframe": "1h", "signal_type": "TRIGGER", "params": {"window_fast": 12, "window_slow": '
    '26, "window_sign": 9}}, {"name": "is_above_sma", "timeframe": "1h", "params": {"window": '
    '50}, "signal_type": "FILTER"}], "exit": []}'
)


@pytest.mark.parametrize("dialect", ["v2", "seed001"])
def test_seed_001_example_compiles_and_pickles(dialect):
    s = compile_strategy(SEED_001, dialect=dialect)
    assert s.name == "ETH Strategy" and s.asset == "ETH" and s.long_exit == ()
    assert [(x.kind, x.name, x.role, x.timeframe) for x in s.long_entry] == [
        ("signal", "macd_bullish_cross", "TRIGGER", "1h"),
        ("signal", "is_above_sma", "FILTER", "1h"),
    ]
    assert s.long_entry[0].param_dict == {"window_fast": 12, "window_slow": 26, "window_sign": 9}
    assert s.short_entry == () and s.exits == Exits() and s.sides == ("long",)
    assert pickle.loads(pickle.dumps(s)) == s


def test_defaults_fill_in_and_entry_default_role_is_trigger():
    s = compile_strategy(
        {"entry": [{"name": "sma_cross_up"}], "exit": [{"name": "sma_cross_down"}]}
    )
    assert s.long_entry[0].role == "TRIGGER" and s.long_exit[0].role == "EXIT"
    assert s.long_entry[0].param_dict == {"window_fast": 10, "window_slow": 50}


def test_v2_sides_and_protective_exits():
    s = compile_strategy(
        {
            "side": "both",
            "entry": [{"name": "sma_cross_up"}],
            "short_entry": [{"name": "sma_cross_down"}],
            "short_exit": [{"name": "sma_cross_up"}],
            "stop_loss": {"type": "atr", "value": 2},
            "take_profit": {"type": "r", "value": 3},
            "trailing_stop": {"type": "percent", "value": 0.05},
            "max_hold_bars": 48,
        }
    )
    assert s.sides == ("long", "short")
    assert s.short_entry[0].name == "sma_cross_down" and s.short_exit[0].role == "EXIT"
    assert s.exits == Exits(Level("atr", 2.0), Level("r", 3.0), Level("percent", 0.05), 48)
    short = compile_strategy({"side": "short", "entry": [{"name": "sma_cross_down"}]})
    assert short.long_entry == () and short.short_entry[0] == Condition(
        "signal",
        "sma_cross_down",
        (("window_fast", 10), ("window_slow", 50)),
        None,
        "TRIGGER",
        "entry[0]",
    )


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"entry": [{"name": "sma_cross_up"}, {"name": "macd_bullish_cross"}]}, "entry"),
        ({"entry": [{"name": "is_above_sma", "signal_type": "FILTER"}]}, "entry"),
        ({**SEED_001, "stop_loss": {"type": "atr", "value": 2}}, "stop_loss"),
        ({**SEED_001, "entry": [*SEED_001["entry"], {"condition": "close > open"}]}, "entry[2]"),
    ],
)
def test_seed001_dialect_is_strict(spec, path):
    with pytest.raises(StrategyError) as info:
        compile_strategy(spec, dialect="seed001")
    assert info.value.path.startswith(path)


V2_ERRORS = [
    ({"side": "sideways"}, "side"),
    ({"short_entry": [{"name": "sma_cross_down"}]}, "short_entry"),
    ({"side": "both"}, "short_entry"),
    ({"stop_loss": {"type": "r", "value": 1}}, "stop_loss.type"),
    ({"stop_loss": {"type": "percent", "value": 5}}, "stop_loss.value"),
    ({"take_profit": {"type": "atr", "value": -1}}, "take_profit.value"),
    ({"trailing_stop": {"type": "atr"}}, "trailing_stop.value"),
    ({"trailing_stop": {"type": "atr", "value": 1, "x": 1}}, "trailing_stop"),
    ({"max_hold_bars": 0}, "max_hold_bars"),
    ({"leverage": 2}, "leverage"),
    ({"entry": [{"name": "sma_cross_up"}] * 51}, "entry"),
]


@pytest.mark.parametrize(("extra", "path"), V2_ERRORS)
def test_v2_errors_name_the_path(extra, path):
    spec = {"entry": [{"name": "sma_cross_up"}], **extra}
    with pytest.raises(StrategyError) as info:
        compile_strategy(spec)
    assert info.value.path == path and info.value.message


def mutate(path_fn):
    spec = copy.deepcopy(SEED_001)
    path_fn(spec)
    return spec


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda s: s.pop("entry"), "entry"),
        (lambda s: s.update(entry=[]), "entry"),
        (lambda s: s["entry"][0].update(name="nope"), "entry[0].name"),
        (lambda s: s["entry"][1]["params"].update(depth=3), "entry[1].params.depth"),
        (lambda s: s["entry"][1]["params"].update(window=2.5), "entry[1].params.window"),
        (lambda s: s["entry"][1]["params"].update(window="50"), "entry[1].params.window"),
        (lambda s: s["entry"][1]["params"].update(window=True), "entry[1].params.window"),
        (lambda s: s["entry"][1]["params"].update(window=1), "entry[1].params.window"),
        (lambda s: s["entry"][1]["params"].update(window=10**6), "entry[1].params.window"),
        (lambda s: s["entry"][0]["params"].update(window_fast=30), "entry[0].params.window_fast"),
        (lambda s: s["entry"][0].update(signal_type="FILTER"), "entry[0].signal_type"),
        (lambda s: s["entry"][0].update(signal_type="SOMETIMES"), "entry[0].signal_type"),
        (lambda s: s["entry"][0].update(timeframe="7m"), "entry[0].timeframe"),
        (lambda s: s["entry"][0].update(colour="red"), "entry[0].colour"),
        (lambda s: s.update(atr_period=14), "atr_period"),
        (lambda s: s.update(atr_multiplier=2.0), "atr_multiplier"),
        (lambda s: s["entry"][1]["params"].update(atr_period=14), "entry[1].params.atr_period"),
        (
            lambda s: s.update(exit=[{"name": "is_below_sma", "signal_type": "FILTER"}]),
            "exit[0].signal_type",
        ),
        (lambda s: s.update(exit=[{"name": "bogus"}]), "exit[0].name"),
        (lambda s: s.update(exit="nope"), "exit"),
        (lambda s: s.update(entry=[7]), "entry[0]"),
    ],
)
def test_errors_name_the_path(change, path):
    with pytest.raises(StrategyError) as info:
        compile_strategy(mutate(change))
    assert info.value.path == path
    assert info.value.message


def test_strategy_error_is_value_error_and_pickles():
    err = StrategyError("entry[0].name", "unknown")
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, ValueError) and again.path == "entry[0].name"


def test_describe_signals_is_json_ready_and_complete():
    catalog = describe_signals()
    json.dumps(catalog)
    names = {s["name"] for s in catalog}
    assert {
        "macd_bullish_cross",
        "macd_bearish_cross",
        "is_above_sma",
        "is_below_sma",
        "sma_cross_up",
        "sma_cross_down",
    } <= names
    macd = next(s for s in catalog if s["name"] == "macd_bullish_cross")
    assert macd["params"]["window_slow"]["default"] == 26 and "TRIGGER" in macd["roles"]


def test_expressions_compile_as_conditions():
    s = compile_strategy(
        {
            "entry": [
                "rsi(14) < 30",
                {"condition": "close > sma(200)", "signal_type": "FILTER", "timeframe": "4h"},
            ],
            "exit": [{"condition": "cross_above(rsi(14), 70)"}],
        }
    )
    first, second = s.long_entry
    assert (first.kind, first.name, first.role) == ("expr", "rsi(14) < 30", "TRIGGER")
    assert (second.role, second.timeframe) == ("FILTER", "4h")
    assert s.long_exit[0].role == "EXIT"


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("rsi(14) <", 9),
        ("nosuch(3) > 1", 0),
        ("atr(close, 14) > 1", 0),
        ("close + 1", 0),
        ("__import__('os')", 11),  # the quote: strings are no part of the grammar
    ],
)
def test_bad_expressions_name_path_and_position(text, position):
    with pytest.raises(StrategyError) as info:
        compile_strategy({"entry": [{"condition": text}]})
    assert info.value.path == "entry[0].condition"
    assert f"at position {position}" in info.value.message


def test_type_selects_a_score_strategy_only_in_v2():
    spec = {
        "type": "score",
        "conditions": [{"name": "up", "when": "close > open", "score": 1}],
        "threshold": 1,
        "risk": {"stop": {"type": "percent", "value": 0.01}},
    }
    s = compile_strategy(spec)
    assert s.name == "strategy" and s.score is not None and s.score.names == ("up",)
    assert s.exits == Exits(stop_loss=Level("percent", 0.01), take_profit=Level("r", 3.0))
    with pytest.raises(StrategyError) as err:
        compile_strategy(spec, dialect="seed001")
    assert err.value.path == "type"
    with pytest.raises(StrategyError) as err:
        compile_strategy({**spec, "entry": ["close > open"]})
    assert err.value.path == "entry"  # rule fields do not mix into a score strategy
