"""Metrics as a pure function of the bar-resolution equity curve and the closed round trips.

All values are canonical fractions (0.25 means 25%); an undefined value is None, never NaN/inf.
With ``eq`` the equity at each bar of the trading period, ``r = eq[1:] / eq[:-1] - 1`` and
``rf = (1 + risk_free_rate) ** (1 / periods_per_year) - 1`` the per-bar risk-free rate:

- total_return: eq[-1] / eq[0] - 1.
- irr_annualized (CAGR in bars): (eq[-1] / eq[0]) ** (periods_per_year / len(r)) - 1.
- volatility_annualized: std(r, ddof=1) * sqrt(periods_per_year).
- sharpe_ratio: mean(r - rf) / std(r, ddof=1) * sqrt(periods_per_year).
- sortino_ratio: mean(r - rf) / sqrt(mean(min(r - rf, 0) ** 2)) * sqrt(periods_per_year).
- max_drawdown: max(1 - eq / running_max(eq)), a positive fraction.
- max_drawdown_duration: the longest run of consecutive bars with eq below its running max.
- calmar_ratio: irr_annualized / max_drawdown.
- exposure: fraction of bars that end holding a position.
- both_hit: round trips whose exit bar touched both the stop and the target (resolved as stop).

engine.stats_curve has the period, calendar CAGR, drawdown-episode and buy-and-hold metrics,
engine.stats_trades the round-trip ones; the README's Metrics table defines each.

R metrics use each round trip's r_multiple = pnl / initial risk (units * initial stop distance);
trips without an initial risk (no stop) are left out, and all are None when none has one:

- pnl_r: sum of R; gross_profit_r: sum of positive R; gross_loss_r: sum of negative R (<= 0).
- expectancy_r: mean R per trip (= win rate * avg_win_r + loss rate * avg_loss_r, seed 003).
- avg_win_r: mean positive R; avg_loss_r: mean negative R (None without winners / losers).

periods_per_year defaults to 365 days over the bar interval (markets that trade every day);
callers pass 252 for exchange calendars of daily bars.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from engine.nb.metrics import curve_pass_nb, return_moments_nb
from engine.stats_common import YEAR_NS, finite, ratio
from engine.stats_curve import bench_stats, curve_stats, period_returns
from engine.stats_trades import duration_stats, pnl_stats
from engine.stats_trades import return_stats as trip_return_stats

__all__ = [
    "R_KEYS", "compute_metrics", "finite", "period_returns", "periods_per_year",
    "r_stats", "return_stats",
]  # fmt: skip

R_KEYS = ("pnl_r", "gross_profit_r", "gross_loss_r", "expectancy_r", "avg_win_r", "avg_loss_r")


class _Returns(threading.local):
    """One thread's buffer for an equity curve's bar returns, reused by its compute_metrics calls.

    A sweep's variants all have curves of one length: a fresh 8-byte-a-bar array each would cost
    a page fault every 4 KiB on first touch; compute_metrics reads the returns only before it
    returns, so reuse changes no figure.
    """

    def __init__(self) -> None:
        """Start without a buffer."""
        self.buf: np.ndarray = np.empty(0)

    def take(self, n: int) -> np.ndarray:
        """Return a buffer of at least n float64 (contents stale)."""
        if self.buf.size < n:
            self.buf = np.empty(n)
        return self.buf


_RETURNS = _Returns()
_NO_TIMES = np.zeros(0, dtype=np.int64)


def periods_per_year(interval_ns: int) -> float:
    """Return bars per 365-day year for a bar interval."""
    return YEAR_NS / interval_ns


def per_period_rate(risk_free_rate: float, ppy: float) -> float:
    """Return the per-bar equivalent of an annual rate, (1 + rate) ** (1 / ppy) - 1."""
    return (1.0 + risk_free_rate) ** (1.0 / ppy) - 1.0 if risk_free_rate else 0.0


def return_stats(
    eq: np.ndarray,
    ppy: float,
    moments: tuple[float, float, float] | None = None,
    risk_free_rate: float = 0.0,
) -> dict[str, float | None]:
    """Return the equity-curve metrics (moments: return_moments_nb(eq) if already computed)."""
    out: dict[str, float | None] = dict.fromkeys(
        ("total_return", "irr_annualized", "volatility_annualized", "sharpe_ratio", "sortino_ratio")
    )
    if eq.size == 0 or eq[0] <= 0:
        return out
    growth = eq[-1] / eq[0]
    out["total_return"] = finite(growth - 1.0)
    n = eq.size - 1
    if n >= 1 and growth > 0:
        out["irr_annualized"] = finite(growth ** (ppy / n) - 1.0)
    if n >= 2:
        mean, std, downside = (float(x) for x in (moments or return_moments_nb(eq)))
        rf = per_period_rate(risk_free_rate, ppy)
        if rf:
            excess = eq[1:] / eq[:-1] - 1.0 - rf
            below = np.minimum(excess, 0.0)
            mean, downside = float(excess.mean()), math.sqrt(float(below @ below) / n)
        out["volatility_annualized"] = finite(std * math.sqrt(ppy))
        out["sharpe_ratio"] = ratio(mean * math.sqrt(ppy), std)
        out["sortino_ratio"] = ratio(mean * math.sqrt(ppy), downside)
    return out


def r_stats(r_multiple: np.ndarray) -> dict[str, float | None]:
    """Return the R-unit metrics from round trips' R multiples (NaN: undefined, left out)."""
    r = r_multiple[np.isfinite(r_multiple)]
    if r.size == 0:
        return dict.fromkeys(R_KEYS)
    wins, losses = r[r > 0], r[r < 0]
    return {
        "pnl_r": finite(r.sum()),
        "gross_profit_r": finite(wins.sum()),
        "gross_loss_r": finite(losses.sum()),
        "expectancy_r": finite(r.mean()),
        "avg_win_r": finite(wins.mean()) if wins.size else None,
        "avg_loss_r": finite(losses.mean()) if losses.size else None,
    }


