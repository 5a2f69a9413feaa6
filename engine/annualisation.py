"""How many bars make a year, for annualising returns, volatility, Sharpe and Sortino.

The factor follows the bars a run really has, first rule that applies:

1. ``periods_per_year`` set by the run.
2. Monthly bars (``1M``): 12; weekly bars (``1w``): 52.
3. Bars whose median spacing is 27 days or more: 12 (monthly data stored at a finer
   resolution); 6 to 8 days: 52 (weekly data).
4. Ticks: the ticks' count over their span, per 365-day year.
5. An exchange calendar: 252 for daily bars; 252 x the median bars per trading day intraday.
6. Otherwise (a market trading every day): 365 days over the bar length.

The risk-free rate is annual; Sharpe and Sortino subtract its per-bar equivalent
``(1 + rate) ** (1 / periods_per_year) - 1`` from each bar's return (as quantstats does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.bars import DAY_NS, RESOLUTIONS
from engine.nb.metrics import gaps_equal_nb
from engine.stats import periods_per_year
from engine.stats_common import YEAR_NS

TRADING_DAYS = 252


@dataclass(frozen=True)
class Annualisation:
    """The factor and risk-free rate a run's metrics use, and where the factor came from."""

    periods_per_year: float
    risk_free_rate: float
    basis: str

    def wire(self) -> dict[str, float | str]:
        """The results body's `annualization` object."""
        return {
            "periods_per_year": self.periods_per_year,
            "risk_free_rate": self.risk_free_rate,
            "basis": self.basis,
        }


def median_gap(ts: np.ndarray, step: int | None = None) -> int | None:
    """The median of the positive gaps between bar times (ns, truncated), None if there are none.

    ``step`` is the spacing the bars most likely have (their resolution's length): when more
    than half of all gaps equal it, it is more than half of the positive ones too, so both
    middle elements of their sorted order are ``step`` and the median is ``step`` exactly,
    found by one comparison pass instead of a selection over every gap.
    """
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    if step is None and ts.size > 1:
        step = int(ts[1] - ts[0])
    if step is not None and step > 0 and 2 * gaps_equal_nb(ts, step) > max(ts.size - 1, 0):
        return int(step)
    gaps = np.diff(ts)
    gaps = gaps[gaps > 0]
    return int(np.median(gaps)) if gaps.size else None


def bars_per_year(
    resolution: str | None, ts: np.ndarray, calendar: str = "24/7"
) -> tuple[float, str]:
    """Return (bars per year, the rule that gave it) for bars at a resolution (see above)."""
    if resolution == "1M":
        return 12.0, "monthly bars: 12 a year"
    if resolution == "1w":
        return 52.0, "weekly bars: 52 a year"
    gap = median_gap(ts, RESOLUTIONS.get(resolution or ""))
    if gap is not None and gap >= 27 * DAY_NS:
        return 12.0, "bars a month apart (median spacing): 12 a year"
    if gap is not None and 6 * DAY_NS <= gap <= 8 * DAY_NS:
        return 52.0, "bars a week apart (median spacing): 52 a year"
    if resolution == "tick" or resolution not in RESOLUTIONS:
        return _measured(ts, gap, resolution)
    if calendar == "exchange":
        return _exchange(resolution, ts)
    return (
        periods_per_year(RESOLUTIONS[resolution]),
        f"{resolution} bars trading every day: 365 days of them a year",
    )


def _measured(ts: np.ndarray, gap: int | None, resolution: str | None) -> tuple[float, str]:
    """Ticks (or bars of no known resolution): their count over their span, per year."""
    ts = np.asarray(ts, dtype=np.int64)
    span = int(ts[-1] - ts[0]) if ts.size > 1 else 0
    what = "ticks" if resolution == "tick" else "bars"
    if span > 0:
        return (ts.size - 1) * YEAR_NS / span, f"{what} over their span, per 365-day year"
    return float(YEAR_NS / (gap or DAY_NS)), f"{what} of unknown spacing, as daily"


def _exchange(resolution: str, ts: np.ndarray) -> tuple[float, str]:
    """252 trading days a year, times the median bars per trading day for intraday bars."""
    if resolution == "1d":
        return float(TRADING_DAYS), "daily bars of an exchange calendar: 252 trading days"
    days = np.asarray(ts, dtype=np.int64) // DAY_NS
    if days.size == 0:
        return float(TRADING_DAYS), "daily bars of an exchange calendar: 252 trading days"
    per_day = float(np.median(np.unique(days, return_counts=True)[1]))
    return (
        TRADING_DAYS * per_day,
        f"{resolution} bars of an exchange calendar: 252 trading days x {per_day:g} bars",
    )


def annualisation(
    resolution: str | None,
    ts: np.ndarray,
    calendar: str = "24/7",
    periods_per_year: float | None = None,
    risk_free_rate: float = 0.0,
) -> Annualisation:
    """The annualisation of a run: the run's own factor if it sets one, else the bars'."""
    if periods_per_year is not None:
        return Annualisation(float(periods_per_year), risk_free_rate, "set by the run")
    ppy, basis = bars_per_year(resolution, ts, calendar)
    return Annualisation(ppy, risk_free_rate, basis)
