"""A seeded synthetic 1-minute OHLCV series with positive drift and short-lived trends."""

from __future__ import annotations

import numpy as np
from numba import njit

MINUTE_NS = 60_000_000_000
START_NS = 1_577_836_800 * 10**9  # 2020-01-01T00:00:00Z
WARMUP = 100  # bars before the first decision, so every engine's indicators are defined


def synthetic_bars(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Return ts/open/high/low/close/volume arrays of n one-minute bars.

    Log returns are drift + a slowly varying trend (AR(1), so moving-average crossovers catch
    some of it) + noise. The drift and trend keep an all-in crossover strategy's equity well
    above the price level at 1M bars despite ~13k round trips at 0.1% a fill, so no engine's
    minimum order size or unit rounding ever changes a trade.
    """
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n) * 6e-4
    trend = _ar1(rng.standard_normal(n) * 1e-5, 0.995)
    log_close = np.log(100.0) + np.cumsum(3e-6 + trend + noise)
    close = np.exp(log_close)
    open_ = np.empty(n)
    open_[0] = 100.0
    open_[1:] = close[:-1] * np.exp(rng.standard_normal(n - 1) * 1e-4)
    wick = np.abs(rng.standard_normal((2, n))) * 3e-4
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    volume = np.round(rng.lognormal(3.0, 1.0, n), 3)
    ts = START_NS + np.arange(n, dtype=np.int64) * MINUTE_NS
    return {"ts": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


@njit(cache=True)
def _ar1(shocks: np.ndarray, phi: float) -> np.ndarray:
    """Return x[i] = phi * x[i-1] + shocks[i] (x[-1] = 0)."""
    out = np.empty(shocks.shape[0])
    x = 0.0
    for i in range(shocks.shape[0]):
        x = phi * x + shocks[i]
        out[i] = x
    return out
