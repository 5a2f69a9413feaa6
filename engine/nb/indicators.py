"""Indicator kernels: float64 arrays in, float64 arrays out, NaN where undefined."""

import numpy as np
from numba import njit


@njit(cache=True)
def first_valid_nb(x: np.ndarray) -> int:
    """Return the index of the first non-NaN value, or len(x) if there is none."""
    for i in range(x.shape[0]):
        if not np.isnan(x[i]):
            return i
    return x.shape[0]


@njit(cache=True)
def sma_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average over n values; NaN until n values (or while a NaN is in the window)."""
    out = np.full(x.shape[0], np.nan)
    total = 0.0
    nans = 0
    for i in range(x.shape[0]):
        if np.isnan(x[i]):
            nans += 1
        else:
            total += x[i]
        if i >= n:
            if np.isnan(x[i - n]):
                nans -= 1
            else:
                total -= x[i - n]
        if i >= n - 1 and nans == 0:
            out[i] = total / n
    return out


@njit(cache=True)
def ema_nb(x: np.ndarray, n: int) -> np.ndarray:
    """EMA with alpha 2/(n+1), seeded with the mean of the first n valid values; NaN before."""
    out = np.full(x.shape[0], np.nan)
    start = first_valid_nb(x)
    seed_at = start + n - 1
    if seed_at >= x.shape[0]:
        return out
    alpha = 2.0 / (n + 1.0)
    value = np.mean(x[start : seed_at + 1])
    out[seed_at] = value
    for i in range(seed_at + 1, x.shape[0]):
        value = alpha * x[i] + (1.0 - alpha) * value
        out[i] = value
    return out


@njit(cache=True)
def macd_nb(
    close: np.ndarray, window_fast: int, window_slow: int, window_sign: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the MACD line (EMA fast - EMA slow), its signal line and the histogram."""
    line = ema_nb(close, window_fast) - ema_nb(close, window_slow)
    signal = ema_nb(line, window_sign)
    return line, signal, line - signal


@njit(cache=True)
def true_range_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range; the first bar uses high - low."""
    out = np.empty(high.shape[0])
    for i in range(high.shape[0]):
        hl = high[i] - low[i]
        if i == 0:
            out[i] = hl
        else:
            out[i] = max(hl, abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    return out


@njit(cache=True)
def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Wilder ATR: mean of the first n true ranges, then atr = (atr*(n-1) + tr)/n; NaN before."""
    tr = true_range_nb(high, low, close)
    out = np.full(tr.shape[0], np.nan)
    if n > tr.shape[0]:
        return out
    value = np.mean(tr[:n])
    out[n - 1] = value
    for i in range(n, tr.shape[0]):
        value = (value * (n - 1) + tr[i]) / n
        out[i] = value
    return out
