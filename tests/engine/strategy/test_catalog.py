"""The signal catalog: shape of every signal, roles, params, and values against references."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from backtesting.test import EURUSD, GOOG

from engine.data.store import Bars
from engine.strategy.catalog import EVENT_ROLES, ROLES, SIGNALS, describe_signals

REQUIRED = [
    "macd_bullish_cross",
    "macd_bearish_cross",
    "sma_cross_up",
    "sma_cross_down",
    "ema_cross_up",
    "ema_cross_down",
    "is_above_sma",
    "is_below_sma",
    "is_above_ema",
    "is_below_ema",
    "rsi_oversold",
    "rsi_overbought",
    "rsi_cross_up",
    "rsi_cross_down",
    "adx_trending",
    "di_bullish_cross",
    "di_bearish_cross",
    "bollinger_lower_break",
    "bollinger_upper_break",
    "stoch_oversold",
    "stoch_overbought",
    "stoch_bullish_cross",
    "roc_positive",
    "cci_oversold",
    "cci_overbought",
    "donchian_breakout_up",
    "donchian_breakout_down",
    "volume_spike",
    "obv_rising",
    "price_above_vwap",
    "volatility_high",
]
PARAM_NAMES = {"window", "window_fast", "window_slow", "window_sign", "threshold", "std"}
PARAM_NAMES |= {"lower", "upper", "multiplier"}
EVENT = re.compile(r"_(cross|break|reenter)(_|$)")  # events; a Donchian breakout is a state


def frame_bars(df: pd.DataFrame) -> Bars:
    """Bars from a backtesting.py OHLCV frame."""
    d = df.astype(np.float64)
    ts = d.index.values.astype("datetime64[ns]").astype(np.int64)
    cols = (d[c].to_numpy() for c in ("Open", "High", "Low", "Close", "Volume"))
    return Bars(ts, *cols)


def bars_of(close: list[float], volume: list[float] | None = None, spread: float = 0.0) -> Bars:
    """Tiny hand-built bars: open = close, high/low = close ± spread."""
    c = np.array(close, dtype=np.float64)
    v = np.ones_like(c) if volume is None else np.array(volume, dtype=np.float64)
    return Bars(np.arange(c.shape[0], dtype=np.int64), c, c + spread, c - spread, c, v)


GOOG_BARS = frame_bars(GOOG)
EURUSD_BARS = frame_bars(EURUSD)


def defaults(name: str) -> dict:
    """A signal's params at their defaults."""
    return {k: p.default for k, p in SIGNALS[name].params.items()}


def run(name: str, bars: Bars, **params: float) -> np.ndarray:
    """Compute a signal with defaults overridden by params."""
    return SIGNALS[name].compute(bars, defaults(name) | params)


def test_catalog_has_at_least_25_signals_including_the_required_ones():
    assert len(SIGNALS) >= 25
    assert set(REQUIRED) <= set(SIGNALS)


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_signal_is_bool_of_bar_length_and_fires_on_real_data(name):
    counts = []
    for bars in (GOOG_BARS, EURUSD_BARS):
        out = run(name, bars)
        assert out.dtype == np.bool_ and out.shape == (len(bars),)
        counts.append(int(out.sum()))
    # volatility_high (std of returns > 2%) never fires on hourly EURUSD, but does on GOOG daily
    assert max(counts) > 0


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_params_are_typed_bounded_and_named_by_convention(name):
    spec = SIGNALS[name]
    assert spec.description and spec.roles
    assert set(spec.roles) <= set(ROLES)
    is_event = EVENT.search(name) is not None
    assert spec.roles == (EVENT_ROLES if is_event else ROLES)
    for key, p in spec.params.items():
        assert key in PARAM_NAMES
        assert p.type in (int, float) and isinstance(p.default, p.type)
        assert p.minimum <= p.default <= p.maximum
        assert p.description
    for small, large in spec.ordered:
        assert spec.params[small].default < spec.params[large].default


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_signal_computes_at_its_param_bounds(name):
    spec = SIGNALS[name]
    low = {k: p.minimum for k, p in spec.params.items()}
    high = {k: p.maximum for k, p in spec.params.items()}
    for small, large in spec.ordered:
        low[large] = max(low[large], low[small] + 1)
        high[small] = min(high[small], high[large] - 1)
    for params in (low, high):
        out = spec.compute(GOOG_BARS, params)
        assert out.dtype == np.bool_ and out.shape == (len(GOOG_BARS),)


