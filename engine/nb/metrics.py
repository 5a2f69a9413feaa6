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


@njit(cache=True, nogil=True)
def equity_stats_nb(eq: np.ndarray, moments: bool) -> tuple[float, int, float, float, float]:
    """Return drawdown_nb(eq) + return_moments_nb(eq) (NaNs unless moments), bit for bit.

    The same float operations in the same order as the two kernels, in one pass plus a pass
    over the stored returns: a drawdown below the worst so far is skipped before its division
    (the test keeps a 1e-9 margin on the fraction, so every candidate is still divided exactly
    as before and the maximum is the same).
    """
    n = eq.shape[0] - 1
    peak, worst, run, longest = -np.inf, 0.0, 0, 0
    total, down = 0.0, 0.0
    moments = moments and n >= 1
    r = np.empty(n if moments else 0)
    bar = np.inf  # at or below this a bar may deepen the drawdown: peak * (1 - worst + margin)
    for i in range(eq.shape[0]):
        x = eq[i]
        if x >= peak:
            peak, run = x, 0
            bar = peak * ((1.0 - worst) + 1e-9) if peak > 0.0 else np.inf
        else:
            run += 1
            longest = max(longest, run)
            if not x > bar:
                worst = max(worst, 1.0 - x / peak)
                bar = peak * ((1.0 - worst) + 1e-9) if peak > 0.0 else np.inf
        if moments and i > 0:
            ri = x / eq[i - 1] - 1.0
            r[i - 1] = ri
            total += ri
            if ri < 0.0:
                down += ri * ri
    if not moments:
        return worst, longest, np.nan, np.nan, np.nan
    mean = total / n
    if n < 2:
        return worst, longest, mean, np.nan, np.sqrt(down / n)
    ss = 0.0
    for i in range(n):
        d = r[i] - mean
        ss += d * d
    return worst, longest, mean, np.sqrt(ss / (n - 1)), np.sqrt(down / n)
