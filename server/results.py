"""A finished run's results body: the engine's RunResult as the JSON the results table stores."""

from typing import Any

from engine import RunResult
from protocol.results import COUNT_METRICS
from protocol.times import iso_ns
from server.json_rows import encode

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


def results_body(result: RunResult) -> dict[str, Any]:
    """The results body: metrics and summaries as JSON-ready values (counts as integers), the
    listings (equity, fills as `trades`, round trips, open positions, exposure) as
    server.json_rows.Rows, serialised once here and stored without re-encoding."""
    body = _wire(result.output)
    body["annualization"] = result.annualisation.wire()
    if result.score is not None:
        body["score"] = result.score
    if result.sweep is not None:
        rows, rank_by = result.sweep.rows, result.sweep.rank_by
        best = rows[0]
        body["sweep"] = {
            "rank_by": rank_by,
            "variant_count": len(rows),
            "best": {"variant": best["number"], "params": best["params"]},
            "variants": _sweep_rows(rows, rank_by),
        }
    return body


def _wire(output: Any) -> dict[str, Any]:
    """An engine output as the body: its listings as JSON rows made from their columns
    (server.json_rows, times ISO 8601), stored as they are (server.stored_results)."""
    return {
        "metrics": _counts_as_ints(output.metrics),
        "equity": encode(output.equity),
        "trades": encode(output.trades),
        "round_trips": encode(output.round_trips),
        "open_positions": encode(output.open_positions),
        "exposure": encode(output.exposure),
        "bars": output.bars,
        "period": {k: iso_ns(int(v)) for k, v in output.period.items()},
        "returns_by_month": output.returns_by_month,
        "returns_by_year": output.returns_by_year,
    }


def _counts_as_ints(metrics: dict[str, Any]) -> dict[str, Any]:
    """Counts are integers on the wire (DESIGN §7); the engine keeps every metric a float."""
    return {k: int(v) if k in COUNT_METRICS and v is not None else v for k, v in metrics.items()}


def _sweep_rows(rows: list[dict], rank_by: str) -> list[dict]:
    """The ranking as sent: rank, variant number, its grid values and the key metrics."""
    keep = (*SWEEP_METRICS, rank_by) if rank_by not in SWEEP_METRICS else SWEEP_METRICS
    return [
        {"rank": r["rank"], "variant": r["number"], "params": r["params"],
         "metrics": {k: r["metrics"].get(k) for k in keep}}
        for r in rows
    ]  # fmt: skip
