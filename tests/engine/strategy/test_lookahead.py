"""No lookahead: changing bars after k never changes any signal or indicator at or before k.

Every catalog signal and every registry indicator is computed on hourly bars, on the same
timeframe and on coarser ones (4h, 1d) through on_timeframe, then recomputed after every bar past
a cut point has been scaled by random factors. Also checks on_timeframe against pandas.
"""

import numpy as np
import pandas as pd
import pytest
from backtesting.test import EURUSD

from engine.data import store
from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import MINUTE_NS, Bars, resample
from engine.strategy.catalog import SIGNALS
from engine.strategy.indicators import INDICATORS
from engine.strategy.timeframe import on_timeframe

HOUR_NS = 60 * MINUTE_NS
TIMEFRAMES = ("1h", "4h", "1d")


def demo_hourly() -> Bars:
    """About four months of hourly bars resampled from the 1-minute demo generator."""
    minutes = generate_bars(
        DEMO_SYMBOLS[2], 1_704_067_200_000_000_000, 120 * 1440, np.random.default_rng(11)
    )
    return resample(minutes, HOUR_NS)


def eurusd_hourly() -> Bars:
    """Real EURUSD hourly bars (with weekend gaps) from backtesting.py."""
    d = EURUSD.astype(np.float64)
    ts = d.index.values.astype("datetime64[ns]").astype(np.int64)
    assert (ts % HOUR_NS == 0).all()
    return Bars(ts, *(d[c].to_numpy() for c in ("Open", "High", "Low", "Close", "Volume")))


DATASETS = {"demo": demo_hourly(), "eurusd": eurusd_hourly()}


def perturb(bars: Bars, k: int, rng: np.random.Generator) -> Bars:
    """Scale every bar after k by random factors, keeping high >= open, close >= low."""
    n, m = len(bars), len(bars) - k - 1
    scale = rng.uniform(0.6, 1.6, m)
    o = bars.open[k + 1 :] * scale * rng.uniform(0.97, 1.03, m)
    c = bars.close[k + 1 :] * scale * rng.uniform(0.97, 1.03, m)
    h = np.maximum(bars.high[k + 1 :] * scale * rng.uniform(1.0, 1.05, m), np.maximum(o, c))
    low = np.minimum(bars.low[k + 1 :] * scale * rng.uniform(0.95, 1.0, m), np.minimum(o, c))
    v = bars.volume[k + 1 :] * rng.uniform(0.1, 10.0, m)

    def join(head: np.ndarray, tail: np.ndarray) -> np.ndarray:
        return np.concatenate((head[: k + 1], tail))

    out = Bars(
        bars.ts.copy(),
        join(bars.open, o),
        join(bars.high, h),
        join(bars.low, low),
        join(bars.close, c),
        join(bars.volume, v),
    )
    assert len(out) == n
    return out


