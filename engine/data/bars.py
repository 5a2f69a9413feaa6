"""OHLCV bars as NumPy columns, the resolutions the store knows, and the bar validation rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from engine.data.periods import (
    DAY_NS,
    MONTH_NS,
    SECOND_NS,
    WEEK_NS,
    floor_periods,
    is_calendar,
    period_ends,
)

MINUTE_NS = 60 * SECOND_NS

# Bar resolutions a run can use (the engine's timeframes), finest first. Weeks (Monday to
# Sunday) and months (from the 1st) are calendar periods: their lengths here are nominal (a
# month counts as 31 days where a span is sized from it, so it never falls short).
RESOLUTIONS: dict[str, int] = {
    "1s": SECOND_NS,
    "1m": MINUTE_NS,
    "5m": 5 * MINUTE_NS,
    "15m": 15 * MINUTE_NS,
    "1h": 60 * MINUTE_NS,
    "4h": 240 * MINUTE_NS,
    "1d": DAY_NS,
    "1w": WEEK_NS,
    "1M": MONTH_NS,
}
CALENDAR_RESOLUTIONS = ("1w", "1M")
# Resolutions data can be stored at, finest first; ticks have no grid (step 0).
BASE_RESOLUTIONS: dict[str, int] = {"tick": 0, **RESOLUTIONS}
COLUMNS = ("ts", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True)
class Bars:
    """OHLCV bars; ``ts`` is the bar open time in ns since the epoch (UTC), strictly increasing."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])


class BarError(ValueError):
    """A bar breaks a rule; ``index`` is its position in the bars checked."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"bar {index}: {reason}")
        self.index = index
        self.reason = reason


def empty_bars() -> Bars:
    """Return a Bars with no rows."""
    f = np.empty(0, dtype=np.float64)
    return Bars(np.empty(0, dtype=np.int64), f, f.copy(), f.copy(), f.copy(), f.copy())


def take(bars: Bars, index: np.ndarray | slice) -> Bars:
    """Return the bars at an index array or slice."""
    return Bars(**{c: getattr(bars, c)[index] for c in COLUMNS})


def concat(parts: list[Bars]) -> Bars:
    """Concatenate bars column by column."""
    return Bars(**{c: np.concatenate([getattr(p, c) for p in parts]) for c in COLUMNS})


def coarser(base: str) -> list[str]:
    """The base resolution and every bar resolution built from it, finest first (weeks do
    not tile months, so weekly data builds nothing coarser)."""
    names = list(BASE_RESOLUTIONS)
    return [base] if base == "1w" else names[names.index(base) :]


def on_grid(ts: np.ndarray, step: int) -> np.ndarray:
    """Whether each timestamp opens a bar of this length (UTC: calendar periods for 1w, 1M)."""
    ts = np.asarray(ts, dtype=np.int64)
    if is_calendar(step):
        return floor_periods(ts, step) == ts
    return ts % step == 0


def iso_strings(ts: np.ndarray) -> list[str]:
    """ISO 8601 UTC of ns timestamps: to the second when all are whole seconds, else to the ns."""
    ts = np.asarray(ts, dtype=np.int64)
    unit = "s" if not np.any(ts % SECOND_NS) else "ns"
    return np.datetime_as_string(ts.astype("datetime64[ns]"), unit=unit, timezone="UTC").tolist()


def iso(ns: int) -> str:
    """ISO 8601 UTC of one ns timestamp, as iso_strings writes it."""
    return iso_strings(np.array([int(ns)]))[0]


def parse_iso(text: str) -> int:
    """The ns of an ISO 8601 date or time ("Z" or an offset; naive means UTC), exactly."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * SECOND_NS + delta.microseconds * 1000


def _rules(bars: Bars, step: int) -> list[tuple[np.ndarray, object]]:
    """Each rule as (bad mask, reason for index i)."""
    ts = np.asarray(bars.ts, dtype=np.int64)
    o, h, lo, c, v = (np.asarray(getattr(bars, k), np.float64) for k in COLUMNS[1:])
    prev = np.concatenate(([np.iinfo(np.int64).min], ts[:-1]))
    order = ts < prev if step == 0 else ts <= prev
    rules: list[tuple[np.ndarray, object]] = []
    for name, col in zip(COLUMNS[1:], (o, h, lo, c, v), strict=True):
        rules.append((np.isnan(col), lambda i, n=name: f"{n} is missing or NaN"))
    rules.append(
        (
            order,
            lambda i: (
                f"timestamp {iso(ts[i])} is not after the previous row's "
                f"{iso(prev[i])} (timestamps must be ordered and unique)"
            ),
        )
    )
    if step:
        grid = next(k for k, s in BASE_RESOLUTIONS.items() if s == step)
        rules.append(
            (
                ~on_grid(ts, step),
                lambda i, g=grid: f"timestamp {iso(ts[i])} is not on the {g} grid",
            )
        )
    for name, col in zip(PRICES, (o, h, lo, c), strict=True):
        rules.append((col < 0, lambda i, n=name, x=col: f"negative {n} {float(x[i])!r}"))
    rules.append((v < 0, lambda i: f"negative volume {float(v[i])!r}"))
    hi_ref, lo_ref = np.maximum(o, c), np.minimum(o, c)
    rules.append(
        (
            h < hi_ref,
            lambda i: f"high {float(h[i])!r} is below max(open, close) {float(hi_ref[i])!r}",
        )
    )
    rules.append(
        (
            lo > lo_ref,
            lambda i: f"low {float(lo[i])!r} is above min(open, close) {float(lo_ref[i])!r}",
        )
    )
    return rules


def check_bars(bars: Bars, step: int) -> None:
    """Raise BarError for the first bar breaking a rule (step 0: ticks, no grid, ties allowed)."""
    n = len(bars)
    if any(np.shape(getattr(bars, c)) != (n,) for c in COLUMNS):
        raise ValueError("all columns must be 1-D with the same length as ts")
    if np.asarray(bars.ts).dtype.kind not in "iu":
        raise ValueError("timestamps must be integer ns")
    first, reason = n, None
    for bad, why in _rules(bars, step):
        hits = np.flatnonzero(bad[:first])
        if hits.size:
            first, reason = int(hits[0]), why
    if reason is not None:
        raise BarError(first, reason(first))  # type: ignore[operator]


def validate_bars(bars: Bars, step_ns: int = MINUTE_NS) -> None:
    """Raise ValueError unless the bars are well-formed, non-empty bars at step_ns."""
    if len(bars) == 0:
        raise ValueError("no bars")
    check_bars(bars, step_ns)


def count_gaps(ts: np.ndarray, step: int) -> int:
    """Number of places where one or more bars are missing between two stored bars."""
    if step == 0 or len(ts) < 2:
        return 0
    ts = np.asarray(ts, dtype=np.int64)
    ends = period_ends(ts[:-1], step) if is_calendar(step) else ts[:-1] + step
    return int(np.count_nonzero(ts[1:] > ends))


def guess_calendar(ts: np.ndarray) -> str:
    """'exchange' when two weeks or more of data have no bar on a Saturday or Sunday, else '24/7'."""
    if len(ts) == 0 or int(ts[-1]) - int(ts[0]) < 14 * DAY_NS:
        return "24/7"
    weekday = (np.asarray(ts) // DAY_NS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return "exchange" if not np.any(weekday >= 5) else "24/7"
