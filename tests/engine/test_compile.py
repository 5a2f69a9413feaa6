"""compile_strategy: the seed 001 example compiles; each fault names its JSON path."""

import copy
import json
import pickle

import pytest

from engine.strategy.catalog import describe_signals
from engine.strategy.compile import StrategyError, compile_strategy

SEED_001 = json.loads(
    '{"name": "ETH Strategy", "asset": "ETH", "entry": [{"name": "macd_bullish_cross", '
    '"timeframe": "1h", "signal_type": "TRIGGER", "params": {"window_fast": 12, "window_slow": '
    '26, "window_sign": 9}}, {"name": "is_above_sma", "timeframe": "1h", "params": {"window": '
    '50}, "signal_type": "FILTER"}], "exit": []}'
)


def test_seed_001_example_compiles_and_pickles():
    s = compile_strategy(SEED_001)
    assert s.name == "ETH Strategy" and s.asset == "ETH" and s.exit == ()
    assert [(x.name, x.role, x.timeframe) for x in s.entry] == [
        ("macd_bullish_cross", "TRIGGER", "1h"),
        ("is_above_sma", "FILTER", "1h"),
    ]
    assert s.entry[0].param_dict == {"window_fast": 12, "window_slow": 26, "window_sign": 9}
    assert pickle.loads(pickle.dumps(s)) == s


def test_defaults_fill_in_and_entry_default_role_is_trigger():
    s = compile_strategy(
        {"entry": [{"name": "sma_cross_up"}], "exit": [{"name": "sma_cross_down"}]}
    )
    assert s.entry[0].role == "TRIGGER" and s.exit[0].role == "EXIT"
    assert s.entry[0].param_dict == {"window_fast": 10, "window_slow": 50}


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
        (lambda s: s.update(entry=["x"]), "entry[0]"),
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
