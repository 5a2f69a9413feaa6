"""Response bodies of the canonical v2 API."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from protocol.enums import RunState
from protocol.errors import ErrorCode
from protocol.times import Timestamp


class RunError(BaseModel):
    """Why a run failed."""

    code: ErrorCode
    message: str


class RunStatus(BaseModel):
    """The run status object returned by create, get and list."""

    run_id: str
    state: RunState
    progress: float
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    error: RunError | None
    config: dict[str, Any]
    archived: bool = False
    archived_at: Timestamp | None = None


class Trade(BaseModel):
    """One fill."""

    symbol: str
    timestamp: datetime
    side: str
    quantity: float
    price: float
    commission: float


class EquityPoint(BaseModel):
    """Portfolio value at one time."""

    timestamp: datetime
    equity: float
    cash: float
    positions: float


# Every metric of a run (the README's Metrics table); counts are integers (null when undefined).
COUNT_METRICS = (
    "trade_count", "wins", "losses", "both_hit", "max_drawdown_duration",
    "max_trade_duration_bars",
)  # fmt: skip
METRICS = (
    "duration_days", "equity_final", "equity_peak", "commissions", "exposure", "total_return",
    "buy_and_hold_return", "benchmark_return", "cagr", "irr_annualized", "volatility_annualized",
    "sharpe_ratio", "sortino_ratio", "calmar_ratio", "alpha", "beta", "max_drawdown", "avg_drawdown",
    "max_drawdown_duration", "avg_drawdown_duration", "max_drawdown_duration_days",
    "avg_drawdown_duration_days", "trade_count", "wins", "losses", "win_rate", "profit_factor",
    "expectancy", "avg_win", "avg_loss", "best_trade_pct", "worst_trade_pct", "avg_trade_pct",
    "expectancy_pct", "profit_factor_pct", "max_trade_duration_days", "avg_trade_duration_days",
    "max_trade_duration_bars", "avg_trade_duration_bars", "sqn", "kelly_criterion", "both_hit",
    "pnl_r", "gross_profit_r", "gross_loss_r", "expectancy_r", "avg_win_r", "avg_loss_r",
)  # fmt: skip


def _metric_properties(schema: dict[str, Any]) -> None:
    """Name every metric in the schema (integers for counts), beside the open-ended map."""
    schema["properties"] = {
        name: {"anyOf": [{"type": "integer" if name in COUNT_METRICS else "number"},
                         {"type": "null"}]}
        for name in METRICS
    }  # fmt: skip


class ResultsPeriod(BaseModel):
    """The trading period's first and last bar."""

    start: datetime
    end: datetime


class MonthReturn(BaseModel):
    """The equity's compounded return over one calendar month (UTC)."""

    month: str = Field(description="YYYY-MM", pattern=r"^\d{4}-\d{2}$")
    return_: float | None = Field(alias="return")


class YearReturn(BaseModel):
    """The equity's compounded return over one calendar year (UTC)."""

    year: str = Field(description="YYYY", pattern=r"^\d{4}$")
    return_: float | None = Field(alias="return")


class Annualization(BaseModel):
    """The factor and risk-free rate a run's annualised metrics use, and the rule behind it."""

    periods_per_year: float
    risk_free_rate: float
    basis: str


class ListingPage(BaseModel):
    """How much of a listing (round trips, fills) the results carry, and where the rest is."""

    total: int = Field(description="rows the listing holds")
    count: int = Field(description="rows of it in this document (the first `count`)")
    next: str | None = Field(
        description="URL of the listing's next page (`GET …/round_trips` or `…/trades` with a"
        " cursor), null when this document holds every row"
    )


class Results(BaseModel):
    """`GET /api/v2/backtests/{run_id}/results`."""

    run_id: str
    metrics: dict[str, float | None] = Field(
        description="every metric of the README's Metrics table, snake_case; counts are integers",
        json_schema_extra=_metric_properties,
    )
    equity: list[EquityPoint]
    trades: list[Trade]
    round_trips: list[dict[str, Any]]
    open_positions: list[dict[str, Any]]
    exposure: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    bars: int | None = None
    period: ResultsPeriod | None = None
    annualization: Annualization | None = None
    returns_by_month: list[MonthReturn] = []
    returns_by_year: list[YearReturn] = []
    sweep: dict[str, Any] | None = None  # a sweep's ranking: rank_by, variant_count, best, variants
    score: dict[str, Any] | None = None  # a score strategy's seed 003 summary and diagnostics
    paging: dict[str, ListingPage] | None = Field(
        default=None,
        description="per listing (`round_trips`, `trades`): its total and the next page's link",
    )
