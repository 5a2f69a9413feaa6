"""Error codes and the error body every surface of the canonical API returns."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema


class ErrorCode(StrEnum):
    """Machine-readable error codes of the canonical (v2) API."""

    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    VALIDATION_ERROR = "validation_error"
    INVALID_JSON = "invalid_json"
    INVALID_STRATEGY = "invalid_strategy"
    INVALID_TEMPLATE = "invalid_template"
    UNSUPPORTED_ASSET = "unsupported_asset"
    UNSUPPORTED_RESOLUTION = "unsupported_resolution"
    INVALID_DATE_RANGE = "invalid_date_range"
    RUN_NOT_FINISHED = "run_not_finished"
    RUN_FINISHED = "run_finished"
    STRATEGY_DELETED = "strategy_deleted"
    BUSY = "busy"
    INVALID_STATE = "invalid_state"
    RATE_LIMITED = "rate_limited"
    INSUFFICIENT_CREDITS = "insufficient_credits"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    DATABASE_UNAVAILABLE = "database_unavailable"
    TOO_MANY_RUNS = "too_many_runs"
    TIMEOUT = "timeout"
    ENGINE_ERROR = "engine_error"
    WORKER_LOST = "worker_lost"
    INTERNAL_ERROR = "internal_error"


def insufficient_credits(balance: object, cost: object) -> "ApiError":
    """402: a metered balance that does not cover a run (every surface words it alike)."""
    return ApiError(
        402, ErrorCode.INSUFFICIENT_CREDITS,
        f"a backtest costs {cost} credits and your balance is {balance}: ask the server's"
        " operator for credits (barstream credits grant)",
    )  # fmt: skip


def _no_default(schema: dict[str, Any]) -> None:
    """An optional field is left out of the body, never sent as null."""
    schema.pop("default", None)


class ErrorDetail(BaseModel):
    """What went wrong: the code, a message for people, and the offending field."""

    code: ErrorCode
    message: str
    field: str | SkipJsonSchema[None] = Field(
        None, description="the offending field's path", json_schema_extra=_no_default
    )
    details: list[dict[str, Any]] | SkipJsonSchema[None] = Field(
        None, description="every violation, when there are several", json_schema_extra=_no_default
    )


class ErrorBody(BaseModel):
    """The body of every error response of the canonical API."""

    error: ErrorDetail


class ApiError(Exception):
    """An error that becomes a JSON response: status, code, message and the offending field.

    `code` is an ErrorCode, or the code of a surface that has its own (seed 003's `Code`).
    """

    def __init__(
        self,
        status: int,
        code: StrEnum,
        message: str,
        *,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """Return the wire form: `{"error": {"code", "message", "field"?, "details"?}}`."""
        code, details = ErrorCode(self.code), self.details or None
        detail = ErrorDetail(code=code, message=self.message, field=self.field, details=details)
        return ErrorBody(error=detail).model_dump(mode="json", exclude_none=True)
