"""The seed 001 dialect (`/api/v1/backtests`): request bodies, date-range modes, response shapes.

Execution settings travel at the top level of a request (seed 001's names: `min_trade_amount`,
`max_risk_per_trade`, `cooldown_config`, …) and in `execution_config` (`max_hold_bars`,
`atr_period`, `atr_multiplier`, or any other setting); a top-level key wins over the same key in
`execution_config`, which wins over a saved strategy's defaults.
"""

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.enums import RESOLUTIONS
from protocol.errors import ErrorCode
from protocol.requests import ExecutionSpec

# The seven metrics of seed 001's response, in its order.
SEED_METRICS = (
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "irr_annualized",
    "max_drawdown",
    "max_drawdown_duration",
    "win_rate",
)
DEPRECATED_KEYS = ("cooldown_bars", "daily_momentum_limit", "weekly_momentum_limit")
EXECUTION_KEYS = frozenset(ExecutionSpec.model_fields)
_BARE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


INTERVALS = [k for k, r in RESOLUTIONS.items() if r is not None]


class Common(BaseModel):
    """Fields shared by a single and a bulk request (besides the execution settings); values
    of their field's JSON type only (see protocol.requests.Strict)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    interval: str | None = Field(None, json_schema_extra={"enum": [*INTERVALS, None]})
    asset: str | None = Field(None, min_length=1, max_length=32)
    initial_balance: float = Field(100_000.0, gt=0, le=1e12)
    start_date: str | None = Field(None, max_length=40)
    end_date: str | None = Field(None, max_length=40)
    lookback_months: int | None = Field(None, ge=1, le=1200)
    execution_config: ExecutionSpec | None = None

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: str | None) -> str | None:
        if v is not None and RESOLUTIONS.get(v) is None:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
        return v

    @field_validator("start_date", "end_date")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            parse_date(v, end=False)
        return v


class RunBody(Common):
    """`POST /api/v1/backtests` without its execution settings (those are checked apart)."""

    interval: str = Field(json_schema_extra={"enum": INTERVALS})  # type: ignore[assignment]
    initial_balance: float = Field(gt=0, le=1e12)
    strategy_json: str | None = Field(None, max_length=200_000)
    strategy_id: str | None = Field(None, max_length=64)
    name: str | None = Field(None, max_length=200)


class BulkBody(Common):
    """`POST /api/v1/backtests/bulk` without its execution settings."""

    strategy_ids: list[str] | None = Field(None, min_length=1)
    strategy_configs: list[Any] | None = Field(None, min_length=1)


def parse_date(text: str, *, end: bool) -> datetime:
    """An ISO date or date-time (UTC unless it has an offset); a bare end date covers its day."""
    if _BARE_DATE.match(text):
        day = date.fromisoformat(text)
        start = datetime.combine(day, time(), UTC)
        return start + timedelta(days=1, microseconds=-1) if end else start
    try:
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 date (2024-01-01) or date-time") from exc
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def months_before(ts: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the day clamped to the month)."""
    year, month0 = divmod(ts.month - 1 - months, 12)
    year += ts.year
    day = min(ts.day, calendar.monthrange(year, month0 + 1)[1])
    return ts.replace(year=year, month=month0 + 1, day=day)


