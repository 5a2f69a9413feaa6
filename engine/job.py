"""The engine's one way in: run_job(spec, source) runs any kind of run and returns one result.

A RunSpec says what to run (a strategy, a template or a sweep of a strategy), on which symbols,
resolution, window and time zone, with which execution settings and capital; a BarSource gives
the bars (engine.data.store.BarStore is one). run_job loads the bars with the warm-up every
strategy of the run needs, decides the annualisation, runs the plain loop, the template kernel
or the sweep, and reports stages through ``on_progress`` (returning False cancels: Cancelled is
raised) and the run's log lines through ``on_log``. The caller only turns the RunResult into
its wire format.

    >>> spec = RunSpec.from_dict({"symbols": ["BTCUSDT"], "resolution": "1h", ...})
    >>> result = run_job(spec, BarStore(path), on_progress=report, on_log=print)
    >>> result.output.metrics["sharpe_ratio"], result.annualisation.periods_per_year
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engine.annualisation import Annualisation, annualisation
from engine.data.bars import Bars
from engine.execution import Execution
from engine.output import BacktestOutput, Cancelled, LogLine
from engine.output import Progress as ChunkProgress

__all__ = [
    "BarSource", "Cancelled", "RunResult", "RunSpec", "Stage", "SweepResult", "SweepSpec",
    "TemplateSpec", "run_job", "warm_up",
]  # fmt: skip


@dataclass(frozen=True)
class TemplateSpec:
    """A template of the catalog (engine.templates) with its params."""

    name: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class SweepSpec:
    """A grid of strategy paths, the metric ranking its variants, and optionally a shard of it."""

    grid: Mapping[str, list]
    rank_by: str = "sharpe_ratio"
    variant_range: tuple[int, int] | None = None  # [lo, hi) of the expanded variants


@dataclass(frozen=True)
class RunSpec:
    """Everything a run needs except its bars: what to run, on what, and how."""

    symbols: tuple[str, ...]
    resolution: str
    start_ns: int
    end_ns: int
    capital: float
    execution: Execution
    strategy: Mapping[str, Any] | None = None  # the strategy object in `dialect`'s form
    dialect: str = "v2"
    template: TemplateSpec | None = None
    sweep: SweepSpec | None = None
    timezone: str = "UTC"  # the day, week and month boundaries of such bars
    periods_per_year: float | None = None
    risk_free_rate: float = 0.0
    benchmark: str | None = None  # a symbol the run compares with (alpha, beta)
    chunk_bars: int = 20_000

    def __post_init__(self) -> None:
        """Check the spec is one kind of run with a window and capital."""
        kinds = (self.template is not None) + (self.strategy is not None)
        if kinds != 1:
            raise ValueError("a run has either a strategy or a template")
        if self.sweep is not None and self.strategy is None:
            raise ValueError("a sweep varies a strategy")
        if not self.symbols:
            raise ValueError("at least one symbol is required")
        if self.end_ns < self.start_ns:
            raise ValueError("the window ends before it starts")
        if not self.capital > 0 or self.chunk_bars < 1:
            raise ValueError("capital must be positive and chunk_bars at least 1")

    @classmethod
    def from_dict(cls, job: Mapping[str, Any]) -> RunSpec:
        """Build a spec from a job's JSON form (server.translate.job_from_config)."""
        sweep = job.get("sweep")
        template = job.get("template")
        bounds = job.get("variant_range")
        return cls(
            symbols=tuple(job["symbols"]),
            resolution=job["resolution"],
            start_ns=int(job["start_ns"]),
            end_ns=int(job["end_ns"]),
            capital=float(job["capital"]),
            execution=Execution.from_dict(job["execution"]),
            strategy=None if template else job["strategy"],
            dialect=job.get("dialect") or "v2",
            template=TemplateSpec(template, job.get("template_params") or {}) if template else None,
            sweep=None if not sweep else SweepSpec(
                sweep["grid"], sweep["rank_by"], tuple(bounds) if bounds else None
            ),
            timezone=job.get("timezone") or "UTC",
            periods_per_year=job.get("periods_per_year"),
            risk_free_rate=float(job.get("risk_free_rate") or 0.0),
            benchmark=job.get("benchmark"),
            chunk_bars=int(job.get("chunk_bars") or 20_000),
        )  # fmt: skip


