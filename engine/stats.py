"""Metrics as a pure function of the bar-resolution equity curve and the closed round trips.

All values are canonical fractions (0.25 means 25%); an undefined value is None, never NaN/inf.
With ``eq`` the equity at each bar of the trading period and ``r = eq[1:] / eq[:-1] - 1``:

- total_return: eq[-1] / eq[0] - 1.
- irr_annualized (CAGR): (eq[-1] / eq[0]) ** (periods_per_year / len(r)) - 1.
- volatility_annualized: std(r, ddof=1) * sqrt(periods_per_year).
- sharpe_ratio: mean(r) / std(r, ddof=1) * sqrt(periods_per_year); risk-free rate 0.
- sortino_ratio: mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(periods_per_year).
- max_drawdown: max(1 - eq / running_max(eq)), a positive fraction.
- max_drawdown_duration: the longest run of consecutive bars with eq below its running max.
- calmar_ratio: irr_annualized / max_drawdown.
- win_rate: winning round trips (pnl > 0) / closed round trips.
- profit_factor: sum of winning pnl / -sum of losing pnl (None without losses).
- expectancy: mean pnl per closed round trip, in account currency.
- avg_win: mean pnl of winners; avg_loss: mean pnl of losers (a negative number).
- exposure: fraction of bars that end holding a position.
- trade_count: closed round trips.
- wins / losses: round trips with pnl > 0 / pnl < 0 (break-even trades are neither).
- bothHit: round trips whose exit bar touched both the stop and the target (resolved as stop).

R metrics use each round trip's r_multiple = pnl / initial risk (units * initial stop distance);
trips without an initial risk (no stop) are left out, and all are None when none has one:

- pnlR: sum of R; grossProfitR: sum of positive R; grossLossR: sum of negative R (<= 0).
- expectancyR: mean R per trip (= win rate * avgWinR + loss rate * avgLossR, seed 003).
- avgWinR: mean positive R; avgLossR: mean negative R (None without winners / losers).

periods_per_year defaults to 365 days over the bar interval (markets that trade every day);
callers pass 252 for exchange calendars of daily bars.
"""

from __future__ import annotations

import math

import numpy as np

from engine.nb.metrics import drawdown_nb, equity_stats_nb, return_moments_nb

YEAR_NS = 365 * 86_400 * 1_000_000_000
R_KEYS = ("pnlR", "grossProfitR", "grossLossR", "expectancyR", "avgWinR", "avgLossR")


def periods_per_year(interval_ns: int) -> float:
    """Return bars per 365-day year for a bar interval."""
    return YEAR_NS / interval_ns


def finite(x: float | None) -> float | None:
    """Return x as a float, or None if it is None, NaN or infinite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _ratio(num: float, den: float) -> float | None:
    """Return num / den, or None when den is zero."""
    return finite(num / den) if den != 0 else None


def drawdown_stats(eq: np.ndarray) -> tuple[float, int]:
    """Return (max drawdown fraction, longest run of bars below the running peak)."""
    worst, longest = drawdown_nb(np.ascontiguousarray(eq, dtype=np.float64))
    return float(worst), int(longest)


def return_stats(
    eq: np.ndarray, ppy: float, moments: tuple[float, float, float] | None = None
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
        out["volatility_annualized"] = finite(std * math.sqrt(ppy))
        out["sharpe_ratio"] = _ratio(mean * math.sqrt(ppy), std)
        out["sortino_ratio"] = _ratio(mean * math.sqrt(ppy), downside)
    return out


def trade_stats(pnl: np.ndarray) -> dict[str, float | None]:
    """Return the round-trip metrics from the pnl of each closed round trip."""
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    return {
        "win_rate": _ratio(wins.size, pnl.size),
        "profit_factor": _ratio(float(wins.sum()), -float(losses.sum())),
        "expectancy": finite(pnl.mean()) if pnl.size else None,
        "avg_win": finite(wins.mean()) if wins.size else None,
        "avg_loss": finite(losses.mean()) if losses.size else None,
        "trade_count": float(pnl.size),
    }


def r_stats(r_multiple: np.ndarray) -> dict[str, float | None]:
    """Return the R-unit metrics from round trips' R multiples (NaN: undefined, left out)."""
    r = r_multiple[np.isfinite(r_multiple)]
    if r.size == 0:
        return dict.fromkeys(R_KEYS)
    wins, losses = r[r > 0], r[r < 0]
    return {
        "pnlR": finite(r.sum()),
        "grossProfitR": finite(wins.sum()),
        "grossLossR": finite(losses.sum()),
        "expectancyR": finite(r.mean()),
        "avgWinR": finite(wins.mean()) if wins.size else None,
        "avgLossR": finite(losses.mean()) if losses.size else None,
    }


def compute_metrics(
    equity: np.ndarray,
    in_market: np.ndarray,
    pnl: np.ndarray,
    ppy: float,
    *,
    r_multiple: np.ndarray | None = None,
    both_hit: int = 0,
) -> dict[str, float | None]:
    """Return every metric for a bar-resolution equity curve and round-trip results."""
    eq = np.ascontiguousarray(equity, dtype=np.float64)
    mdd, duration, *moments = equity_stats_nb(eq, eq.size >= 3 and eq[0] > 0)
    out = return_stats(eq, ppy, tuple(moments))  # type: ignore[arg-type]
    mdd, duration = float(mdd), int(duration)
    out["max_drawdown"] = finite(mdd) if eq.size else None
    out["max_drawdown_duration"] = float(duration) if eq.size else None
    irr = out["irr_annualized"]
    out["calmar_ratio"] = _ratio(irr, mdd) if irr is not None else None
    out.update(trade_stats(np.asarray(pnl, dtype=np.float64)))
    out["exposure"] = finite(np.mean(in_market)) if in_market.size else None
    pnl = np.asarray(pnl, dtype=np.float64)
    out["wins"] = float((pnl > 0).sum())
    out["losses"] = float((pnl < 0).sum())
    out["bothHit"] = float(both_hit)
    r = np.full(pnl.size, np.nan) if r_multiple is None else np.asarray(r_multiple, np.float64)
    out.update(r_stats(r))
    return out