def cut_points(n: int, rng: np.random.Generator) -> list[int]:
    """A few cut points: early, middle, late and random ones (most fall inside a day or 4h)."""
    return sorted({60, n // 2, n - 3, *rng.integers(100, n - 2, 3).tolist()})


def assert_no_lookahead(compute, bars: Bars, timeframe: str, seed: int) -> int:
    """Check the series up to each cut is unchanged by perturbing later bars; count changes."""
    rng = np.random.default_rng(seed)
    full = on_timeframe(bars, "1h", timeframe, compute)
    assert full.shape == (len(bars),)
    changed = 0
    for k in cut_points(len(bars), rng):
        again = on_timeframe(perturb(bars, k, rng), "1h", timeframe, compute)
        np.testing.assert_array_equal(again[: k + 1], full[: k + 1], err_msg=f"cut at {k}")
        changed += not np.array_equal(again, full, equal_nan=True)
    return changed


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("timeframe", TIMEFRAMES)
@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_signal_never_looks_ahead(name, timeframe, dataset):
    spec = SIGNALS[name]
    params = {k: p.default for k, p in spec.params.items()}
    bars = DATASETS[dataset]
    assert_no_lookahead(lambda b: spec.compute(b, params), bars, timeframe, seed=len(name))


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("timeframe", TIMEFRAMES)
@pytest.mark.parametrize("name", sorted(INDICATORS))
def test_indicator_never_looks_ahead(name, timeframe, dataset):
    spec = INDICATORS[name]
    bars = DATASETS[dataset]
    changed = assert_no_lookahead(
        lambda b: spec.compute(b, spec.defaults), bars, timeframe, seed=len(name)
    )
    assert changed > 0  # the perturbation does reach the series after the cut


def reference(bars: Bars, rule: str, step_ns: int) -> np.ndarray:
    """Pandas: coarse closes keyed by the time the coarse bar closes, as-of each hour's close."""
    idx = pd.to_datetime(bars.ts)
    coarse = pd.Series(bars.close, idx).resample(rule, label="left", closed="left").last()
    coarse = coarse.dropna()
    coarse.index = coarse.index + pd.Timedelta(step_ns, "ns")
    hour_close = idx + pd.Timedelta(1, "h")
    return coarse.reindex(hour_close, method="ffill").to_numpy()


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize(("timeframe", "rule"), [("4h", "4h"), ("1d", "1D")])
def test_on_timeframe_sees_the_last_closed_coarse_bar(dataset, timeframe, rule):
    bars = DATASETS[dataset]
    ours = on_timeframe(bars, "1h", timeframe, lambda b: b.close)
    ref = reference(bars, rule, store.RESOLUTIONS[timeframe])
    np.testing.assert_array_equal(ours, ref)


def test_on_timeframe_before_the_first_close_is_nan_or_false():
    bars = DATASETS["demo"]  # starts at midnight UTC: the first 4h bar closes with hour 3
    floats = on_timeframe(bars, "1h", "4h", lambda b: b.close)
    bools = on_timeframe(bars, "1h", "4h", lambda b: np.ones(len(b), dtype=np.bool_))
    assert np.isnan(floats[:3]).all() and floats[3] == bars.close[3]
    assert bools.dtype == np.bool_ and bools.tolist()[:5] == [False, False, False, True, True]


def test_on_timeframe_same_interval_is_the_plain_computation():
    bars = DATASETS["eurusd"]
    spec = SIGNALS["rsi_oversold"]
    params = {k: p.default for k, p in spec.params.items()}
    out = on_timeframe(bars, "1h", "1h", lambda b: spec.compute(b, params))
    np.testing.assert_array_equal(out, spec.compute(bars, params))
    np.testing.assert_array_equal(
        on_timeframe(bars, "1h", "1h", lambda b: b.close * 2.0), bars.close * 2.0
    )


def test_on_timeframe_rejects_finer_unknown_and_non_multiple(monkeypatch):
    bars = DATASETS["demo"]
    with pytest.raises(ValueError, match="finer"):
        on_timeframe(bars, "1h", "15m", lambda b: b.close)
    with pytest.raises(ValueError, match="unknown timeframe"):
        on_timeframe(bars, "1h", "2h", lambda b: b.close)
    with pytest.raises(ValueError, match="unknown base interval"):
        on_timeframe(bars, "2w", "1M", lambda b: b.close)
    with pytest.raises(ValueError, match="not a multiple"):
        on_timeframe(bars, "1w", "1M", lambda b: b.close)  # weeks do not tile months
    monkeypatch.setitem(store.RESOLUTIONS, "7m", 7 * MINUTE_NS)
    with pytest.raises(ValueError, match="not a multiple"):
        on_timeframe(bars, "5m", "7m", lambda b: b.close)


@pytest.mark.parametrize("timeframe", TIMEFRAMES)
def test_the_check_catches_a_series_that_peeks_one_bar_ahead(timeframe):
    def peek(b: Bars) -> np.ndarray:
        return np.append(b.close[1:], np.nan)

    with pytest.raises(AssertionError, match="cut at"):
        assert_no_lookahead(peek, DATASETS["demo"], timeframe, seed=1)