class BarSource(Protocol):
    """Where a run's bars come from (engine.data.store.BarStore)."""

    def load(self, symbol: str, resolution: str, start_ns: int, end_ns: int, tz: str) -> Bars:
        """Bars opening in [start_ns, end_ns]."""
        ...

    def load_with_warmup(
        self, symbol: str, resolution: str, start_ns: int, end_ns: int, bars: int, tz: str
    ) -> Bars:
        """The same with `bars` bars of history before start_ns."""
        ...

    def resolve(self, name: str) -> Any:
        """The symbol's catalog entry (its `calendar`), or None."""
        ...


@dataclass(frozen=True)
class Stage:
    """How far a stage of the run is: load, prepare, simulate (with running metrics), metrics."""

    phase: str
    done: int
    total: int
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass
class SweepResult:
    """A sweep's variants ranked best first: rank, number, params and metrics of each."""

    rank_by: str
    rows: list[dict[str, Any]]


@dataclass
class RunResult:
    """A finished run: its output, how it was annualised, and its score or sweep diagnostics."""

    output: BacktestOutput
    annualisation: Annualisation
    score: dict[str, Any] | None = None
    sweep: SweepResult | None = None


OnProgress = Callable[[Stage], bool]
OnLog = Callable[[LogLine], None]


def run_job(
    spec: RunSpec,
    source: BarSource,
    *,
    on_progress: OnProgress | None = None,
    on_log: OnLog | None = None,
) -> RunResult:
    """Run a strategy, a template or a sweep on the source's bars; see the module docstring."""
    report = on_progress or (lambda stage: True)
    say = on_log or (lambda line: None)
    _go(report, Stage("load", 0, 1))
    plan = _plan(spec)
    bars = _load(spec, source, plan.strategies)
    for symbol, b in bars.items():
        say(LogLine(f"loaded {len(b)} {spec.resolution} bars of {symbol}"))
    annual = _annualisation(spec, source, bars)
    _go(report, Stage("prepare", 0, 1))
    if spec.sweep is not None:
        say(LogLine(f"sweep of {len(plan.strategies)} variants, ranked by {spec.sweep.rank_by}"))
    benchmark = _benchmark(spec, source)

    def on_chunk(p: ChunkProgress) -> bool:
        return report(Stage("simulate", p.bars_done, p.bars_total, p.metrics)) is not False

    output, rows = plan.run(spec, bars, annual, benchmark, on_chunk)
    for line in output.logs:  # per-symbol summaries, the account line, liquidations
        say(line)
    _go(report, Stage("metrics", 1, 1))
    result = RunResult(output, annual)
    if rows is not None and spec.sweep is not None:
        result.sweep = SweepResult(spec.sweep.rank_by, rows)
    if len(plan.strategies) == 1 and getattr(plan.strategies[0], "score", None) is not None:
        result.score = _score(plan.strategies[0], bars, output, spec)
    return result


def _go(report: OnProgress, stage: Stage) -> None:
    """Report a stage; raise Cancelled if the caller asks to stop."""
    if report(stage) is False:
        raise Cancelled()


Runner = Callable[..., tuple[BacktestOutput, list[dict] | None]]


@dataclass
class _Plan:
    """What a spec runs: the strategies whose warm-up the bars need, and how to run them."""

    strategies: Sequence[Any]
    run: Runner


def _plan(spec: RunSpec) -> _Plan:
    """Compile the spec's strategy, template or sweep (PathError names a bad path)."""
    from engine.strategy.compile import compile_strategy
    from engine.strategy.form import Strategy

    if spec.sweep is not None:
        from engine.sweep import expand, shard_variants

        assert spec.strategy is not None
        variants = expand(dict(spec.strategy), dict(spec.sweep.grid), dialect=spec.dialect)
        # A shard runs its slice; the bars' warm-up stays the whole sweep's, so its figures are
        # those of the same variants in a one-node run.
        mine = shard_variants(variants, spec.sweep.variant_range)
        return _Plan([v.strategy for v in variants], _sweep_runner(mine))
    if spec.template is not None:
        from engine.templates import compile_template

        plan = compile_template(
            spec.template.name, dict(spec.template.params), symbols=spec.symbols
        )
        if not isinstance(plan, Strategy):
            return _Plan([], _order_plan_runner(plan))
        return _Plan([plan], _strategy_runner(plan))
    assert spec.strategy is not None
    strategy = compile_strategy(dict(spec.strategy), dialect=spec.dialect)
    return _Plan([strategy], _strategy_runner(strategy))


