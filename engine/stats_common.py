"""Helpers shared by the metric modules: finite floats, safe ratios, time units."""

from __future__ import annotations

import math

from engine.data.periods import DAY_NS

YEAR_NS = 365 * DAY_NS
JULIAN_YEAR_NS = 365.25 * DAY_NS  # calendar CAGR's year (backtesting.py's)


def finite(x: float | None) -> float | None:
    """Return x as a float, or None if it is None, NaN or infinite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def ratio(num: float, den: float) -> float | None:
    """Return num / den, or None when den is zero."""
    return finite(num / den) if den != 0 else None
