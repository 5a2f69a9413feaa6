"""run_job: the one way in routes each kind of run to its pipeline and reports its stages."""

import numpy as np
import pytest

from engine import Cancelled, RunSpec, Stage, SweepSpec, TemplateSpec, run_job
from engine.annualisation import annualisation
from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import BarStore
from engine.execution import Execution
from engine.run import run_backtest
from engine.strategy.compile import compile_strategy
from engine.strategy.lookback import warmup_bars
from engine.sweep import expand, run_sweep
from engine.templates import compile_template
from engine.templates.run import run_template

START = 1_704_067_200_000_000_000  # 2024-01-01
MINUTE = 60 * 10**9
DEMO = DEMO_SYMBOLS[1]
SYMBOL = DEMO.name
STRATEGY = {
    "entry": [{"name": "sma_cross_up", "params": {"window_fast": 5, "window_slow": 20}}],
    "exit": [{"name": "sma_cross_down", "params": {"window_fast": 5, "window_slow": 20}}],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> BarStore:
    """3,000 demo minutes of one symbol."""
    store = BarStore(tmp_path_factory.mktemp("bars"))
    bars = generate_bars(DEMO, START, 3_000, np.random.default_rng(5))
    store.write(SYMBOL, bars, aliases=[], synthetic=True, description="demo")
    return store


def _spec(**kw) -> RunSpec:
    base = {
        "symbols": (SYMBOL,), "resolution": "1m", "start_ns": START + 500 * MINUTE,
        "end_ns": START + 2_999 * MINUTE, "capital": 10_000.0, "execution": Execution(),
        "strategy": STRATEGY, "chunk_bars": 400,
    }  # fmt: skip
    return RunSpec(**{**base, **kw})


def _bars(store: BarStore, spec: RunSpec, strategies) -> dict:
    lookback = max((warmup_bars(s, "1m", spec.execution.atr_period) for s in strategies), default=0)
    return {SYMBOL: store.load_with_warmup(SYMBOL, "1m", spec.start_ns, spec.end_ns, lookback)}


def test_a_plain_run_is_run_backtest_on_the_bars_with_their_warm_up(store) -> None:
    spec = _spec()
    stages: list[Stage] = []
    lines: list[str] = []
    got = run_job(spec, store, on_progress=lambda s: stages.append(s) or True, on_log=lines.append)
    strategy = compile_strategy(STRATEGY)
    bars = _bars(store, spec, [strategy])
    annual = annualisation("1m", bars[SYMBOL].ts)
    want = run_backtest(
        bars, strategy, spec.execution, spec.capital, spec.start_ns, resolution="1m",
        periods_per_year=annual.periods_per_year,
    )  # fmt: skip
    assert got.output.round_trips == want.round_trips and got.output.metrics == want.metrics
    assert got.annualisation == annual and got.sweep is None and got.score is None
    phases = [s.phase for s in stages]
    assert phases[:2] == ["load", "prepare"] and phases[-1] == "metrics"
    assert set(phases[2:-1]) == {"simulate"} and len(phases) > 4  # chunks of 400 bars
    assert lines[0] == f"loaded {len(bars[SYMBOL])} 1m bars of {SYMBOL}"
    assert [str(x) for x in lines[1:]] == [str(x) for x in want.logs]


def test_a_sweep_ranks_its_variants_like_run_sweep(store) -> None:
    grid = {"entry[0].params.window_fast": [3, 5, 8]}
    spec = _spec(sweep=SweepSpec(grid, "total_return"))
    got = run_job(spec, store)
    variants = expand(STRATEGY, grid)
    bars = _bars(store, spec, [v.strategy for v in variants])
    ppy = annualisation("1m", bars[SYMBOL].ts).periods_per_year
    rows, best = run_sweep(
        bars, variants, spec.execution, spec.capital, spec.start_ns, rank_by="total_return",
        resolution="1m", periods_per_year=ppy,
    )  # fmt: skip
    assert got.sweep is not None and got.sweep.rows == rows
    assert got.output.metrics == best.metrics


def test_an_order_plan_template_runs_on_its_kernel(store) -> None:
    params = {"grid_levels": 6, "upper_price": 46_000, "lower_price": 40_000}
    fees = Execution(fee_model="fixed_bps", fee_bps=7.0)  # maker and taker alike
    spec = _spec(strategy=None, template=TemplateSpec("tpl_grid", params), execution=fees)
    got = run_job(spec, store)
    plan = compile_template("tpl_grid", params, symbols=(SYMBOL,))
    bars = _bars(store, spec, [])
    ppy = annualisation("1m", bars[SYMBOL].ts).periods_per_year
    want = run_template(
        bars, plan, spec.capital, spec.start_ns, maker_bps=7.0, taker_bps=7.0,
        periods_per_year=ppy,
    )  # fmt: skip
    assert got.output.trades == want.trades and got.output.metrics == want.metrics


def test_a_false_from_on_progress_cancels(store) -> None:
    seen: list[str] = []

    def stop_while_simulating(stage: Stage) -> bool:
        seen.append(stage.phase)
        return stage.phase != "simulate"

    with pytest.raises(Cancelled):
        run_job(_spec(), store, on_progress=stop_while_simulating)
    assert seen == ["load", "prepare", "simulate"]


def test_the_spec_from_a_job_dict() -> None:
    job = {
        "symbols": [SYMBOL], "resolution": "1h", "start_ns": 5, "end_ns": 9, "capital": 100,
        "execution": {"fee_bps": 2.0}, "template": "tpl_dca", "template_params": {"amount": 5},
        "timezone": "Asia/Kolkata", "risk_free_rate": 0.04,
    }  # fmt: skip
    spec = RunSpec.from_dict(job)
    assert spec.template is not None and spec.template.name == "tpl_dca"
    assert spec.strategy is None and spec.sweep is None
    assert (spec.symbols, spec.timezone, spec.risk_free_rate) == ((SYMBOL,), "Asia/Kolkata", 0.04)
    assert spec.execution.fee_bps == 2.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategy": None}, "either a strategy or a template"),
        ({"symbols": ()}, "at least one symbol"),
        ({"end_ns": START}, "ends before it starts"),
        ({"capital": 0.0}, "capital must be positive"),
    ],
)
def test_a_spec_that_cannot_run_is_refused(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(**change)