def test_describe_signals_is_json_and_complete():
    described = json.loads(json.dumps(describe_signals()))
    assert [d["name"] for d in described] == sorted(SIGNALS)
    macd = next(d for d in described if d["name"] == "macd_bullish_cross")
    assert macd["roles"] == ["TRIGGER", "EXIT"]
    assert macd["constraints"] == ["window_fast < window_slow"]
    assert macd["params"]["window_sign"] == {
        "type": "int",
        "default": 9,
        "minimum": 2,
        "maximum": 500,
        "description": "signal-line EMA window",
    }
    rsi = next(d for d in described if d["name"] == "rsi_oversold")
    assert rsi["params"]["threshold"]["type"] == "float"
    assert rsi["params"]["threshold"]["default"] == 30.0


def test_is_above_sma_by_hand():
    # SMA(3) = nan, nan, 2, 7/3, 2, 8/3
    out = run("is_above_sma", bars_of([1, 2, 3, 2, 1, 5]), window=3)
    assert out.tolist() == [False, False, True, False, False, True]


def test_sma_cross_up_and_down_by_hand():
    bars = bars_of([3, 2, 1, 2, 3, 4, 1])
    # SMA(2): nan 2.5 1.5 1.5 2.5 3.5 2.5 ; SMA(3): nan nan 2 5/3 2 3 8/3
    up = run("sma_cross_up", bars, window_fast=2, window_slow=3)
    down = run("sma_cross_down", bars, window_fast=2, window_slow=3)
    assert up.tolist() == [False, False, False, False, True, False, False]
    assert down.tolist() == [False, False, False, False, False, False, True]


def test_rsi_cross_up_by_hand():
    # RSI(1) is 100 after a rise, 0 after a fall, 50 when flat
    out = run("rsi_cross_up", bars_of([1, 0, 1, 1, 0, 2]), window=1, threshold=50.0)
    assert out.tolist() == [False, False, True, False, False, True]


def test_bollinger_lower_break_by_hand():
    # bar 4: window [2, 2, 0], mid 4/3, population std sqrt(8/9) ≈ 0.943, lower ≈ 0.39 > 0
    out = run("bollinger_lower_break", bars_of([2, 2, 2, 2, 0]), window=3, std=1.0)
    assert out.tolist() == [False, False, False, False, True]


def test_donchian_breakout_uses_the_previous_bars_channel():
    bars = bars_of([1.5, 2.5, 3.5, 4.5, 3.9], spread=0.5)  # highs 2, 3, 4, 5, 4.4
    out = run("donchian_breakout_up", bars, window=2)
    assert out.tolist() == [False, False, True, True, False]


def test_volume_spike_by_hand():
    out = run("volume_spike", bars_of([1] * 5, [1, 1, 1, 10, 1]), window=3, multiplier=2.0)
    assert out.tolist() == [False, False, False, True, False]


def test_macd_bullish_cross_against_pandas():
    close = GOOG.Close.astype(np.float64).reset_index(drop=True)

    def ema(s: pd.Series, n: int) -> pd.Series:
        start = s.first_valid_index()
        seeded = s.copy()
        seeded.iloc[: start + n - 1] = np.nan
        seeded.iloc[start + n - 1] = s.iloc[start : start + n].mean()
        return seeded.ewm(alpha=2 / (n + 1), adjust=False).mean()

    line = ema(close, 12) - ema(close, 26)
    signal = ema(line, 9)
    ref = (line > signal) & (line.shift(1) <= signal.shift(1))
    np.testing.assert_array_equal(run("macd_bullish_cross", GOOG_BARS), ref.to_numpy())


def test_volume_spike_and_obv_rising_against_pandas():
    df = EURUSD.astype(np.float64).reset_index(drop=True)
    spike = df.Volume > 2.0 * df.Volume.rolling(20).mean()
    np.testing.assert_array_equal(run("volume_spike", EURUSD_BARS), spike.to_numpy())
    obv = (np.sign(df.Close.diff()).fillna(0.0) * df.Volume).cumsum()
    rising = obv > obv.rolling(20).mean()
    np.testing.assert_array_equal(run("obv_rising", EURUSD_BARS), rising.to_numpy())


def test_donchian_breakout_down_against_pandas():
    df = GOOG.astype(np.float64).reset_index(drop=True)
    ref = df.Close < df.Low.rolling(20).min().shift(1)
    np.testing.assert_array_equal(run("donchian_breakout_down", GOOG_BARS), ref.to_numpy())
