"""Indicator kernels: float64 arrays in, float64 arrays out, NaN where undefined."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def first_valid_nb(x: np.ndarray) -> int:
    """Return the index of the first non-NaN value, or len(x) if there is none."""
    for i in range(x.shape[0]):
        if not np.isnan(x[i]):
            return i
    return x.shape[0]


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def macd_nb(
    close: np.ndarray, window_fast: int, window_slow: int, window_sign: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the MACD line (EMA fast - EMA slow), its signal line and the histogram."""
    line = ema_nb(close, window_fast) - ema_nb(close, window_slow)
    signal = ema_nb(line, window_sign)
    return line, signal, line - signal


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def wilder_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder smoothing seeded by the mean of the first n valid values: s = (s*(n-1) + x)/n."""
    out = np.full(x.shape[0], np.nan)
    start = first_valid_nb(x)
    seed_at = start + n - 1
    if seed_at >= x.shape[0]:
        return out
    value = np.mean(x[start : seed_at + 1])
    out[seed_at] = value
    for i in range(seed_at + 1, x.shape[0]):
        value = (value * (n - 1) + x[i]) / n
        out[i] = value
    return out


@njit(cache=True, nogil=True)
def wma_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Linearly weighted moving average (weights 1..n, newest heaviest); NaN until n values."""
    out = np.full(x.shape[0], np.nan)
    denom = n * (n + 1) / 2.0
    for i in range(n - 1, x.shape[0]):
        total = 0.0
        for j in range(n):
            total += (j + 1) * x[i - n + 1 + j]
        out[i] = total / denom
    return out


