"""Out-of-range indicator params in expressions are refused when a strategy compiles.

Before, `sma(0)`, `ema(-1)`, `ema(1e308)`, `rsi(0)`, `sma(2.5)` and `shift(close, 99999999999)`
passed the checks and the run failed later with a generic engine_error (issue 14, defect 7).
"""

import pytest

from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.indicators import INDICATORS


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        ("close > sma(0)", "sma.window must be between"),
        ("close > sma(-5)", "sma.window must be between"),
        ("ema(-1) > close", "ema.window must be between"),
        ("close > sma(1e30)", "sma.window must be between"),
        ("close > ema(1e308)", "ema.window must be between"),
        ("rsi(0) < 30", "rsi.window must be between"),
        ("close > sma(2.5)", "sma.window must be an integer"),
        ("close > sma(window=0)", "sma.window must be between"),
        ("shift(close, 99999999999) > 1", "shift() needs a whole number from 1 to"),
    ],
)
def test_out_of_range_params_fail_at_compile(condition: str, why: str) -> None:
    with pytest.raises(StrategyError) as info:
        compile_strategy({"entry": [{"condition": condition}]})
    assert info.value.path == "entry[0].condition"
    assert why in info.value.message, info.value.message


def test_bounds_come_from_the_registry() -> None:
    window = dict(INDICATORS["sma"].params)["window"]
    ok = f"close > sma({window.maximum})"
    compile_strategy({"entry": [{"condition": ok}]})
    with pytest.raises(StrategyError):
        compile_strategy({"entry": [{"condition": f"close > sma({window.maximum + 1})"}]})


def test_score_strategy_variables_are_checked_too() -> None:
    spec = {
        "type": "score", "variables": {"fast": "ema(-1)"},
        "conditions": [{"name": "x", "when": "fast > close", "score": 1}], "threshold": 1,
        "risk": {"stop": {"type": "percent", "value": 0.01}},
    }  # fmt: skip
    with pytest.raises(StrategyError) as info:
        compile_strategy(spec)
    assert "ema.window must be between" in info.value.message
