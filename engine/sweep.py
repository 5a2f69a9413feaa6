"""Parameter sweeps: many variants of one strategy on the same bars, ranked by a metric.

A sweep is a strategy object plus a grid: JSON paths into that object, each with a list of
values, e.g. ``{"entry[0].params.window_fast": [5, 10, 20], "stop_loss.value": [1.5, 2.0]}``.
Every combination is one variant (at most MAX_VARIANTS). The bars are loaded once by the caller
and every indicator is computed once for all variants that use it with the same params (the
indicator cache of engine.strategy.indicators spans the whole sweep). The strategy-independent
set-up (float64 bars, clock, volatility scale, fee table) is built once too, and the execution,
capital and periods_per_year are checked once (each variant checks only its own exits).
Variants run on a pool of threads (os.cpu_count() by default; the kernels release the GIL),
each through
engine.run.run_metrics: the same steps as run_backtest without the result lists, so its
metrics equal a run of that variant by itself on the same bars. The sweep's bars carry the
longest warm-up of all its variants; a lone run of a variant that needs less warm-up seeds its
exponential averages with less history, so its figures can differ in the last digits (about
1e-10 relative). Rows come back in variant order whatever the
threads do; the best variant is then run once more through run_backtest for its full output.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import re
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from engine.data.store import Bars
from engine.errors import PathError
from engine.execution import Execution
from engine.run import (
    BacktestOutput,
    Cancelled,
    Progress,
    check_run_inputs,
    prepare_frame,
    run_backtest,
    run_metrics,
)
from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.form import Strategy
from engine.strategy.fuse import general_path
from engine.strategy.indicators import shared_indicators

MAX_VARIANTS = 10_000
PROGRESS_BATCH = 2  # progress after every 2 x workers variants
IN_FLIGHT = 4  # variants queued ahead per worker thread
LOWER_IS_BETTER = {
    "max_drawdown", "max_drawdown_duration", "volatility_annualized", "avg_drawdown",
    "avg_drawdown_duration", "max_drawdown_duration_days", "avg_drawdown_duration_days",
    "commissions",
}  # fmt: skip
_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*")
_STEP = re.compile(r"([A-Za-z_]\w*)|\[(\d+)\]")


class SweepError(PathError):
    """A fault in a sweep, located by its path (`sweep.grid.entry[0].params.window`)."""


@dataclass(frozen=True)
class Variant:
    """One combination of the grid: its values by path and its compiled strategy."""

    number: int
    params: dict[str, Any]
    strategy: Strategy


def _steps(path: str) -> list[str | int]:
    if not _PATH.fullmatch(path):
        raise ValueError("not a path like entry[0].params.window")
    return [m.group(1) if m.group(1) else int(m.group(2)) for m in _STEP.finditer(path)]


def set_path(obj: dict, path: str, value: Any) -> None:
    """Set `value` at `path` in a strategy object, creating missing objects (not list items)."""
    steps = _steps(path)
    node: Any = obj
    for step, after in itertools.pairwise(steps):
        if isinstance(node, dict) and step not in node and isinstance(after, str):
            node[step] = {}  # e.g. a signal without "params" yet
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"{step!r} does not exist in the strategy") from exc
    leaf = steps[-1]
    if (isinstance(node, dict) and isinstance(leaf, str)) or (
        isinstance(node, list) and isinstance(leaf, int) and leaf < len(node)
    ):
        node[leaf] = value
    else:
        raise ValueError(f"{leaf!r} cannot be set here")


def expand(spec: dict, grid: dict[str, list], *, dialect: str = "v2") -> list[Variant]:
    """Compile every combination of the grid; SweepError names the first faulty path."""
    if not isinstance(grid, dict) or not grid:
        raise SweepError("sweep.grid", "must map at least one path to a list of values")
    for path, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"sweep.grid.{path}", "must be a non-empty list of values")
    total = math.prod(len(v) for v in grid.values())
    if total > MAX_VARIANTS:
        raise SweepError("sweep.grid", f"{total} variants; at most {MAX_VARIANTS}")
    paths = list(grid)
    variants = []
    for number, combo in enumerate(itertools.product(*grid.values()), start=1):
        obj = copy.deepcopy(spec)
        for path, value in zip(paths, combo, strict=True):
            try:
                set_path(obj, path, value)
            except ValueError as exc:
                raise SweepError(f"sweep.grid.{path}", str(exc)) from exc
        try:
            strategy = compile_strategy(obj, dialect=dialect)
        except StrategyError as exc:
            bad = dict(zip(paths, combo, strict=True))
            raise SweepError(f"strategy.{exc.path}", f"{exc.message} (variant {bad})") from exc
        variants.append(Variant(number, dict(zip(paths, combo, strict=True)), strategy))
    return variants


def shard_bounds(count: int, size: int) -> list[tuple[int, int]]:
    """Split `count` variants into consecutive ranges [lo, hi) of at most `size` each."""
    if size < 1:
        raise ValueError("a shard holds at least one variant")
    return [(lo, min(lo + size, count)) for lo in range(0, count, size)]


def shard_variants(variants: list[Variant], bounds: Sequence[int] | None) -> list[Variant]:
    """The variants [lo, hi) of an expanded sweep (all of them when `bounds` is None).

    Expansion is deterministic, so a shard re-expands the whole grid and takes its slice;
    variant numbers stay those of the whole sweep.
    """
    if bounds is None:
        return variants
    lo, hi = bounds
    if not 0 <= lo < hi <= len(variants):
        raise SweepError("sweep", f"variant range [{lo}, {hi}) is outside the sweep's "
                         f"{len(variants)} variants")  # fmt: skip
    return variants[lo:hi]


def rank_key(metric: str) -> Callable[[dict], tuple]:
    """Sort key: best first; undefined (None) values last, then by variant number."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

    def key(row: dict) -> tuple:
        value = row["metrics"].get(metric)
        return (value is None, sign * value if value is not None else 0.0, row["number"])

    return key


