"""Hand-made bars and a fills digest for the template tests."""

from __future__ import annotations

import numpy as np

from engine.data.store import Bars

H = 3600 * 10**9
D = 24 * H


def make_bars(rows: list[tuple[float, float, float, float]], step: int = H, t0: int = 0) -> Bars:
    """Bars from (open, high, low, close) rows, one every step ns from t0."""
    a = np.array(rows, dtype=float)
    ts = t0 + np.arange(len(rows), dtype=np.int64) * step
    return Bars(ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.ones(len(rows)))


def fills(out) -> list[tuple[int, str, float, float, float, str]]:
    """Fills as (bar, side, quantity, price, commission, liquidity), commission rounded."""
    return [
        (t["timestamp"] // H, t["side"], t["quantity"], t["price"], round(t["commission"], 9),
         t["liquidity"])
        for t in out.trades
    ]  # fmt: skip
