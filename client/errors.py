"""The one exception the SDK raises.

BarstreamError
  status   the HTTP status (None for a stream or run failure that has none)
  code     the API's error code (`validation_error`, `not_found`, …) or the SDK's own:
           `stream_refused`, `stream_unavailable`, `event_gap`, `invalid_event`,
           `cancelled`, and a failed run's error code (`timeout`, `engine_error`, …)
  message  the human-readable text
  field    the offending request field, when the server names one
"""

from typing import Any

__all__ = ["BarstreamError"]


class BarstreamError(Exception):
    """An error answer of the server, a refused or lost stream, or a run that did not complete."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: list[dict[str, Any]] | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details
        self.run_id = run_id

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return (
            f"BarstreamError(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, field={self.field!r})"
        )
