"""Bar store: round trip, slicing, resampling against pandas, aliases, atomic writes."""

import numpy as np
import pandas as pd
import pytest

from engine.data.demo import DEMO_SYMBOLS, ensure_demo_data, generate_bars
from engine.data.store import MINUTE_NS, Bars, BarStore

T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00Z
HOUR = 60 * MINUTE_NS


@pytest.fixture
def store(tmp_path) -> BarStore:
    return BarStore(tmp_path / "bars")


@pytest.fixture
def bars() -> Bars:
    # 3 days and 30 minutes, starting 00:07, so the first and last hours are partial
    start = T0 + 7 * MINUTE_NS
    return generate_bars(DEMO_SYMBOLS[0], start, 3 * 1440 + 30, np.random.default_rng(1))


def test_write_load_round_trip(store, bars):
    store.write("AAPL", bars, aliases=["apple"], synthetic=False, description="x")
    got = store.load("AAPL", "1m", 0, 2**62)
    for col in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(got, col), getattr(bars, col))
    info = store.resolve("aapl")
    assert (
        info.bar_count == len(bars) and info.first_ts == bars.ts[0] and info.last_ts == bars.ts[-1]
    )
    assert info.base_resolution == "1m" and "1d" in info.resolutions


def test_load_slice_boundaries_are_inclusive(store, bars):
    store.write("AAPL", bars, aliases=[], synthetic=False, description="")
    got = store.load("AAPL", "1m", int(bars.ts[10]), int(bars.ts[20]))
    np.testing.assert_array_equal(got.ts, bars.ts[10:21])
    between = store.load("AAPL", "1m", int(bars.ts[10]) + 1, int(bars.ts[20]) - 1)
    np.testing.assert_array_equal(between.ts, bars.ts[11:20])
    assert len(store.load("AAPL", "1m", 0, int(bars.ts[0]) - 1)) == 0


def test_resample_1h_matches_pandas(store, bars):
    store.write("AAPL", bars, aliases=[], synthetic=False, description="")
    got = store.load("AAPL", "1h", 0, 2**62)
    df = pd.DataFrame(
        {c: getattr(bars, c) for c in ("open", "high", "low", "close", "volume")},
        index=pd.to_datetime(bars.ts, unit="ns", utc=True),
    )
    ref = df.resample("1h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    ref = ref.iloc[:-1]  # the last hour (00:00-00:37 on day 4) is incomplete in the store
    np.testing.assert_array_equal(got.ts, ref.index.as_unit("ns").asi8)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(got, col), ref[col].to_numpy())
    np.testing.assert_allclose(got.volume, ref["volume"].to_numpy(), rtol=1e-12)
    # the partial first hour is complete in the store (nothing before it), so it is kept
    assert got.ts[0] == T0


def test_resample_range_selects_bucket_open_times(store, bars):
    store.write("AAPL", bars, aliases=[], synthetic=False, description="")
    got = store.load("AAPL", "1h", T0 + HOUR + 1, T0 + 3 * HOUR)
    assert got.ts.tolist() == [T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert got.open[0] == bars.open[bars.ts.tolist().index(T0 + 2 * HOUR)]


def test_resolve_aliases_case_insensitively(store):
    ensure_demo_data(store, days=2)
    assert store.resolve("btc").name == "BTC-USD"
    assert store.resolve("EthUsd").name == "ETH-USD"
    assert store.resolve("btc-usd").name == "BTC-USD"
    assert store.resolve("DOGE") is None
    assert store.load("Btc", "1d", 0, 2**62).ts.tolist() == [T0, T0 + 24 * HOUR]


def test_load_errors(store, bars):
    store.write("AAPL", bars, aliases=[], synthetic=False, description="")
    with pytest.raises(KeyError):
        store.load("NOPE", "1m", 0, 1)
    with pytest.raises(ValueError):
        store.load("AAPL", "2h", 0, 1)


def test_bad_write_changes_nothing(store, bars):
    store.write("AAPL", bars, aliases=[], synthetic=False, description="")
    bad = Bars(bars.ts, bars.open, bars.low - 1.0, bars.low, bars.close, bars.volume)
    with pytest.raises(ValueError):
        store.write("AAPL", bad, aliases=[], synthetic=False, description="")
    np.testing.assert_array_equal(store.load("AAPL", "1m", 0, 2**62).high, bars.high)
    assert [p.name for p in store.root.iterdir()] == ["AAPL"]


def test_rewrite_replaces_data_and_cache(store, bars):
    store.write("AAPL", bars, aliases=[], synthetic=False, description="")
    store.load("AAPL", "1m", 0, 2**62)
    shorter = Bars(
        *(getattr(bars, c)[:100] for c in ("ts", "open", "high", "low", "close", "volume"))
    )
    store.write("AAPL", shorter, aliases=["A"], synthetic=True, description="")
    assert len(store.load("A", "1m", 0, 2**62)) == 100


def test_demo_data_is_deterministic_and_sane(tmp_path):
    a, b = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    assert ensure_demo_data(a, days=3) == [s.name for s in DEMO_SYMBOLS]
    assert ensure_demo_data(a, days=3) == []
    ensure_demo_data(b, days=3)
    x, y = a.load("ETH", "1m", 0, 2**62), b.load("ETH", "1m", 0, 2**62)
    np.testing.assert_array_equal(x.close, y.close)
    assert len(x) == 3 * 1440 and np.all(np.diff(x.ts) == MINUTE_NS)
    np.testing.assert_array_equal(x.open[1:], x.close[:-1])
    assert np.all(x.high >= np.maximum(x.open, x.close)) and np.all(
        x.low <= np.minimum(x.open, x.close)
    )
    assert np.all(x.volume > 0)
    assert a.resolve("ETH").synthetic and "synthetic demo data" in a.resolve("ETH").description
