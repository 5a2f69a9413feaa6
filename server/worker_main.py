"""The body of a pool worker process: compile kernels once, then run jobs sent over a pipe."""

import logging
import os
import signal
import time
import traceback
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from protocol.results import COUNT_METRICS
from server.messages import (
    Cancel,
    Cancelled,
    Done,
    Failed,
    Job,
    Log,
    Progress,
    Ready,
    Stop,
)

_NS = 1_000_000_000


def _iso_ns(ns: int) -> str:
    return (
        datetime.fromtimestamp(ns / _NS, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _wire(output: Any) -> dict[str, Any]:
    """Turn an engine output into the JSON-ready results body (timestamps as ISO 8601)."""

    def conv(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            row = dict(row)
            for k in keys:
                if row.get(k) is not None:
                    row[k] = _iso_ns(int(row[k]))
            out.append(row)
        return out

    return {
        "metrics": _counts_as_ints(output.metrics),
        "equity": conv(output.equity, ("timestamp",)),
        "trades": conv(output.trades, ("timestamp",)),
        "round_trips": conv(output.round_trips, ("entry_time", "exit_time")),
        "open_positions": conv(getattr(output, "open_positions", []), ("entry_time",)),
        "exposure": conv(output.exposure, ("timestamp",)),
        "bars": output.bars,
        "period": {k: _iso_ns(int(v)) for k, v in getattr(output, "period", {}).items()},
        "returns_by_month": getattr(output, "returns_by_month", []),
        "returns_by_year": getattr(output, "returns_by_year", []),
    }


def _counts_as_ints(metrics: dict[str, Any]) -> dict[str, Any]:
    """Counts are integers on the wire (DESIGN §7); the engine keeps every metric a float."""
    return {k: int(v) if k in COUNT_METRICS and v is not None else v for k, v in metrics.items()}


_STORES: dict[str, Any] = {}


def _store(path: str) -> Any:
    """One BarStore per data directory per worker, so memory maps are shared across runs."""
    from engine.data.store import BarStore

    if path not in _STORES:
        _STORES[path] = BarStore(path)
    return _STORES[path]


def _annualisation(store: Any, bars: dict[str, Any], job: dict[str, Any]) -> Any:
    """The run's annualisation: its own factor, else its bars' (an exchange calendar when every
    symbol trades on one)."""
    from engine.annualisation import annualisation

    infos = [store.resolve(s) for s in bars]
    exchange = bool(infos) and all(i is not None and i.calendar == "exchange" for i in infos)
    return annualisation(
        job["resolution"], next(iter(bars.values())).ts, "exchange" if exchange else "24/7",
        job.get("periods_per_year"), float(job.get("risk_free_rate") or 0.0),
    )  # fmt: skip


class _Cancelled(Exception):
    pass


SWEEP_METRICS = (
    "total_return",
    "irr_annualized",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "expectancy",
    "trade_count",
)


def _sweep_rows(rows: list[dict], rank_by: str) -> list[dict]:
    """The ranking as sent: rank, variant number, its grid values and the key metrics."""
    keep = (*SWEEP_METRICS, rank_by) if rank_by not in SWEEP_METRICS else SWEEP_METRICS
    return [
        {"rank": r["rank"], "variant": r["number"], "params": r["params"],
         "metrics": {k: r["metrics"].get(k) for k in keep}}
        for r in rows
    ]  # fmt: skip


def _score(strategy: Any, bars: dict[str, Any], output: Any, job: dict[str, Any], ex: Any) -> dict:
    """Seed 003's view of a score strategy's run: R summary, condition and score shares, trades."""
    from engine.diagnostics import r_summary, score_diagnostics

    diag = score_diagnostics(strategy, bars, output.round_trips, job["start_ns"], fill=ex.fill)
    return {"summary": r_summary(output.round_trips), **diag}


def _template_plan(job: dict[str, Any]) -> Any:
    """The compiled template of a template run (a Strategy or an order plan), else None."""
    if not job.get("template"):
        return None
    from engine.templates import compile_template

    return compile_template(job["template"], job["template_params"], symbols=job["symbols"])


def _maker_taker_bps(execution: Any) -> tuple[float, float]:
    """Maker and taker fees in bps for template order plans: the fee model's base tier."""
    from engine.fees import fee_table

    table = fee_table(execution.fee_model, execution.fee_bps, execution.fee_tiers, execution.venue)
    return float(table[0, 1] * 1e4), float(table[0, 2] * 1e4)


def _run(conn: Connection, job: dict[str, Any]) -> None:
    from engine.execution import Execution
    from engine.run import Cancelled, run_backtest
    from engine.strategy.compile import compile_strategy
    from engine.strategy.form import Strategy
    from engine.strategy.lookback import warmup_bars
    from engine.sweep import expand, run_sweep, shard_variants

    send = conn.send

    def cancelled() -> bool:
        while conn.poll():
            if isinstance(conn.recv(), Cancel | Stop):
                return True
        return False

    send(Progress("load", 0, 1))
    sweep = job.get("sweep")
    dialect = job.get("dialect", "v2")
    plan = _template_plan(job)
    if sweep:
        variants = expand(job["strategy"], sweep["grid"], dialect=dialect)
        strategies = [v.strategy for v in variants]
        # A shard runs its slice; the bars' warm-up stays the whole sweep's (from `strategies`),
        # so its figures are those of the same variants in a one-node run.
        variants = shard_variants(variants, job.get("variant_range"))
    elif plan is not None:
        strategies = [plan] if isinstance(plan, Strategy) else []
    else:
        strategies = [compile_strategy(job["strategy"], dialect=dialect)]
    execution = Execution.from_dict(job["execution"])
    store = _store(job["bars_dir"])
    lookback = max(
        (warmup_bars(s, job["resolution"], execution.atr_period) for s in strategies), default=0
    )
    tz = job.get("timezone") or "UTC"  # the day, week and month boundaries of such bars
    window = (job["resolution"], job["start_ns"], job["end_ns"], lookback, tz)
    bars = {s: store.load_with_warmup(s, *window) for s in job["symbols"]}
    annual = _annualisation(store, bars, job)
    ppy, rf = annual.periods_per_year, annual.risk_free_rate
    versus = job.get("benchmark")  # a symbol the run compares with (alpha, beta)
    benchmark = store.load(versus, *window[:3], tz=tz) if versus else None
    for s, b in bars.items():
        send(Log("info", f"loaded {len(b)} {job['resolution']} bars of {s}"))
    if cancelled():
        raise _Cancelled
    send(Progress("prepare", 0, 1))

    pace = float(job.get("pace_seconds") or 0.0)

    def on_progress(p: Any) -> bool:
        send(Progress("simulate", p.bars_done, p.bars_total, dict(p.metrics)))
        if pace:
            time.sleep(pace)  # demo pacing: slows a run so its progress can be watched
        return not cancelled()

    common = {
        "on_progress": on_progress,
        "resolution": job["resolution"],
        "periods_per_year": ppy,
        "risk_free_rate": rf,
        "benchmark": benchmark,
    }
    try:
        if plan is not None and not strategies:
            from engine.templates.run import run_template

            maker, taker = _maker_taker_bps(execution)
            output = run_template(
                bars, plan, job["capital"], job["start_ns"], maker_bps=maker, taker_bps=taker,
                on_progress=on_progress, chunk_bars=int(job.get("chunk_bars") or 20_000),
                periods_per_year=ppy, leverage=execution.leverage,
                maintenance_margin_rate=execution.maintenance_margin_rate, risk_free_rate=rf,
                benchmark=benchmark,
            )  # fmt: skip
        elif sweep:
            send(Log("info", f"sweep of {len(strategies)} variants, ranked by {sweep['rank_by']}"))
            rows, output = run_sweep(
                bars, variants, execution, job["capital"], job["start_ns"],
                rank_by=sweep["rank_by"], **common,
            )  # fmt: skip
        else:
            output = run_backtest(
                bars, strategies[0], execution, job["capital"], job["start_ns"],
                chunk_bars=int(job.get("chunk_bars") or 20_000), **common,
            )  # fmt: skip
    except Cancelled as exc:
        raise _Cancelled from exc
    for line in output.logs:  # per-symbol summaries, the account line, liquidations
        send(Log(line.level, str(line)))
    send(Progress("metrics", 1, 1))
    body = _wire(output)
    body["annualization"] = annual.wire()
    if len(strategies) == 1 and getattr(strategies[0], "score", None) is not None:
        body["score"] = _score(strategies[0], bars, output, job, execution)
    if sweep:
        best = rows[0]
        body["sweep"] = {
            "rank_by": sweep["rank_by"],
            "variant_count": len(rows),
            "best": {"variant": best["number"], "params": best["params"]},
            "variants": _sweep_rows(rows, sweep["rank_by"]),
        }
    send(Done(body))


def _failure(exc: Exception) -> tuple[str, str]:
    """The code and client-facing message of a failed job; details stay in the server log."""
    from engine.errors import PathError
    from engine.templates.params import TemplateError

    if isinstance(exc, PathError):  # the request was checked before queuing; say what broke
        code = "invalid_template" if isinstance(exc, TemplateError) else "invalid_strategy"
        return code, str(exc)
    return "engine_error", f"the engine failed ({type(exc).__name__}); the server log has details"


def main(conn: Connection) -> None:
    """Warm the kernels, then serve jobs until told to stop or the pipe closes."""
    # Ctrl+C in a terminal reaches the whole process group: the server stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    from engine.run import warm_up
    from engine.templates.run import warm_up as warm_up_templates

    warm_up()
    warm_up_templates()
    conn.send(Ready(os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if isinstance(msg, Stop):
            return
        if not isinstance(msg, Job):
            continue  # a cancel for a job that already ended
        try:
            _run(conn, msg.spec)
        except _Cancelled:
            conn.send(Cancelled())
        except Exception as exc:
            conn.send(Failed(*_failure(exc), traceback.format_exc(limit=8)))
