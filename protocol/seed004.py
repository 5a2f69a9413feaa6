"""The seed 004 dialect (`/v1/backtest/jobs`): signed template jobs.

A job is a run of a template (`tpl_grid`, `tpl_dca`, `tpl_ma_cross`, `tpl_rsi_reversion`,
`tpl_breakout`). Decimals travel as strings and are echoed as sent; the job's id is a short
`bt_<8 hex>` beside the run's UUID.
"""

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.errors import ErrorCode
from protocol.params import bounds, check_decimal, declared
from protocol.times import iso, parse_time

TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")
FEE_MODELS = ("none", "fixed_bps", "tiered_maker_taker", "match_exchange")
SPAN_YEARS = 5  # "total span ≤ 5 years": end at most the same date and time 5 years later
JOB_ID = re.compile(r"^bt_[0-9a-f]{6,8}$")

# Run states → seed 004 job statuses.
STATUS = {
    "queued": "queued",
    "running": "running",
    "completed": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}


class Code(StrEnum):
    """Seed 004's error codes."""

    INVALID_PARAMETER = "INVALID_PARAMETER"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    INVALID_STATE = "INVALID_STATE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"


# Every canonical error code → (status, seed 004 code).
CODES: dict[ErrorCode, tuple[int, Code]] = {
    ErrorCode.INVALID_JSON: (400, Code.INVALID_PARAMETER),
    ErrorCode.VALIDATION_ERROR: (400, Code.INVALID_PARAMETER),
    ErrorCode.INVALID_TEMPLATE: (400, Code.INVALID_PARAMETER),
    ErrorCode.INVALID_STRATEGY: (400, Code.INVALID_PARAMETER),
    ErrorCode.UNSUPPORTED_ASSET: (400, Code.INVALID_PARAMETER),
    ErrorCode.UNSUPPORTED_RESOLUTION: (400, Code.INVALID_PARAMETER),
    ErrorCode.INVALID_DATE_RANGE: (400, Code.INVALID_PARAMETER),
    ErrorCode.UNAUTHORIZED: (401, Code.UNAUTHENTICATED),
    ErrorCode.NOT_FOUND: (404, Code.NOT_FOUND),
    ErrorCode.METHOD_NOT_ALLOWED: (405, Code.METHOD_NOT_ALLOWED),
    ErrorCode.RUN_FINISHED: (409, Code.INVALID_STATE),
    ErrorCode.RUN_NOT_FINISHED: (409, Code.INVALID_STATE),
    ErrorCode.STRATEGY_DELETED: (409, Code.INVALID_STATE),
    ErrorCode.INVALID_STATE: (409, Code.INVALID_STATE),
    ErrorCode.INSUFFICIENT_CREDITS: (402, Code.INSUFFICIENT_CREDITS),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, Code.PAYLOAD_TOO_LARGE),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (415, Code.UNSUPPORTED_MEDIA_TYPE),
    ErrorCode.TOO_MANY_RUNS: (429, Code.RATE_LIMITED),
    ErrorCode.RATE_LIMITED: (429, Code.RATE_LIMITED),
    ErrorCode.DATABASE_UNAVAILABLE: (503, Code.UNAVAILABLE),
    ErrorCode.BUSY: (500, Code.INTERNAL),
    ErrorCode.TIMEOUT: (500, Code.INTERNAL),
    ErrorCode.ENGINE_ERROR: (500, Code.INTERNAL),
    ErrorCode.WORKER_LOST: (500, Code.INTERNAL),
    ErrorCode.INTERNAL_ERROR: (500, Code.INTERNAL),
}
# Request weights per minute and key (seed 004's "Weight: 20" for a new job).
WEIGHTS = {"create": 20, "read": 1, "cancel": 1}


DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def decimal_text(value: Any, field: str, *, positive: bool) -> str:
    """A decimal given as a string (or a JSON number): the text to echo; ValueError if bad."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f'{field} must be a decimal string such as "10000.00"')
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, str) and not DECIMAL.fullmatch(value):
        raise ValueError(f"{field} must be numeric (digits and an optional point), got {text!r}")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{field} must be numeric, got {text!r}") from exc
    if not number.is_finite() or (positive and number <= 0) or (not positive and number < 0):
        raise ValueError(f"{field} must be a {'positive' if positive else 'non-negative'} number")
    return text


class JobBody(BaseModel):
    """`POST /v1/backtest/jobs`; every field may come from a saved strategy's stored config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template_id: str | None = Field(None, min_length=1, max_length=64)
    params: dict[str, Any] | None = None
    symbols: list[str] | None = Field(None, min_length=1, max_length=100)
    timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] | None = None
    start: str | None = Field(None, max_length=40)
    end: str | None = Field(None, max_length=40)
    capital: str | float | None = None
    leverage: int | None = Field(None, strict=True, **bounds(declared("leverage")))
    fee_model: Literal["none", "fixed_bps", "tiered_maker_taker", "match_exchange"] | None = None
    fee_bps: str | float | None = None
    strategy_id: str | None = Field(None, max_length=64)

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str] | None) -> list[str] | None:
        for s in v or ():
            if not re.fullmatch(r"[A-Z0-9][A-Z0-9._:/-]{0,31}", s):
                raise ValueError(f"{s!r} is not an uppercase exchange-style symbol (BTCUSDT)")
        return v

    @field_validator("capital")
    @classmethod
    def _capital(cls, v: Any) -> Any:
        return None if v is None else decimal_text(v, "capital", positive=True)

    @field_validator("fee_bps")
    @classmethod
    def _fee_bps(cls, v: Any) -> Any:
        if v is None:
            return None
        text = decimal_text(v, "fee_bps", positive=False)
        check_decimal(declared("fee_bps"), Decimal(text), "fee_bps")  # the engine's bounds
        return text

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        if v is not None:
            parse_time(v)
        return v


REQUIRED = ("template_id", "params", "symbols", "timeframe", "start", "end", "capital")


def merged(stored: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The job config: a saved strategy's stored config under the request's own fields, with
    seed 004's defaults (leverage 1, fee_model fixed_bps, fee_bps "5")."""
    out = {"leverage": 1, "fee_model": "fixed_bps", "fee_bps": "5", **stored, **sent}
    return {k: out[k] for k in (*REQUIRED, "leverage", "fee_model", "fee_bps") if k in out}


def _years_later(ts: datetime, years: int) -> datetime:
    try:
        return ts.replace(year=ts.year + years)
    except ValueError:  # 29 February → 28 February
        return ts.replace(year=ts.year + years, day=28)


def check_window(start: datetime, end: datetime, now: datetime) -> tuple[str, str] | None:
    """The (field, message) of a bad window, or None."""
    if end <= start:
        return "end", "end must be after start"
    if end > _years_later(start, SPAN_YEARS):
        return "end", f"the span from start to end is at most {SPAN_YEARS} years"
    if end > now:
        return "end", f"end is in the future (now is {iso(now, 'auto')})"
    return None


def job(
    short_id: str | None,
    run_id: str,
    state: str,
    config: dict[str, Any],
    *,
    submitted_at: str,
    started_at: str | None,
    finished_at: str | None,
    progress: float,
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    """A job object as seed 004 shows it (plus `run_id`, the canonical run's UUID)."""
    return {
        "id": short_id or run_id,
        "status": STATUS[state],
        "config": config,
        "submitted_at": submitted_at,
        "started_at": started_at,
        "finished_at": finished_at,
        "progress": progress,
        "result": result,
        "error": error,
        "run_id": run_id,
    }


def error_body(code: ErrorCode, message: str, field: str | None) -> tuple[int, dict[str, Any]]:
    """The seed 004 status and body of a canonical error code."""
    status, name = CODES[code]
    err: dict[str, Any] = {"code": name.value, "message": message}
    if field is not None:
        err["field"] = field
    return status, {"error": err}


class Job(BaseModel):
    """A job object (for the OpenAPI document)."""

    id: str = Field(description="bt_<8 hex>")
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    config: dict[str, Any]
    submitted_at: str
    started_at: str | None
    finished_at: str | None
    progress: float
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    run_id: str = Field(description="the run's UUID: /api/v2/backtests/{run_id} and its stream")