@njit(cache=True, nogil=True)
def rolling_std_nb(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """Standard deviation over n values with the given ddof (two-pass per window); NaN before."""
    out = np.full(x.shape[0], np.nan)
    if n - ddof <= 0:
        return out
    for i in range(n - 1, x.shape[0]):
        window = x[i - n + 1 : i + 1]
        mean = np.sum(window) / n
        out[i] = np.sqrt(np.sum((window - mean) ** 2) / (n - ddof))
    return out


@njit(cache=True, nogil=True)
def rolling_max_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Maximum of the last n values including the current one; NaN until n values."""
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        out[i] = np.max(x[i - n + 1 : i + 1])
    return out


@njit(cache=True, nogil=True)
def rolling_min_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Minimum of the last n values including the current one; NaN until n values."""
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        out[i] = np.min(x[i - n + 1 : i + 1])
    return out


@njit(cache=True, nogil=True)
def rsi_nb(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder RSI over n changes (seeded by their simple mean); 100 with no losses, 50 if flat."""
    m = close.shape[0]
    gains = np.full(m, np.nan)
    losses = np.full(m, np.nan)
    for i in range(1, m):
        change = close[i] - close[i - 1]
        gains[i] = max(change, 0.0)
        losses[i] = max(-change, 0.0)
    avg_gain = wilder_nb(gains, n)
    avg_loss = wilder_nb(losses, n)
    out = np.full(m, np.nan)
    for i in range(m):
        g, loss = avg_gain[i], avg_loss[i]
        if np.isnan(g) or np.isnan(loss):
            continue
        if loss == 0.0:
            out[i] = 50.0 if g == 0.0 else 100.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + g / loss)
    return out


@njit(cache=True, nogil=True)
def bollinger_nb(close: np.ndarray, n: int, k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (upper, mid, lower): mid = SMA(n), bands = mid ± k·population std (ddof=0)."""
    mid = sma_nb(close, n)
    std = rolling_std_nb(close, n, 0)
    return mid + k * std, mid, mid - k * std


@njit(cache=True, nogil=True)
def stoch_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int, d_window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (%K, %D): %K = 100·(close - lowest low)/(highest high - lowest low) over n bars
    (50 when the range is zero), %D = SMA of %K over d_window."""
    hh = rolling_max_nb(high, n)
    ll = rolling_min_nb(low, n)
    k = np.full(close.shape[0], np.nan)
    for i in range(n - 1, close.shape[0]):
        span = hh[i] - ll[i]
        k[i] = 50.0 if span == 0.0 else 100.0 * (close[i] - ll[i]) / span
    return k, sma_nb(k, d_window)


@njit(cache=True, nogil=True)
def adx_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return Wilder's (+DI, -DI, ADX); DIs from bar n, ADX (Wilder mean of DX) from bar 2n-1."""
    m = high.shape[0]
    pdm = np.full(m, np.nan)
    mdm = np.full(m, np.nan)
    tr = np.full(m, np.nan)
    for i in range(1, m):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        pdm[i] = up if up > down and up > 0.0 else 0.0
        mdm[i] = down if down > up and down > 0.0 else 0.0
        tr[i] = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    s_pdm, s_mdm, s_tr = wilder_nb(pdm, n), wilder_nb(mdm, n), wilder_nb(tr, n)
    pdi = np.full(m, np.nan)
    mdi = np.full(m, np.nan)
    dx = np.full(m, np.nan)
    for i in range(m):
        if np.isnan(s_tr[i]):
            continue
        pdi[i] = 0.0 if s_tr[i] == 0.0 else 100.0 * s_pdm[i] / s_tr[i]
        mdi[i] = 0.0 if s_tr[i] == 0.0 else 100.0 * s_mdm[i] / s_tr[i]
        total = pdi[i] + mdi[i]
        dx[i] = 0.0 if total == 0.0 else 100.0 * abs(pdi[i] - mdi[i]) / total
    return pdi, mdi, wilder_nb(dx, n)


@njit(cache=True, nogil=True)
def roc_nb(x: np.ndarray, n: int) -> np.ndarray:
    """Rate of change in percent: 100·(x[i]/x[i-n] - 1); NaN for the first n values."""
    out = np.full(x.shape[0], np.nan)
    for i in range(n, x.shape[0]):
        out[i] = 100.0 * (x[i] / x[i - n] - 1.0)
    return out


@njit(cache=True, nogil=True)
def cci_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """CCI: (tp - SMA(tp))/(0.015·mean absolute deviation) over n bars; 0 when the MAD is 0."""
    tp = (high + low + close) / 3.0
    out = np.full(tp.shape[0], np.nan)
    for i in range(n - 1, tp.shape[0]):
        window = tp[i - n + 1 : i + 1]
        mean = np.sum(window) / n
        mad = np.sum(np.abs(window - mean)) / n
        out[i] = 0.0 if mad == 0.0 else (tp[i] - mean) / (0.015 * mad)
    return out


@njit(cache=True, nogil=True)
def donchian_nb(high: np.ndarray, low: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (upper, lower): max high and min low over the last n bars INCLUDING the current."""
    return rolling_max_nb(high, n), rolling_min_nb(low, n)


@njit(cache=True, nogil=True)
def obv_nb(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-balance volume: 0 on the first bar, then ± volume as the close rises or falls."""
    out = np.zeros(close.shape[0])
    for i in range(1, close.shape[0]):
        if close[i] > close[i - 1]:
            out[i] = out[i - 1] + volume[i]
        elif close[i] < close[i - 1]:
            out[i] = out[i - 1] - volume[i]
        else:
            out[i] = out[i - 1]
    return out


@njit(cache=True, nogil=True)
def vwap_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, n: int
) -> np.ndarray:
    """Rolling VWAP of the typical price over n bars; NaN before n bars or with zero volume."""
    tp = (high + low + close) / 3.0
    out = np.full(tp.shape[0], np.nan)
    for i in range(n - 1, tp.shape[0]):
        vol = np.sum(volume[i - n + 1 : i + 1])
        if vol > 0.0:
            out[i] = np.sum(tp[i - n + 1 : i + 1] * volume[i - n + 1 : i + 1]) / vol
    return out


@njit(cache=True, nogil=True)
def rolling_std_returns_nb(close: np.ndarray, n: int) -> np.ndarray:
    """Sample std (ddof=1) of simple returns over the last n returns; NaN before bar n."""
    r = np.full(close.shape[0], np.nan)
    for i in range(1, close.shape[0]):
        r[i] = close[i] / close[i - 1] - 1.0
    return rolling_std_nb(r, n, 1)
