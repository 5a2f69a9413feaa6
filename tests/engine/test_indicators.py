"""Indicator kernels against plain pandas references on real prices (GOOG daily, EURUSD hourly)."""

import numpy as np
import pandas as pd
import pytest
from backtesting.test import EURUSD, GOOG

from engine.nb.indicators import (
    adx_nb,
    atr_nb,
    bollinger_nb,
    cci_nb,
    donchian_nb,
    ema_nb,
    macd_nb,
    obv_nb,
    roc_nb,
    rolling_std_returns_nb,
    rsi_nb,
    sma_nb,
    stoch_nb,
    vwap_nb,
    wma_nb,
)
from engine.nb.signals import above_nb, cross_above_nb, cross_below_nb

DATASETS = {"GOOG": GOOG, "EURUSD": EURUSD}


@pytest.fixture(params=sorted(DATASETS))
def df(request) -> pd.DataFrame:
    """One real OHLCV frame with float columns and a plain integer index."""
    return DATASETS[request.param].astype(np.float64).reset_index(drop=True)


def cols(df: pd.DataFrame, *names: str) -> list[np.ndarray]:
    """Contiguous float64 arrays of the named columns."""
    return [np.ascontiguousarray(df[n].to_numpy(np.float64)) for n in names]


def sma_seeded_ewm(s: pd.Series, n: int, alpha: float) -> pd.Series:
    """Pandas EWM (adjust=False) seeded with the SMA of the first n valid values."""
    first = s.first_valid_index()
    pos = s.index.get_loc(first)
    seeded = s.copy()
    seeded.iloc[: pos + n - 1] = np.nan
    seeded.iloc[pos + n - 1] = s.iloc[pos : pos + n].mean()
    return seeded.ewm(alpha=alpha, adjust=False).mean()


def wilder(s: pd.Series, n: int) -> pd.Series:
    """Wilder's smoothing (alpha 1/n) seeded by the simple mean of the first n values."""
    return sma_seeded_ewm(s, n, 1.0 / n)


def true_range(df: pd.DataFrame) -> pd.Series:
    """True range from bar 1 on; NaN on bar 0."""
    prev = df.Close.shift(1)
    tr = pd.concat([df.High - df.Low, (df.High - prev).abs(), (df.Low - prev).abs()], axis=1)
    return tr.max(axis=1).where(prev.notna())


def assert_close(ours: np.ndarray, ref: pd.Series | np.ndarray) -> None:
    """Same NaN pattern and values within 1e-9 relative (1e-12 absolute near zero)."""
    ref_arr = np.asarray(ref, dtype=np.float64)
    assert ours.dtype == np.float64 and ours.shape == ref_arr.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref_arr))
    np.testing.assert_allclose(ours, ref_arr, rtol=1e-9, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 10, 50, 200])
def test_sma(df, n):
    (close,) = cols(df, "Close")
    assert_close(sma_nb(close, n), df.Close.rolling(n).mean())


@pytest.mark.parametrize("n", [2, 12, 26, 100])
def test_ema_seeded_by_sma(df, n):
    (close,) = cols(df, "Close")
    assert_close(ema_nb(close, n), sma_seeded_ewm(df.Close, n, 2 / (n + 1)))


@pytest.mark.parametrize("n", [1, 5, 20])
def test_wma(df, n):
    (close,) = cols(df, "Close")
    w = np.arange(1, n + 1, dtype=np.float64)
    ref = df.Close.rolling(n).apply(lambda x: np.dot(x, w) / w.sum(), raw=True)
    assert_close(wma_nb(close, n), ref)


def test_macd(df):
    (close,) = cols(df, "Close")
    line_ref = sma_seeded_ewm(df.Close, 12, 2 / 13) - sma_seeded_ewm(df.Close, 26, 2 / 27)
    signal_ref = sma_seeded_ewm(line_ref, 9, 2 / 10)
    line, signal, hist = macd_nb(close, 12, 26, 9)
    assert_close(line, line_ref)
    assert_close(signal, signal_ref)
    assert_close(hist, line_ref - signal_ref)
    assert np.isnan(signal[: 25 + 8]).all() and not np.isnan(signal[25 + 8])


