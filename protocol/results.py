"""Response bodies of the canonical v2 API."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from protocol.enums import RunState


class RunError(BaseModel):
    """Why a run failed."""

    code: str
    message: str


class RunStatus(BaseModel):
    """The run status object returned by create, get and list."""

    run_id: str
    state: RunState
    progress: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: RunError | None
    config: dict[str, Any]
    archived: bool = False
    archived_at: datetime | None = None


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


class Results(BaseModel):
    """`GET /api/v2/backtests/{run_id}/results`."""

    run_id: str
    metrics: dict[str, float | None] = Field(
        description="every metric of the README's Metrics table, snake_case; counts are integers"
    )
    equity: list[EquityPoint]
    trades: list[Trade]
    round_trips: list[dict[str, Any]]
    open_positions: list[dict[str, Any]]
    exposure: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    bars: int | None = None
    period: ResultsPeriod | None = None
    returns_by_month: list[MonthReturn] = []
    returns_by_year: list[YearReturn] = []
    sweep: dict[str, Any] | None = None  # a sweep's ranking: rank_by, variant_count, best, variants
    score: dict[str, Any] | None = None  # a score strategy's seed 003 summary and diagnostics
