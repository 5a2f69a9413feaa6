"""The wire's timestamps: ISO 8601 in UTC with milliseconds and a Z."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer


def iso(ts: datetime | None) -> str | None:
    """ISO 8601 UTC with milliseconds and a Z, or None."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str)]
"""A datetime field written on the wire as `iso` writes it."""