def _common(annual: Annualisation, benchmark: Bars | None, on_chunk: Any) -> dict[str, Any]:
    return {
        "on_progress": on_chunk, "periods_per_year": annual.periods_per_year,
        "risk_free_rate": annual.risk_free_rate, "benchmark": benchmark,
    }  # fmt: skip


def _strategy_runner(strategy: Any) -> Runner:
    def run(spec: RunSpec, bars: dict, annual: Annualisation, benchmark: Any, on_chunk: Any):
        from engine.run import run_backtest

        output = run_backtest(
            bars, strategy, spec.execution, spec.capital, spec.start_ns,
            chunk_bars=spec.chunk_bars, resolution=spec.resolution,
            **_common(annual, benchmark, on_chunk),
        )  # fmt: skip
        return output, None

    return run


def _sweep_runner(variants: list) -> Runner:
    def run(spec: RunSpec, bars: dict, annual: Annualisation, benchmark: Any, on_chunk: Any):
        from engine.sweep import run_sweep

        assert spec.sweep is not None
        rows, output = run_sweep(
            bars, variants, spec.execution, spec.capital, spec.start_ns,
            rank_by=spec.sweep.rank_by, resolution=spec.resolution,
            **_common(annual, benchmark, on_chunk),
        )  # fmt: skip
        return output, rows

    return run


def _order_plan_runner(plan: Any) -> Runner:
    def run(spec: RunSpec, bars: dict, annual: Annualisation, benchmark: Any, on_chunk: Any):
        from engine.fees import fee_table
        from engine.templates.run import run_template

        ex = spec.execution
        table = fee_table(ex.fee_model, ex.fee_bps, ex.fee_tiers, ex.venue)  # its base tier
        output = run_template(
            bars, plan, spec.capital, spec.start_ns, maker_bps=float(table[0, 1] * 1e4),
            taker_bps=float(table[0, 2] * 1e4), chunk_bars=spec.chunk_bars,
            leverage=ex.leverage, maintenance_margin_rate=ex.maintenance_margin_rate,
            **_common(annual, benchmark, on_chunk),
        )  # fmt: skip
        return output, None

    return run


def _load(spec: RunSpec, source: BarSource, strategies: Sequence[Any]) -> dict[str, Bars]:
    """Each symbol's bars in the window, with the longest warm-up any strategy needs."""
    from engine.strategy.lookback import warmup_bars

    lookback = max(
        (warmup_bars(s, spec.resolution, spec.execution.atr_period) for s in strategies),
        default=0,
    )
    window = (spec.resolution, spec.start_ns, spec.end_ns, lookback, spec.timezone)
    return {s: source.load_with_warmup(s, *window) for s in spec.symbols}


def _benchmark(spec: RunSpec, source: BarSource) -> Bars | None:
    """The benchmark symbol's bars over the window, if the run names one."""
    if spec.benchmark is None:
        return None
    window = (spec.resolution, spec.start_ns, spec.end_ns)
    return source.load(spec.benchmark, *window, tz=spec.timezone)


def _annualisation(spec: RunSpec, source: BarSource, bars: dict[str, Bars]) -> Annualisation:
    """The run's own factor, else its bars' (an exchange calendar when every symbol has one)."""
    infos = [source.resolve(s) for s in bars]
    exchange = bool(infos) and all(i is not None and i.calendar == "exchange" for i in infos)
    ts = np.asarray(next(iter(bars.values())).ts)
    return annualisation(
        spec.resolution, ts, "exchange" if exchange else "24/7", spec.periods_per_year,
        spec.risk_free_rate,
    )  # fmt: skip


def _score(strategy: Any, bars: dict[str, Bars], output: BacktestOutput, spec: RunSpec) -> dict:
    """Seed 003's view of a score strategy's run: R summary, condition and score shares."""
    from engine.diagnostics import r_summary, score_diagnostics

    diag = score_diagnostics(
        strategy, bars, output.round_trips, spec.start_ns, fill=spec.execution.fill
    )
    return {"summary": r_summary(output.round_trips), **diag}


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel a run may call."""
    from engine.run import warm_up as warm_up_runs
    from engine.templates.run import warm_up as warm_up_templates

    warm_up_runs()
    warm_up_templates()
