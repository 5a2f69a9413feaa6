"""Calendar periods: local days, weeks (Monday to Sunday) and months (from the 1st) in a time zone.

A period starts at local midnight in the zone, so a local day around a daylight-saving change is
23 or 25 hours long, and a month is 28 to 31 days. Every start is returned in UTC ns. These are
the buckets of daily bars in a time zone and of every weekly and monthly bar (which are calendar
periods in UTC unless a run names a zone).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS
WEEK_NS = 7 * DAY_NS
MONTH_NS = 31 * DAY_NS  # nominal: the longest month, so spans built from it never fall short


def is_utc(tz: str | None) -> bool:
    """Whether tz means plain UTC day boundaries."""
    return tz is None or tz.upper() in ("UTC", "Z", "ETC/UTC", "GMT")


def is_calendar(step: int, tz: str | None = None) -> bool:
    """Whether buckets of this length follow the calendar rather than UTC epoch multiples."""
    return step in (WEEK_NS, MONTH_NS) or (step == DAY_NS and not is_utc(tz))


def _zone(tz: str | None) -> ZoneInfo | type[UTC]:
    return UTC if is_utc(tz) else ZoneInfo(tz)  # type: ignore[arg-type]


def _first_day(day: date, step: int) -> date:
    """The first local day of the period holding day."""
    if step == WEEK_NS:
        return day - timedelta(days=day.weekday())
    if step == MONTH_NS:
        return day.replace(day=1)
    return day


def _next_day(day: date, step: int) -> date:
    """The first local day of the period after the one starting on day."""
    if step == WEEK_NS:
        return day + timedelta(days=7)
    if step == MONTH_NS:
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day + timedelta(days=1)


def period_starts(first_ns: int, last_ns: int, step: int, tz: str | None = None) -> np.ndarray:
    """UTC ns of every period start from the period holding first_ns to the one after last_ns."""
    zone = _zone(tz)
    day = _first_day(datetime.fromtimestamp(first_ns // SECOND_NS, zone).date(), step)
    stop = datetime.fromtimestamp(last_ns // SECOND_NS, zone).date()
    out = []
    while True:
        out.append(int(datetime.combine(day, time(), tzinfo=zone).timestamp()) * SECOND_NS)
        if day > stop:
            return np.asarray(out, dtype=np.int64)
        day = _next_day(day, step)


def floor_periods(ts: np.ndarray, step: int, tz: str | None = None) -> np.ndarray:
    """The start of the period each timestamp falls in."""
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) == 0:
        return ts.copy()
    edges = period_starts(int(ts.min()), int(ts.max()), step, tz)
    return edges[np.searchsorted(edges, ts, side="right") - 1]


def period_ends(starts: np.ndarray, step: int, tz: str | None = None) -> np.ndarray:
    """The end (the next period's start) of each period starting at starts."""
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:
        return starts.copy()
    edges = period_starts(int(starts.min()), int(starts.max()), step, tz)
    return edges[np.searchsorted(edges, starts, side="right")]