def compute_metrics(
    equity: np.ndarray,
    in_market: np.ndarray,
    pnl: np.ndarray,
    ppy: float,
    *,
    r_multiple: np.ndarray | None = None,
    both_hit: int = 0,
    timestamps: np.ndarray | None = None,
    benchmark: np.ndarray | None = None,
    commissions: float | None = None,
    trip_returns: np.ndarray | None = None,
    trip_times: np.ndarray | None = None,
    trip_bars: np.ndarray | None = None,
    risk_free_rate: float = 0.0,
    versus: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Return every metric for a bar-resolution equity curve and round-trip results.

    timestamps: ns of each equity point; benchmark: buy-and-hold value at each point;
    commissions: fees paid by every fill; trip_returns, trip_times ((2, k) entry and exit ns)
    and trip_bars (bars held) per round trip; versus: a benchmark symbol's close at each point,
    for alpha and beta instead of buy-and-hold. A metric whose input is missing is None.
    """
    eq = np.ascontiguousarray(equity, dtype=np.float64)
    pnl = np.asarray(pnl, dtype=np.float64)
    stamps = None if timestamps is None else np.ascontiguousarray(timestamps, dtype=np.int64)
    episodes = stamps is not None and stamps.size == eq.size > 0
    got = curve_pass_nb(
        eq, eq.size >= 3 and eq[0] > 0, _RETURNS.take(eq.size - 1),
        stamps if episodes else _NO_TIMES, episodes,
    )  # fmt: skip
    mdd, duration, moments, r = got[0], got[1], got[2:5], got[5]
    out = return_stats(eq, ppy, moments, risk_free_rate)
    mdd, duration = float(mdd), int(duration)
    out["max_drawdown"] = finite(mdd) if eq.size else None
    out["max_drawdown_duration"] = float(duration) if eq.size else None
    irr = out["irr_annualized"]
    out["calmar_ratio"] = ratio(irr, mdd) if irr is not None else None
    out.update(curve_stats(eq, stamps, got[6:] if episodes else None))
    bench = None if benchmark is None else np.asarray(benchmark, dtype=np.float64)
    vs = None if versus is None else np.asarray(versus, dtype=np.float64)
    out.update(bench_stats(r, bench, ppy, vs))
    # a count over the size: the same value as the mean of the booleans, without a float copy
    out["exposure"] = (
        finite(np.count_nonzero(in_market) / in_market.size) if in_market.size else None
    )
    out["commissions"] = finite(commissions)
    out.update(pnl_stats(pnl))
    ret = np.full(0, np.nan) if trip_returns is None else np.asarray(trip_returns, np.float64)
    out.update(trip_return_stats(ret))
    out.update(duration_stats(trip_times, trip_bars))
    out["both_hit"] = float(both_hit)
    rm = np.full(pnl.size, np.nan) if r_multiple is None else np.asarray(r_multiple, np.float64)
    out.update(r_stats(rm))
    return out
