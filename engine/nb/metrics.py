"""Metric kernels: one pass each over a bar-resolution equity curve."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def ascending_nb(ts: np.ndarray) -> bool:
    """Return whether ts never decreases."""
    ok = True
    for i in range(1, ts.shape[0]):  # no early return: the loop vectorises (8x faster)
        ok &= ts[i] >= ts[i - 1]
    return ok


@njit(cache=True, nogil=True)
def gaps_equal_nb(ts: np.ndarray, step: int) -> int:
    """Return how many consecutive times are exactly step apart."""
    count = 0
    for i in range(1, ts.shape[0]):  # a sum, no branch: the loop vectorises
        count += ts[i] - ts[i - 1] == step
    return count


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
def episodes_nb(eq: np.ndarray, ts: np.ndarray) -> tuple[int, float, int, int, int, float]:
    """Return drawdown episodes' (count, summed depth, summed bars, max and summed ns) and the
    peak equity.

    An episode starts at the first bar below the running peak and ends at the next bar at or
    above it (the recovery) or at the last bar. Its depth is 1 - its lowest equity / the peak,
    its bars the bars below the peak, its time from the peak's bar to the recovery (or the last).
    """
    count, depth_sum, bars_sum, ns_max, ns_sum = 0, 0.0, 0, 0, 0
    peak, peak_i, low = -np.inf, 0, np.inf
    last = eq.shape[0] - 1
    for i in range(eq.shape[0]):
        x = eq[i]
        below = not x >= peak
        if below:
            low = min(low, x)
        if low < np.inf and (not below or i == last):
            span = ts[i] - ts[peak_i]
            count, depth_sum, ns_sum = count + 1, depth_sum + (1.0 - low / peak), ns_sum + span
            ns_max = max(ns_max, span)
            bars_sum += i - peak_i - (0 if below else 1)
            low = np.inf
        if not below:
            peak, peak_i = x, i
    return count, depth_sum, bars_sum, ns_max, ns_sum, peak


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")  # x / 0: inf or NaN, as numpy
def beta_nb(r: np.ndarray, bench: np.ndarray) -> tuple[float, float, float]:
    """Return (mean of r, mean of b, beta = cov(r, b) / var(b)), b the bar returns of the
    benchmark's values `bench` (one more than r), computed here rather than stored.

    One pass of sums, vectorised (fastmath: the sums' order may change, by a few ulps; returns
    are small and their means smaller, so the centring loses a few digits at most); beta is NaN
    with fewer than 2 returns or a constant b.
    """
    n = r.shape[0]
    if n < 2:
        return np.nan, np.nan, np.nan
    sr, sb, srb, sbb = 0.0, 0.0, 0.0, 0.0
    for i in range(n):
        b = bench[i + 1] / bench[i] - 1.0
        sr += r[i]
        sb += b
        srb += r[i] * b
        sbb += b * b
    mr, mb = sr / n, sb / n
    var = sbb - n * mb * mb
    beta = (srb - n * mr * mb) / var if var > 0.0 else np.nan
    return mr, mb, beta


@njit(cache=True, nogil=True)
def curve_pass_nb(
    eq: np.ndarray, moments: bool, out: np.ndarray, ts: np.ndarray, episodes: bool
) -> tuple[float, int, float, float, float, np.ndarray, int, float, int, int, int, float]:
    """Return drawdown_nb(eq) + return_moments_nb(eq) (NaNs unless moments), the bar returns
    (empty unless moments, written into out[: eq.size - 1], a reused buffer) and
    episodes_nb(eq, ts) (zeros and a peak of -inf unless episodes), bit for bit.

    The same float operations in the same order as those kernels, in one pass plus a pass over
    the stored returns: a drawdown below the worst so far is skipped before its division (the
    test keeps a 1e-9 margin on the fraction, so every candidate is still divided exactly as
    before and the maximum is the same), and the episodes' comparisons run beside the
    variance's sum (one chain of dependent additions, a few cycles a bar) instead of in a pass
    of their own.
    """
    n = eq.shape[0] - 1
    peak, worst, run, longest = -np.inf, 0.0, 0, 0
    total, down = 0.0, 0.0
    moments = moments and n >= 1
    r = out[: n if moments else 0]
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
    mean, std, down_rms = np.nan, np.nan, np.nan
    if moments:
        mean, down_rms = total / n, np.sqrt(down / n)
    variance = moments and n >= 2
    ss = 0.0
    count, depth_sum, bars_sum, ns_max, ns_sum = 0, 0.0, 0, 0, 0
    top, top_i, low = -np.inf, 0, np.inf
    for i in range(eq.shape[0] if episodes else (n if variance else 0)):
        if variance and i < n:
            d = r[i] - mean
            ss += d * d
        if not episodes:
            continue
        x = eq[i]
        below = not x >= top
        if below:
            low = min(low, x)
        if low < np.inf and (not below or i == n):
            span = ts[i] - ts[top_i]
            count, depth_sum, ns_sum = count + 1, depth_sum + (1.0 - low / top), ns_sum + span
            ns_max = max(ns_max, span)
            bars_sum += i - top_i - (0 if below else 1)
            low = np.inf
        if not below:
            top, top_i = x, i
    if variance:
        std = np.sqrt(ss / (n - 1))
    return (worst, longest, mean, std, down_rms, r, count, depth_sum, bars_sum, ns_max, ns_sum, top)
