"""Strategies: the internal form, its compiler from each dialect, the signal catalog, evaluation.

Loaded on first use (PEP 562).
"""

from engine.exports import lazy

_EXPORTS = {
    "Condition": "engine.strategy.form",
    "Exits": "engine.strategy.form",
    "Level": "engine.strategy.form",
    "Strategy": "engine.strategy.form",
    "StrategyError": "engine.strategy.compile",
    "compile_strategy": "engine.strategy.compile",
    "describe_signals": "engine.strategy.catalog",
    "timeframe_problem": "engine.strategy.timeframe",
    "warmup_bars": "engine.strategy.lookback",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy(__name__, _EXPORTS)