def run_sweep(
    bars: dict[str, Bars],
    variants: list[Variant],
    execution: Execution,
    capital: float,
    trade_start_ns: int,
    *,
    rank_by: str = "sharpe_ratio",
    on_progress: Callable[[Progress], bool] | None = None,
    resolution: str | None = None,
    periods_per_year: float | None = None,
    workers: int | None = None,
    risk_free_rate: float = 0.0,
    benchmark: Bars | None = None,
) -> tuple[list[dict], BacktestOutput]:
    """Run every variant on `workers` threads; return the ranked rows and the best one's output."""
    if not variants:
        raise SweepError("sweep.grid", "no variants to run")
    key = rank_key(rank_by)
    common = {
        "resolution": resolution, "periods_per_year": periods_per_year,
        "risk_free_rate": risk_free_rate, "benchmark": benchmark,
    }  # fmt: skip
    check_run_inputs(bars, execution, capital, periods_per_year)  # once: variants share them
    with shared_indicators(), general_path():  # variants share their indicators: no fusing
        frame = prepare_frame(
            bars, execution, trade_start_ns, resolution, periods_per_year,
            risk_free_rate=risk_free_rate, benchmark=benchmark,
        )  # fmt: skip

        def one(v: Variant) -> dict:
            """Return one variant's row: its number, params and metrics."""
            metrics = run_metrics(
                bars, v.strategy, execution, capital, trade_start_ns, frame=frame, checked=True,
                **common,
            )  # fmt: skip
            return {"number": v.number, "params": v.params, "metrics": metrics}

        rows = _run_all(variants, one, on_progress, workers or os.cpu_count() or 1)
        rows.sort(key=key)
        for rank, row in enumerate(rows, start=1):
            row["rank"] = rank
        best = next(v for v in variants if v.number == rows[0]["number"])
        out = run_backtest(
            bars, best.strategy, execution, capital, trade_start_ns, chunk_bars=1 << 62, **common
        )
    return rows, out


def _run_all(
    variants: list[Variant],
    one: Callable[[Variant], dict],
    on_progress: Callable[[Progress], bool] | None,
    workers: int,
) -> list[dict]:
    """Return one(v) for every variant, in order, computed on up to `workers` threads.

    The calling thread collects results in variant order and reports progress after every
    batch of PROGRESS_BATCH * workers variants (and at the end); a False from on_progress
    cancels the variants not started yet and raises Cancelled.
    """
    total = len(variants)
    workers = max(1, min(workers, total))
    batch = PROGRESS_BATCH * workers
    rows: list[dict] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="sweep") as pool:
        pending: deque[Future[dict]] = deque()
        queued = 0
        for done in range(1, total + 1):
            while queued < total and len(pending) < IN_FLIGHT * workers:
                pending.append(pool.submit(one, variants[queued]))
                queued += 1
            rows.append(pending.popleft().result())
            if on_progress is None or (done % batch and done < total):
                continue
            if on_progress(Progress(done, total, {})) is False:
                for f in pending:
                    f.cancel()
                raise Cancelled()
    return rows
