"""Parameter sweeps: many variants of one strategy on the same bars, ranked by a metric.

A sweep is a strategy object plus a grid: JSON paths into that object, each with a list of
values, e.g. ``{"entry[0].params.window_fast": [5, 10, 20], "stop_loss.value": [1.5, 2.0]}``.
Every combination is one variant (at most MAX_VARIANTS). The bars are loaded once by the caller
and every indicator is computed once for all variants that use it with the same params (the
indicator cache of engine.strategy.indicators spans the whole sweep). Each variant runs through
run_backtest exactly as it would alone, so its metrics equal a run of that variant by itself.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.data.store import Bars
from engine.errors import PathError
from engine.execution import Execution
from engine.run import BacktestOutput, Cancelled, Progress, run_backtest
from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.form import Strategy
from engine.strategy.indicators import shared_indicators

MAX_VARIANTS = 10_000
LOWER_IS_BETTER = {"max_drawdown", "max_drawdown_duration", "volatility_annualized"}
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
) -> tuple[list[dict], BacktestOutput]:
    """Run every variant; return the ranked rows and the best variant's full output."""
    rows: list[dict] = []
    best: tuple[tuple, BacktestOutput] | None = None
    key = rank_key(rank_by)
    with shared_indicators():
        for done, v in enumerate(variants, start=1):
            out = run_backtest(
                bars, v.strategy, execution, capital, trade_start_ns,
                chunk_bars=1 << 62, resolution=resolution, periods_per_year=periods_per_year,
            )  # fmt: skip
            row = {"number": v.number, "params": v.params, "metrics": out.metrics}
            rows.append(row)
            if best is None or key(row) < best[0]:
                best = (key(row), out)
            if on_progress is not None and on_progress(Progress(done, len(variants), {})) is False:
                raise Cancelled()
    rows.sort(key=key)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    assert best is not None
    return rows, best[1]
