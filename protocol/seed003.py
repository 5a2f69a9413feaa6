"""The seed 003 dialect (`/api/public/v1/backtest`): its request, its responses, its error codes.

A submit body names a score strategy (a JSON string), an asset pair and two dates; the answer
and every later read use seed 003's camelCase names and its three statuses. Errors have one
shape, `{"error": {"code", "message", "field"?, "details"?}}`, with seed 003's lower-case codes;
the canonical codes a shared check raises are renamed here (`to_seed003`).
"""

import re
from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.enums import RESOLUTIONS
from protocol.errors import ErrorCode

PREFIX = "/api/public/v1/"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The run resolutions this dialect's `timeframe` extension takes.
TIMEFRAMES = tuple(k for k, v in RESOLUTIONS.items() if v is not None and k == v)


class Code(StrEnum):
    """Seed 003's error codes, plus `not_found` (the seed lists none for an unknown id)."""

    INVALID_PAYLOAD = "invalid_payload"
    INVALID_STRATEGY = "invalid_strategy"
    INVALID_DATE_RANGE = "invalid_date_range"
    UNSUPPORTED_ASSET = "unsupported_asset"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    RATE_LIMITED = "rate_limited"
    EXECUTION_FAILED = "execution_failed"


# Every canonical code → (seed 003 code, status), or None to keep the status it was raised with.
RENAMED: dict[ErrorCode, tuple[Code, int | None]] = {
    ErrorCode.INVALID_JSON: (Code.INVALID_PAYLOAD, 400),
    ErrorCode.VALIDATION_ERROR: (Code.INVALID_PAYLOAD, 400),
    ErrorCode.UNSUPPORTED_RESOLUTION: (Code.INVALID_PAYLOAD, 400),
    ErrorCode.PAYLOAD_TOO_LARGE: (Code.INVALID_PAYLOAD, None),  # stays 413
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (Code.INVALID_PAYLOAD, None),  # stays 415
    ErrorCode.INVALID_TEMPLATE: (Code.INVALID_PAYLOAD, None),
    ErrorCode.RUN_NOT_FINISHED: (Code.INVALID_PAYLOAD, None),
    ErrorCode.RUN_FINISHED: (Code.INVALID_PAYLOAD, None),
    ErrorCode.STRATEGY_DELETED: (Code.INVALID_PAYLOAD, None),
    ErrorCode.INVALID_STATE: (Code.INVALID_PAYLOAD, None),
    ErrorCode.INVALID_STRATEGY: (Code.INVALID_STRATEGY, None),
    ErrorCode.INVALID_DATE_RANGE: (Code.INVALID_DATE_RANGE, None),
    ErrorCode.UNSUPPORTED_ASSET: (Code.UNSUPPORTED_ASSET, None),
    ErrorCode.UNAUTHORIZED: (Code.UNAUTHORIZED, None),
    ErrorCode.NOT_FOUND: (Code.NOT_FOUND, None),
    ErrorCode.METHOD_NOT_ALLOWED: (Code.NOT_FOUND, None),  # stays 405, with Allow
    ErrorCode.INSUFFICIENT_CREDITS: (Code.INSUFFICIENT_CREDITS, None),
    ErrorCode.RATE_LIMITED: (Code.RATE_LIMITED, None),
    ErrorCode.TOO_MANY_RUNS: (Code.RATE_LIMITED, 429),
    ErrorCode.BUSY: (Code.EXECUTION_FAILED, None),
    ErrorCode.DATABASE_UNAVAILABLE: (Code.EXECUTION_FAILED, None),  # stays 503
    ErrorCode.TIMEOUT: (Code.EXECUTION_FAILED, None),
    ErrorCode.ENGINE_ERROR: (Code.EXECUTION_FAILED, None),
    ErrorCode.WORKER_LOST: (Code.EXECUTION_FAILED, None),
    ErrorCode.INTERNAL_ERROR: (Code.EXECUTION_FAILED, 500),
}


def to_seed003(code: str, status: int) -> tuple[Code, int]:
    """The seed 003 code and status of an error raised with `code` (a `Code`, kept, or a
    canonical one, renamed) and `status`."""
    if isinstance(code, Code):
        return code, status
    renamed, new_status = RENAMED[ErrorCode(code)]
    return renamed, new_status or status