@pytest.mark.parametrize("n", [1, 14, 30])
def test_atr_wilder(df, n):
    high, low, close = cols(df, "High", "Low", "Close")
    tr = true_range(df)
    tr.iloc[0] = df.High.iloc[0] - df.Low.iloc[0]  # atr_nb uses high - low on the first bar
    assert_close(atr_nb(high, low, close, n), wilder(tr, n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi_wilder(df, n):
    (close,) = cols(df, "Close")
    change = df.Close.diff()
    gain = wilder(change.clip(lower=0.0), n)
    loss = wilder((-change).clip(lower=0.0), n)
    ref = 100.0 - 100.0 / (1.0 + gain / loss)
    ref = ref.where(loss != 0.0, np.where(gain == 0.0, 50.0, 100.0)).where(gain.notna())
    ours = rsi_nb(close, n)
    assert_close(ours, ref)
    assert np.isnan(ours[:n]).all() and not np.isnan(ours[n])


@pytest.mark.parametrize(("n", "k"), [(20, 2.0), (10, 1.5)])
def test_bollinger_population_std(df, n, k):
    (close,) = cols(df, "Close")
    mid = df.Close.rolling(n).mean()
    std = df.Close.rolling(n).std(ddof=0)
    upper, mid_ours, lower = bollinger_nb(close, n, k)
    assert_close(mid_ours, mid)
    assert_close(upper, mid + k * std)
    assert_close(lower, mid - k * std)


@pytest.mark.parametrize(("n", "d"), [(14, 3), (5, 5)])
def test_stochastic(df, n, d):
    high, low, close = cols(df, "High", "Low", "Close")
    hh, ll = df.High.rolling(n).max(), df.Low.rolling(n).min()
    k_ref = (100.0 * (df.Close - ll) / (hh - ll)).where(hh != ll, 50.0).where(hh.notna())
    k, d_line = stoch_nb(high, low, close, n, d)
    assert_close(k, k_ref)
    assert_close(d_line, k_ref.rolling(d).mean())
    assert np.isnan(d_line[: n + d - 2]).all() and not np.isnan(d_line[n + d - 2])


@pytest.mark.parametrize("n", [7, 14])
def test_adx_wilder(df, n):
    high, low, close = cols(df, "High", "Low", "Close")
    up = df.High.diff()
    down = -df.Low.diff()
    pdm = up.where((up > down) & (up > 0), 0.0).where(up.notna())
    mdm = down.where((down > up) & (down > 0), 0.0).where(up.notna())
    tr = wilder(true_range(df), n)
    pdi = 100.0 * wilder(pdm, n) / tr
    mdi = 100.0 * wilder(mdm, n) / tr
    dx = 100.0 * (pdi - mdi).abs() / (pdi + mdi)
    plus, minus, adx = adx_nb(high, low, close, n)
    assert_close(plus, pdi)
    assert_close(minus, mdi)
    assert_close(adx, wilder(dx, n))
    assert np.isnan(adx[: 2 * n - 1]).all() and not np.isnan(adx[2 * n - 1])


@pytest.mark.parametrize("n", [1, 12])
def test_roc_percent(df, n):
    (close,) = cols(df, "Close")
    assert_close(roc_nb(close, n), 100.0 * df.Close.pct_change(n, fill_method=None))


@pytest.mark.parametrize("n", [5, 20])
def test_cci(df, n):
    high, low, close = cols(df, "High", "Low", "Close")
    tp = (df.High + df.Low + df.Close) / 3.0
    mean = tp.rolling(n).mean()
    mad = tp.rolling(n).apply(lambda x: np.abs(x - x.mean()).mean(), raw=True)
    ref = ((tp - mean) / (0.015 * mad)).where(mad != 0.0, 0.0).where(mad.notna())
    # (tp - mean) cancels: allow the absolute error of one ulp of tp, divided by 0.015·MAD
    ours = cci_nb(high, low, close, n)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    tol = 1e-9 * np.abs(ref) + 4 * np.spacing(tp) / (0.015 * mad)
    assert (np.abs(ours - ref)[mad.notna()] <= tol[mad.notna()]).all()


@pytest.mark.parametrize("n", [1, 20])
def test_donchian_includes_current_bar(df, n):
    high, low = cols(df, "High", "Low")
    upper, lower = donchian_nb(high, low, n)
    assert_close(upper, df.High.rolling(n).max())
    assert_close(lower, df.Low.rolling(n).min())
    assert (upper[n - 1 :] >= high[n - 1 :]).all()


def test_obv(df):
    close, volume = cols(df, "Close", "Volume")
    ref = (np.sign(df.Close.diff()).fillna(0.0) * df.Volume).cumsum()
    assert_close(obv_nb(close, volume), ref)


@pytest.mark.parametrize("n", [1, 20])
def test_rolling_vwap(df, n):
    high, low, close, volume = cols(df, "High", "Low", "Close", "Volume")
    tp = (df.High + df.Low + df.Close) / 3.0
    pv = (tp * df.Volume).rolling(n).apply(np.sum, raw=True)
    ref = pv / df.Volume.rolling(n).apply(np.sum, raw=True)
    assert_close(vwap_nb(high, low, close, volume, n), ref)


@pytest.mark.parametrize("n", [2, 20])
def test_rolling_std_of_returns_sample(df, n):
    (close,) = cols(df, "Close")
    ref = df.Close.pct_change(fill_method=None).rolling(n).std(ddof=1)
    ours = rolling_std_returns_nb(close, n)
    assert_close(ours, ref)
    assert np.isnan(ours[:n]).all() and not np.isnan(ours[n])


def test_short_input_is_all_nan():
    x = np.array([1.0, 2.0])
    for out in (ema_nb(x, 3), wma_nb(x, 3), rsi_nb(x, 2), roc_nb(x, 2)):
        assert np.isnan(out).all()
    assert np.isnan(adx_nb(x, x, x, 2)[2]).all()


def test_atr_by_hand():
    high = np.array([10.0, 12.0, 11.0, 13.0])
    low = np.array([9.0, 10.0, 8.0, 11.0])
    close = np.array([9.5, 11.0, 9.0, 12.0])
    # TR = 1, max(2, 2.5, 0.5)=2.5, max(3, 0, 3)=3, max(2, 4, 2)=4
    atr = atr_nb(high, low, close, 2)
    np.testing.assert_allclose(atr, [np.nan, 1.75, (1.75 + 3) / 2, ((1.75 + 3) / 2 + 4) / 2])


def test_rsi_flat_and_rising_by_hand():
    assert rsi_nb(np.array([5.0, 5.0, 5.0]), 2).tolist()[2] == 50.0
    assert rsi_nb(np.array([1.0, 2.0, 3.0]), 2).tolist()[2] == 100.0


def test_cross_and_above_by_hand():
    a = np.array([1.0, 2.0, 3.0, 2.0, np.nan, 5.0, 5.0])
    b = np.array([2.0, 2.0, 2.0, 2.5, 2.0, 2.0, 5.0])
    assert cross_above_nb(a, b).tolist() == [False, False, True, False, False, False, False]
    assert cross_below_nb(a, b).tolist() == [False, False, False, True, False, False, False]
    assert above_nb(a, b).tolist() == [False, False, True, False, False, True, False]
