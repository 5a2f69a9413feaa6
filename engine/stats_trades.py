"""Round-trip metrics: counts, win rate, pnl and return statistics, SQN, Kelly, durations.

Every value is None where undefined (no trades, no losses, fewer than two trades for SQN).
``pnl`` is each closed round trip's pnl in account currency, net of fees; ``ret`` its return
(the round trip's ``return``: pnl over the capital it committed, margin plus entry fee).
"""

from __future__ import annotations

import math

import numpy as np

from engine.stats_common import DAY_NS, finite, ratio

TRADE_KEYS = (
    "trade_count", "wins", "losses", "win_rate", "profit_factor", "expectancy", "avg_win",
    "avg_loss", "sqn", "kelly_criterion", "best_trade_pct", "worst_trade_pct", "avg_trade_pct",
    "expectancy_pct", "profit_factor_pct", "max_trade_duration_days", "avg_trade_duration_days",
    "max_trade_duration_bars", "avg_trade_duration_bars",
)  # fmt: skip


def pnl_stats(pnl: np.ndarray) -> dict[str, float | None]:
    """Return the metrics of the round trips' pnl in account currency."""
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    avg_win = finite(wins.mean()) if wins.size else None
    avg_loss = finite(losses.mean()) if losses.size else None
    win_rate = ratio(wins.size, pnl.size)
    return {
        "trade_count": float(pnl.size),
        "wins": float(wins.size),
        "losses": float(losses.size),
        "win_rate": win_rate,
        "profit_factor": ratio(float(wins.sum()), -float(losses.sum())),
        "expectancy": finite(pnl.mean()) if pnl.size else None,
        "avg_win": avg_win,
        "avg_loss": avg_loss,
        "sqn": _sqn(pnl),
        "kelly_criterion": _kelly(win_rate, avg_win, avg_loss),
    }


def _sqn(pnl: np.ndarray) -> float | None:
    """Return sqrt(n) * mean(pnl) / std(pnl, ddof=1), Van Tharp's system quality number."""
    if pnl.size < 2:
        return None
    return ratio(math.sqrt(pnl.size) * float(pnl.mean()), float(pnl.std(ddof=1)))


def _kelly(win_rate: float | None, avg_win: float | None, avg_loss: float | None) -> float | None:
    """Return win rate - (1 - win rate) / (avg win / -avg loss); None without wins or losses."""
    if win_rate is None or avg_win is None or avg_loss is None:
        return None
    return finite(win_rate - (1.0 - win_rate) / (avg_win / -avg_loss))


def return_stats(ret: np.ndarray) -> dict[str, float | None]:
    """Return the metrics of the round trips' returns (fractions; NaN returns left out)."""
    r = ret[np.isfinite(ret)]
    if r.size == 0:
        return dict.fromkeys(
            ("best_trade_pct", "worst_trade_pct", "avg_trade_pct", "expectancy_pct",
             "profit_factor_pct")
        )  # fmt: skip
    growth = 1.0 + r
    geometric = math.expm1(float(np.log(growth).mean())) if (growth > 0).all() else None
    return {
        "best_trade_pct": finite(r.max()),
        "worst_trade_pct": finite(r.min()),
        "avg_trade_pct": finite(geometric),
        "expectancy_pct": finite(r.mean()),
        "profit_factor_pct": ratio(float(r[r > 0].sum()), -float(r[r < 0].sum())),
    }


def duration_stats(times: np.ndarray | None, bars: np.ndarray | None) -> dict[str, float | None]:
    """Return the longest and mean round-trip durations: times (2, k) ns, bars (k,) bars held."""
    out: dict[str, float | None] = dict.fromkeys(
        ("max_trade_duration_days", "avg_trade_duration_days", "max_trade_duration_bars",
         "avg_trade_duration_bars")
    )  # fmt: skip
    if times is not None and times.shape[1]:
        span = (times[1] - times[0]) / DAY_NS
        out["max_trade_duration_days"] = finite(span.max())
        out["avg_trade_duration_days"] = finite(span.mean())
    if bars is not None and bars.size:
        out["max_trade_duration_bars"] = float(bars.max())
        out["avg_trade_duration_bars"] = finite(bars.mean())
    return out
