"""barstream's engine: pure, synchronous backtesting on numpy arrays and numba kernels.

The way in is ``run_job(RunSpec, source)`` (engine.job). The other names are what the server
needs around it: the bar store and import, strategy and template checks and catalogs, sweeps'
expansion and ranking. They load on first use (PEP 562), so importing the package is cheap.
"""

from engine.exports import lazy

_EXPORTS = {
    # the entry point
    "BarSource": "engine.job",
    "Cancelled": "engine.job",
    "RunResult": "engine.job",
    "RunSpec": "engine.job",
    "Stage": "engine.job",
    "SweepResult": "engine.job",
    "SweepSpec": "engine.job",
    "TemplateSpec": "engine.job",
    "run_job": "engine.job",
    "warm_up": "engine.job",
    "LogLine": "engine.output",
    "Table": "engine.output",
    "Execution": "engine.execution",
    "PathError": "engine.errors",
    # checks and catalogs a request is validated against before it is queued
    "StrategyError": "engine.strategy.compile",
    "compile_strategy": "engine.strategy.compile",
    "describe_signals": "engine.strategy.catalog",
    "timeframe_problem": "engine.strategy.timeframe",
    "TEMPLATES": "engine.templates",
    "TemplateError": "engine.templates",
    "compile_template": "engine.templates",
    "describe_templates": "engine.templates",
    "SweepError": "engine.sweep",
    "expand": "engine.sweep",
    "rank_key": "engine.sweep",
    "shard_bounds": "engine.sweep",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy(__name__, _EXPORTS)