def error_body(
    code: Code, message: str, field: str | None, details: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """`{"error": {"code", "message", "field"?, "details"?}}`; a 402 adds `canViewResult: false`."""
    err: dict[str, Any] = {"code": code.value, "message": message}
    if field is not None:
        err["field"] = field
    if details:
        err["details"] = details
    body: dict[str, Any] = {"error": err}
    if code == Code.INSUFFICIENT_CREDITS:
        body["canViewResult"] = False
    return body


def parse_day(text: str) -> date:
    """A `YYYY-MM-DD` calendar date; ValueError otherwise."""
    if not _DATE.match(text):
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a calendar date") from exc


class SubmitBody(BaseModel):
    """`POST /api/public/v1/backtest`. Unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    strategySnapshotJson: str = Field(
        min_length=1,
        max_length=200_000,
        description='a score strategy serialized as a JSON string ("type": "score" may be left '
        "out); format: the ScoreStrategy schema in /openapi.json",
    )
    assetPair: str = Field(
        min_length=1, max_length=32, description='a symbol or alias: "BTC-USDC", "ETH-USDT"'
    )
    initialDate: str = Field(description="YYYY-MM-DD, from 00:00 UTC")
    finalDate: str = Field(
        description="YYYY-MM-DD, through the end of that day (UTC); a later end than the data's"
        " (or now) ends there"
    )
    timeframe: str | None = Field(
        None,
        description="barstream extension: the candle size the strategy runs on (1m, 5m, 15m, "
        "1h, 4h, 1d); default the finest timeframe among its conditions and exits, else 1h",
    )

    @field_validator("initialDate", "finalDate")
    @classmethod
    def _day(cls, v: str) -> str:
        parse_day(v)
        return v

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, v: str | None) -> str | None:
        if v is not None and v not in TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
        return v


# Run states → seed 003's three statuses.
STATUS = {
    "queued": "Running",
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Failed",
}

# The metrics reference, in the seed's order (engine.diagnostics.r_summary computes them).
RESULT_KEYS = (
    "pnlR", "grossProfitR", "grossLossR", "profitFactor", "expectancyR", "avgWinR", "avgLossR",
    "trades", "wins", "losses", "winRate", "bothHit",
)  # fmt: skip


def result(
    score: dict[str, Any],
    round_trips: list[dict[str, Any]] | None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """The `result` object from a score run's results: the R summary, the two distributions,
    and `tradesDetail` when `round_trips` is given (each record joined with its round trip's
    times, exit reason and `bothHit`). Per-condition objects follow `names` (the strategy's
    condition names, in its order)."""
    score = camel_keys(score)
    summary = camel_keys(score.get("summary") or {})
    out: dict[str, Any] = {k: summary.get(k) for k in RESULT_KEYS}
    out["conditionsDistributionPct"] = _ordered(score.get("conditionsDistributionPct"), names)
    out["scoreDistributionPct"] = score.get("scoreDistributionPct") or {}
    if round_trips is not None:
        trips = sorted(round_trips, key=lambda t: (t["entry_time"], t["exit_time"]))
        out["tradesDetail"] = [
            _trade(camel_keys(d), trips[i] if i < len(trips) else {}, names)
            for i, d in enumerate(score.get("tradesDetail") or [])
        ]
    return out


def camel(name: str) -> str:
    """Seed 003's name for a v2 snake_case name: pnl_r -> pnlR, both_hit -> bothHit."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_keys(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with its own keys (not nested ones) in camelCase; camelCase keys stay as they are
    (results stored before the v2 names became snake_case)."""
    return {camel(k): v for k, v in values.items()}


def _ordered(values: dict[str, Any] | None, names: list[str] | None) -> dict[str, Any]:
    """`values` keyed in the order of `names` (as they are when the names do not match)."""
    values = values or {}
    if not names or set(names) != set(values):
        return values
    return {n: values[n] for n in names}


def _trade(detail: dict[str, Any], trip: dict[str, Any], names: list[str] | None) -> dict:
    return {
        **detail,
        "conditionsAtEntry": _ordered(detail.get("conditionsAtEntry"), names),
        "scoreBreakdownAtEntry": _ordered(detail.get("scoreBreakdownAtEntry"), names),
        **(_trip_fields(trip) if trip else {}),
    }


def _trip_fields(trip: dict[str, Any]) -> dict[str, Any]:
    return {
        "entryTimeUtc": trip.get("entry_time"),
        "exitTimeUtc": trip.get("exit_time"),
        "exitReason": trip.get("exit_reason"),
        "bothHit": bool(trip.get("both_hit")),
    }


# ---- response bodies (for the OpenAPI document; the handlers build plain dicts) -------------


class SubmitResponse(BaseModel):
    """The answer to a submit."""

    id: str = Field(description="the run's UUID (also readable at /api/v2/backtests/{id})")
    status: Literal["Running", "Completed", "Failed"] = Field(description='"Running" at once')
    assetPair: str = Field(description="the symbol the run uses (canonical name)")
    initialDate: str
    finalDate: str
    createdAtUtc: str
    canViewResult: bool = Field(
        description="true when the run was paid for or its owner's credits are off (unlimited)"
    )


class TradeDetail(BaseModel):
    """One trade of `tradesDetail` (entries in order; conditions read at the signal candle)."""

    number: int
    entryPrice: float
    exitPrice: float
    pnlR: float | None
    pnlPct: float | None = Field(description="the trade's return as a fraction (0.021 = +2.1%)")
    totalScoreAtEntry: float
    conditionsAtEntry: dict[str, bool]
    scoreBreakdownAtEntry: dict[str, float]
    symbol: str | None = None
    entryTimeUtc: str | None = None
    exitTimeUtc: str | None = None
    exitReason: str | None = Field(None, description="stop, take_profit, signal or max_hold")
    bothHit: bool | None = None


class Result(BaseModel):
    """The metrics reference of a completed run (null where undefined: no trades, no losses)."""

    pnlR: float | None
    grossProfitR: float | None
    grossLossR: float | None
    profitFactor: float | None
    expectancyR: float | None
    avgWinR: float | None
    avgLossR: float | None
    trades: int
    wins: int
    losses: int
    winRate: float | None
    bothHit: int
    conditionsDistributionPct: dict[str, float | None]
    scoreDistributionPct: dict[str, float | None]
    tradesDetail: list[TradeDetail] | None = Field(None, description="with includeTrades=true")


class Backtest(SubmitResponse):
    """`GET /api/public/v1/backtest/{id}`."""

    status: Literal["Running", "Completed", "Failed"] = Field(
        description='"Running" (queued or running), "Completed" or "Failed"'
    )
    strategySnapshotJson: str = Field(description="the strategy as sent")
    errorMessage: str | None = Field(description='why it failed, when "Failed"')
    logsJson: str | None = Field(
        description='the run\'s log lines as a JSON string: [{"timestamp", "level", "message"}]'
    )
    result: Result | None = Field(description="when Completed (and canViewResult)")


class Error(BaseModel):
    """Every error of this surface."""

    error: dict[str, Any] = Field(description='{"code", "message", "field"?, "details"?}')
    canViewResult: bool | None = Field(None, description="false on 402 insufficient_credits")
