"""Metric kernels: one pass each over a bar-resolution equity curve."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def drawdown_nb(eq: np.ndarray) -> tuple[float, int]:
    """Return (max drawdown fraction, longest run of bars below the running peak)."""
    peak, worst, run, longest = -np.inf, 0.0, 0, 0
    for x in eq:
        if x >= peak:
            peak, run = x, 0
        else:
            run += 1
            longest = max(longest, run)
            worst = max(worst, 1.0 - x / peak)
    return worst, longest


@njit(cache=True, nogil=True)
def return_moments_nb(eq: np.ndarray) -> tuple[float, float, float]:
    """Return (mean, sample std, downside root mean square) of the simple bar returns."""
    n = eq.shape[0] - 1
    if n < 1:
        return np.nan, np.nan, np.nan
    total, down = 0.0, 0.0
    for i in range(n):
        r = eq[i + 1] / eq[i] - 1.0
        total += r
        if r < 0.0:
            down += r * r
    mean = total / n
    if n < 2:
        return mean, np.nan, np.sqrt(down / n)
    ss = 0.0
    for i in range(n):
        d = eq[i + 1] / eq[i] - 1.0 - mean
        ss += d * d
    return mean, np.sqrt(ss / (n - 1)), np.sqrt(down / n)
