"""Indicator kernels against pandas references."""

import numpy as np
import pandas as pd
import pytest

from engine.nb.indicators import atr_nb, ema_nb, macd_nb, sma_nb
from engine.nb.signals import above_nb, cross_above_nb


def sma_seeded_ewm(s: pd.Series, n: int, alpha: float) -> pd.Series:
    """Pandas EWM (adjust=False) seeded with the SMA of the first n valid values."""
    first = s.first_valid_index()
    pos = s.index.get_loc(first)
    seeded = s.copy()
    seeded.iloc[: pos + n - 1] = np.nan
    seeded.iloc[pos + n - 1] = s.iloc[pos : pos + n].mean()
    return seeded.ewm(alpha=alpha, adjust=False).mean()


def assert_close(ours: np.ndarray, ref: pd.Series) -> None:
    """Same NaN pattern and values within 1e-9 relative."""
    ref_arr = ref.to_numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref_arr))
    np.testing.assert_allclose(ours, ref_arr, rtol=1e-9, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 10, 50, 200])
def test_sma_matches_pandas_rolling(demo_bars, n):
    s = pd.Series(demo_bars.close)
    assert_close(sma_nb(demo_bars.close, n), s.rolling(n).mean())


@pytest.mark.parametrize("n", [2, 12, 26, 100])
def test_ema_matches_pandas_ewm_seeded_by_sma(demo_bars, n):
    s = pd.Series(demo_bars.close)
    assert_close(ema_nb(demo_bars.close, n), sma_seeded_ewm(s, n, 2 / (n + 1)))


def test_ema_shorter_than_window_is_all_nan():
    assert np.isnan(ema_nb(np.array([1.0, 2.0]), 3)).all()


def test_macd_matches_pandas(demo_bars):
    s = pd.Series(demo_bars.close)
    line_ref = sma_seeded_ewm(s, 12, 2 / 13) - sma_seeded_ewm(s, 26, 2 / 27)
    signal_ref = sma_seeded_ewm(line_ref, 9, 2 / 10)
    line, signal, hist = macd_nb(demo_bars.close, 12, 26, 9)
    assert_close(line, line_ref)
    assert_close(signal, signal_ref)
    assert_close(hist, line_ref - signal_ref)
    assert np.isnan(signal[: 25 + 8]).all() and not np.isnan(signal[25 + 8])


@pytest.mark.parametrize("n", [1, 14, 30])
def test_atr_matches_wilder_via_pandas(demo_bars, n):
    h, low, c = (pd.Series(x) for x in (demo_bars.high, demo_bars.low, demo_bars.close))
    prev = c.shift(1)
    tr = pd.concat([h - low, (h - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    ours = atr_nb(demo_bars.high, demo_bars.low, demo_bars.close, n)
    assert_close(ours, sma_seeded_ewm(tr, n, 1 / n))


def test_atr_by_hand():
    high = np.array([10.0, 12.0, 11.0, 13.0])
    low = np.array([9.0, 10.0, 8.0, 11.0])
    close = np.array([9.5, 11.0, 9.0, 12.0])
    # TR = 1, max(2, 2.5, 0.5)=2.5, max(3, 0, 3)=3, max(2, 4, 2)=4
    atr = atr_nb(high, low, close, 2)
    np.testing.assert_allclose(atr, [np.nan, 1.75, (1.75 + 3) / 2, ((1.75 + 3) / 2 + 4) / 2])


def test_cross_above_and_above_by_hand():
    a = np.array([1.0, 2.0, 3.0, 2.0, np.nan, 5.0, 5.0])
    b = np.array([2.0, 2.0, 2.0, 2.5, 2.0, 2.0, 5.0])
    assert cross_above_nb(a, b).tolist() == [False, False, True, False, False, False, False]
    assert above_nb(a, b).tolist() == [False, False, True, False, False, True, False]
