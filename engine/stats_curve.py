"""Equity-curve metrics beyond the moments: period, calendar CAGR, drawdown episodes,
buy-and-hold comparison (return, alpha, beta), and returns by calendar month and year.

``eq`` is the equity at each bar of the trading period, ``ts`` those bars' times (ns, UTC) and
``bench`` the buy-and-hold value of the run's symbols at the same bars (any scale).
"""

from __future__ import annotations

import numpy as np

from engine.nb.metrics import ascending_nb, beta_nb, episodes_nb
from engine.stats_common import DAY_NS, JULIAN_YEAR_NS, finite

CURVE_KEYS = (
    "duration_days", "equity_final", "equity_peak", "cagr", "avg_drawdown",
    "avg_drawdown_duration", "max_drawdown_duration_days", "avg_drawdown_duration_days",
)  # fmt: skip
BENCH_KEYS = ("buy_and_hold_return", "benchmark_return", "alpha", "beta")


def curve_stats(
    eq: np.ndarray, ts: np.ndarray | None, episodes: tuple | None = None
) -> dict[str, float | None]:
    """Return the period, final and peak equity, calendar CAGR and drawdown-episode metrics
    (episodes: episodes_nb(eq, ts) if already computed)."""
    out: dict[str, float | None] = dict.fromkeys(CURVE_KEYS)
    if eq.size == 0:
        return out
    out["equity_final"] = finite(eq[-1])
    if ts is None or ts.size != eq.size:
        out["equity_peak"] = finite(eq.max())
        return out
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    count, depth, bars, ns_max, ns_sum, peak = episodes or episodes_nb(eq, ts)
    out["equity_peak"] = finite(peak)
    span = int(ts[-1] - ts[0])
    out["duration_days"] = span / DAY_NS
    growth = eq[-1] / eq[0] if eq[0] > 0 else np.nan
    if span > 0 and growth > 0:
        out["cagr"] = finite(growth ** (JULIAN_YEAR_NS / span) - 1.0)
    if count:
        out["avg_drawdown"] = finite(depth / count)
        out["avg_drawdown_duration"] = bars / count
        out["max_drawdown_duration_days"] = ns_max / DAY_NS
        out["avg_drawdown_duration_days"] = ns_sum / count / DAY_NS
    else:
        out["max_drawdown_duration_days"] = 0.0
    return out


def bench_stats(
    r: np.ndarray, bench: np.ndarray | None, ppy: float, versus: np.ndarray | None = None
) -> dict[str, float | None]:
    """Return buy-and-hold's return over the period and the run's alpha and beta against it, or
    against `versus` (a benchmark symbol's closes at each point) when the run names one.

    r: the equity's bar returns (empty when undefined); beta = cov(r, b) / var(b) of the simple
    bar returns; alpha = (mean(r) - beta * mean(b)) * periods per year (quantstats' greeks).
    """
    out: dict[str, float | None] = dict.fromkeys(BENCH_KEYS)
    if versus is not None and versus.size and versus[0] > 0:
        out["benchmark_return"] = finite(versus[-1] / versus[0] - 1.0)
    if bench is not None and bench.size and bench[0] > 0:
        out["buy_and_hold_return"] = finite(bench[-1] / bench[0] - 1.0)
    bench = versus if versus is not None else bench
    if bench is None or bench.size == 0 or not bench[0] > 0:
        return out
    if r.size < 2 or bench.size != r.size + 1:
        return out
    mean_r, mean_b, beta = beta_nb(r, np.ascontiguousarray(bench))
    out["beta"] = finite(beta)
    if out["beta"] is not None:
        out["alpha"] = finite((mean_r - beta * mean_b) * ppy)
    return out


def returns_by(
    eq: np.ndarray, ts: np.ndarray, unit: str, ascending: bool | None = None
) -> list[dict]:
    """Return the compounded equity return of each calendar month ("M") or year ("Y"), UTC.

    A period's return is its last bar's equity over the previous period's last bar's (the first
    period: over the first bar's) minus 1, the product of its bars' (1 + return). `ascending`:
    whether ts never decreases, if the caller knows.
    """
    if eq.size == 0:
        return []
    ends, periods = period_ends(np.asarray(ts, dtype=np.int64), unit, ascending)
    before = np.concatenate([eq[:1], eq[ends[:-1]]])
    key = "month" if unit == "M" else "year"
    labels = periods.astype(str).tolist()
    values = (eq[ends] / before - 1.0).tolist()
    return [{key: k, "return": finite(v)} for k, v in zip(labels, values, strict=True)]


def period_ends(
    ts: np.ndarray, unit: str, ascending: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (index of the last bar of each run of bars in one calendar period, that period).

    Ascending times (a run's clock) are cut at the starts of the periods between the first and
    the last bar by binary search: a few hundred look-ups, not a calendar conversion per bar.
    """
    if not (ascending_nb(ts) if ascending is None else ascending):
        period = ts.astype("datetime64[ns]").astype(f"datetime64[{unit}]")
        ends = np.append(np.flatnonzero(period[1:] != period[:-1]), ts.size - 1)
        return ends, period[ends]
    first, last = (np.datetime64(int(t), "ns").astype(f"datetime64[{unit}]") for t in ts[[0, -1]])
    periods = np.arange(first, last + 1)
    starts = periods[1:].astype("datetime64[ns]").astype(np.int64)
    cut = np.append(np.searchsorted(ts, starts, side="left"), ts.size)  # next period's first bar
    held = cut > np.concatenate([[0], cut[:-1]])  # periods holding at least one bar
    return cut[held] - 1, periods[held]


def period_returns(eq: np.ndarray, ts: np.ndarray) -> dict[str, list[dict]]:
    """Return the results' `returns_by_month` and `returns_by_year` tables."""
    eq = np.asarray(eq, dtype=np.float64)
    ts = np.asarray(ts, dtype=np.int64)
    up = bool(ascending_nb(ts))
    return {
        "returns_by_month": returns_by(eq, ts, "M", up),
        "returns_by_year": returns_by(eq, ts, "Y", up),
    }
