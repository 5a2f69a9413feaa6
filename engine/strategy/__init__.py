"""Strategies: the internal form, its compiler from each dialect, the signal catalog, evaluation.

Loaded on first use (PEP 562).
"""

from importlib import import_module
from typing import Any

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


def __getattr__(name: str) -> Any:
    """Import an exported name's module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names."""
    return __all__