class WindowError(ValueError):
    """An impossible combination of date-range fields."""

    def __init__(self, fields: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.fields = fields
        self.message = message


def _back(ts: datetime, months: int, fields: tuple[str, ...]) -> datetime:
    try:
        return months_before(ts, months)
    except (ValueError, OverflowError) as exc:
        raise WindowError(fields, f"{months} months before {ts.date()} is before year 1") from exc


def window(
    start_date: str | None, end_date: str | None, lookback: int | None, now: datetime
) -> tuple[datetime, datetime, str]:
    """Resolve seed 001's date-range modes to (start, end, mode); WindowError when impossible.

    A mode ending "now" (`from_date_to_now`, `recent_history`) ends at `now`; the caller clips
    it to the data it has.
    """
    given = tuple(
        k for k, v in (("start_date", start_date), ("end_date", end_date),
                       ("lookback_months", lookback)) if v is not None
    )  # fmt: skip
    start = parse_date(start_date, end=False) if start_date else None
    end = parse_date(end_date, end=True) if end_date else None
    if given == ("start_date", "end_date"):
        assert start is not None and end is not None
        return start, end, "explicit_range"
    if given == ("start_date",):
        assert start is not None
        return start, now, "from_date_to_now"
    if given == ("end_date", "lookback_months"):
        assert end is not None and lookback is not None
        return _back(end, lookback, given), end, "lookback_from_end"
    if given == ("lookback_months",):
        assert lookback is not None
        return _back(now, lookback, given), now, "recent_history"
    if not given:
        raise WindowError(
            ("start_date", "end_date", "lookback_months"),
            "a date range is required: start_date (+ end_date), or lookback_months (+ end_date)",
        )
    if given == ("end_date",):
        raise WindowError(given, "end_date needs start_date or lookback_months")
    raise WindowError(
        given,
        f"{' + '.join(given)} is not a date-range mode: use start_date + end_date,"
        " start_date, end_date + lookback_months, or lookback_months",
    )


def metrics(all_metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Seed 001's seven metrics from a run's metrics (counts as integers)."""
    if all_metrics is None:
        return None
    out = {k: all_metrics.get(k) for k in SEED_METRICS}
    if out["max_drawdown_duration"] is not None:
        out["max_drawdown_duration"] = int(out["max_drawdown_duration"])
    return out


def trade_count(all_metrics: dict[str, Any] | None) -> int | None:
    """Closed round trips, as an integer."""
    if all_metrics is None or all_metrics.get("trade_count") is None:
        return None
    return int(all_metrics["trade_count"])


def error_body(code: ErrorCode, message: str, field: str | None, details: Any) -> dict[str, Any]:
    """The v1 error shape: `{"success": false, "detail", "error": {code, message, field?}}`;
    seed 001 has no codes of its own, so they are the canonical ones."""
    err: dict[str, Any] = {"code": code.value, "message": message}
    if field is not None:
        err["field"] = field
    if details:
        err["details"] = details
    return {"success": False, "detail": message, "error": err}


# ---- response bodies (for the OpenAPI document; the handlers build plain dicts) -------------


class SeedMetrics(BaseModel):
    """Seed 001's seven metrics (fractions; null when undefined)."""

    sharpe_ratio: float | None
    sortino_ratio: float | None
    calmar_ratio: float | None
    irr_annualized: float | None
    max_drawdown: float | None
    max_drawdown_duration: int | None
    win_rate: float | None


class Summary(BaseModel):
    """What a v1 result, a bulk result and a history item share."""

    success: bool = Field(description="true when the run completed")
    backtest_id: str | None
    status: str | None = None
    metrics: SeedMetrics | None = None
    execution_time_seconds: float | None = None
    trade_count: int | None = None
    asset: str | None = None
    interval: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    strategy_name: str | None = None
    strategy_id: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    archived: bool | None = None
    archived_at: str | None = None
    error: dict[str, Any] | None = None


class Result(Summary):
    """`POST /api/v1/backtests` and `GET /api/v1/backtests/{id}`: a run with its trades."""

    trades: list[dict[str, Any]] = Field(description="closed round trips, in order")
    open_positions: list[dict[str, Any]]
    config: dict[str, Any] = Field(description="the resolved run config (as v2 echoes it)")
    warnings: list[str] = Field(default_factory=list, description="deprecated keys sent")


class BulkItem(Summary):
    """One strategy's outcome in a bulk request."""

    index: int
    strategy_id: str | None = None


class BulkResult(BaseModel):
    """`POST /api/v1/backtests/bulk`."""

    success: bool
    total: int
    succeeded: int
    failed: int
    data_fetches: int = Field(description="unique (asset, timeframe) pairs loaded")
    execution_time_seconds: float
    results: list[BulkItem]
    warnings: list[str]


class TradesPage(BaseModel):
    """`GET /api/v1/backtests/{id}/trades`."""

    success: bool
    backtest_id: str
    trades: list[dict[str, Any]]
    total: int
    next_cursor: str | None


class Archived(BaseModel):
    """`POST /api/v1/backtests/{id}/archive` and `/unarchive`."""

    success: bool
    backtest_id: str
    archived: bool
    archived_at: str | None


class History(BaseModel):
    """`GET /api/v1/users/me/backtests`."""

    items: list[Summary]
    total: int
    next_cursor: str | None


class Error(BaseModel):
    """Every v1 error: `detail` repeats `error.message` for clients that read FastAPI's shape."""

    success: bool = False
    detail: str
    error: dict[str, Any]


def request_schema(model: type[BaseModel], ref_template: str) -> dict[str, Any]:
    """A v1 body's JSON Schema: its own fields plus every execution setting at the top level."""
    schema = model.model_json_schema(ref_template=ref_template)
    execution = ExecutionSpec.model_json_schema(ref_template=ref_template)
    schema.setdefault("$defs", {}).update(execution.pop("$defs", {}))
    schema["properties"].update(execution["properties"])
    return schema
