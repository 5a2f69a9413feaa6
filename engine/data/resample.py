"""Aggregate bars into coarser buckets: UTC epoch multiples, or local days in a time zone.

A daily bucket in a time zone runs from one local midnight to the next, so on the days a
daylight-saving change happens it spans 23 or 25 hours; its timestamp is that local midnight
in UTC. Intraday buckets are always UTC epoch multiples of the step. Buckets with no bars
produce no bar (gaps such as nights and weekends stay gaps).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from engine.data.bars import DAY_NS, SECOND_NS, Bars, empty_bars, take


def local_midnights(first_ns: int, last_ns: int, tz: str) -> np.ndarray:
    """UTC ns of every local midnight in tz from the day of first_ns to the day after last_ns."""
    zone = ZoneInfo(tz)
    day = datetime.fromtimestamp(first_ns // SECOND_NS, zone).date()
    stop = datetime.fromtimestamp(last_ns // SECOND_NS, zone).date() + timedelta(days=1)
    out = []
    while day <= stop:
        out.append(int(datetime.combine(day, time(), tzinfo=zone).timestamp()) * SECOND_NS)
        day += timedelta(days=1)
    return np.asarray(out, dtype=np.int64)


def is_utc(tz: str | None) -> bool:
    """Whether tz means plain UTC day boundaries."""
    return tz is None or tz.upper() in ("UTC", "Z", "ETC/UTC", "GMT")


def bucket_starts(ts: np.ndarray, step: int, tz: str | None = None) -> np.ndarray:
    """The open time of the bucket each timestamp falls in."""
    ts = np.asarray(ts, dtype=np.int64)
    if step != DAY_NS or is_utc(tz) or len(ts) == 0:
        return ts - ts % step
    edges = local_midnights(int(ts[0]), int(ts[-1]), tz)  # type: ignore[arg-type]
    return edges[np.searchsorted(edges, ts, side="right") - 1]


def bucket_end(start: int, step: int, tz: str | None = None) -> int:
    """The close time of the bucket opening at start."""
    if step != DAY_NS or is_utc(tz):
        return start + step
    edges = local_midnights(start, start + DAY_NS, tz)  # type: ignore[arg-type]
    return int(edges[np.searchsorted(edges, start, side="right")])


def resample(bars: Bars, step_ns: int, tz: str | None = None) -> Bars:
    """Aggregate bars into buckets (open first, high max, low min, close last, volume sum)."""
    if len(bars) == 0:
        return empty_bars()
    bucket = bucket_starts(bars.ts, step_ns, tz)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1))
    ends = np.concatenate((starts[1:], [len(bars)])) - 1
    return Bars(
        ts=bucket[starts].astype(np.int64),
        open=np.asarray(bars.open)[starts].astype(np.float64),
        high=np.maximum.reduceat(np.asarray(bars.high), starts).astype(np.float64),
        low=np.minimum.reduceat(np.asarray(bars.low), starts).astype(np.float64),
        close=np.asarray(bars.close)[ends].astype(np.float64),
        volume=np.add.reduceat(np.asarray(bars.volume), starts).astype(np.float64),
    )


def closed_only(coarse: Bars, step: int, data_end: int, tz: str | None = None) -> Bars:
    """Drop the last coarse bar unless the data reaches its close (data_end: end of last base bar)."""
    if len(coarse) and bucket_end(int(coarse.ts[-1]), step, tz) > data_end:
        return take(coarse, slice(0, len(coarse) - 1))
    return coarse
