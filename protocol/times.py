"""The wire's timestamps: ISO 8601 in UTC with a Z, parsed and written in one place."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import PlainSerializer

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ts: datetime | None, timespec: str = "milliseconds") -> str | None:
    """ISO 8601 UTC with a Z (to the millisecond; "auto": seconds unless finer), or None."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_ns(ns: int, timespec: str = "milliseconds") -> str:
    """`iso` of a time in nanoseconds since the epoch (exact to the microsecond)."""
    return iso(EPOCH + timedelta(microseconds=int(ns) // 1000), timespec) or ""


def to_ns(ts: datetime) -> int:
    """Exact nanoseconds since the epoch of an aware datetime."""
    return (ts - EPOCH) // timedelta(microseconds=1) * 1000


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC."""
    try:
        ts = datetime.fromisoformat(text)
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
        ts.astimezone(UTC)  # a time near year 1 or 9999 may not exist in UTC
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 2025-01-01T00:00:00Z") from exc
    return ts


Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str)]
"""A datetime field written on the wire as `iso` writes it."""
