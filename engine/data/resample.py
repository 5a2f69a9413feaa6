"""Aggregate bars into coarser buckets: UTC epoch multiples, or calendar periods.

Intraday buckets are UTC epoch multiples of the step. Daily buckets are UTC days, or local days
when a time zone is named: a local day runs from one local midnight to the next, so on the days
a daylight-saving change happens it spans 23 or 25 hours. Weekly buckets run from Monday to
Sunday and monthly buckets from the 1st to the month's last day, in UTC or the zone named
(engine.data.periods). A bucket's timestamp is its start, in UTC. Buckets with no bars produce
no bar (gaps such as nights and weekends stay gaps).
"""

from __future__ import annotations

import numpy as np

from engine.data.bars import Bars, empty_bars, take
from engine.data.periods import floor_periods, is_calendar, is_utc, period_ends

__all__ = ["bucket_end", "bucket_starts", "closed_only", "is_utc", "resample"]


def bucket_starts(ts: np.ndarray, step: int, tz: str | None = None) -> np.ndarray:
    """The open time of the bucket each timestamp falls in."""
    ts = np.asarray(ts, dtype=np.int64)
    if is_calendar(step, tz):
        return floor_periods(ts, step, tz)
    return ts - ts % step


def bucket_end(start: int, step: int, tz: str | None = None) -> int:
    """The close time of the bucket opening at start."""
    if is_calendar(step, tz):
        return int(period_ends(np.array([start], dtype=np.int64), step, tz)[0])
    return start + step


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
