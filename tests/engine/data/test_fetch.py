"""The ccxt fetcher against a FAKE exchange: no exchange is reachable from the build machines.

FakeBinance answers from recorded pages built from Binance's documented GET /api/v3/klines
response (arrays of open time ms, open, high, low, close, volume as strings, close time, quote
volume, trades, taker base, taker quote, ignore; at most `limit` rows with open time >= since)
and parses them the way ccxt's fetch_ohlcv does ([ms, o, h, l, c, v] floats). The prices are
EURUSD's real hourly bars from backtesting.py's test data.
"""

from pathlib import Path

import backtesting
import numpy as np
import pandas as pd
import pytest

from engine.data.fetch import fetch, page_to_bars
from engine.data.store import BarStore

FILES = Path(backtesting.__file__).parent / "test"
HOUR_MS = 3_600_000


class FakeRateLimit(Exception):
    """Stands in for ccxt.RateLimitExceeded."""


class FakeNetworkError(Exception):
    """Stands in for ccxt.NetworkError."""


def documented_klines() -> list[list]:
    """EURUSD hourly bars in Binance's documented kline layout."""
    df = pd.read_csv(FILES / "EURUSD.csv", index_col=0, parse_dates=True)
    ms = df.index.as_unit("ms").asi8
    return [
        [int(t), f"{r.Open!r}", f"{r.High!r}", f"{r.Low!r}", f"{r.Close!r}", f"{r.Volume!r}",
         int(t) + HOUR_MS - 1, "0.0", 12, "0.0", "0.0", "0"]
        for t, r in zip(ms, df.itertuples(), strict=True)
    ]  # fmt: skip


class FakeBinance:
    """A fake exchange built from the documented kline format (see the module docstring)."""

    rateLimit = 50  # ms, as ccxt exchanges publish it

    def __init__(self, fail: dict[int, Exception] | None = None) -> None:
        self.klines = documented_klines()
        self.fail = fail or {}
        self.calls: list[tuple] = []

    def fetch_ohlcv(self, symbol: str, timeframe: str, since: int, limit: int) -> list[list]:
        self.calls.append((symbol, timeframe, since, limit))
        if len(self.calls) in self.fail:
            raise self.fail[len(self.calls)]
        assert symbol == "EUR/USD" and timeframe == "1h" and limit <= 1000
        page = [k for k in self.klines if k[0] >= since][:limit]
        return [[k[0], *(float(x) for x in k[1:6])] for k in page]


@pytest.fixture
def store(tmp_path) -> BarStore:
    return BarStore(tmp_path / "bars")


def reference() -> pd.DataFrame:
    df = pd.read_csv(FILES / "EURUSD.csv", index_col=0, parse_dates=True)
    df.columns = [c.lower() for c in df.columns]
    return df


def assert_matches(bars, df: pd.DataFrame) -> None:
    np.testing.assert_array_equal(bars.ts, df.index.as_unit("ns").asi8)
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(bars, col), df[col].to_numpy(dtype=np.float64))


def run(store, ex, sleeps, **kw):
    first = ex.klines[0][0]
    now = kw.pop("now_ms", ex.klines[-1][0] + 2 * HOUR_MS)
    retry = (FakeRateLimit, FakeNetworkError)
    return fetch(
        store, ex, "EUR/USD", "EURUSD", "1h", first, retry_on=retry, sleep=sleeps.append,
        now_ms=now, **kw,
    )  # fmt: skip


def test_pages_through_the_history_with_rate_limit_and_retries(store):
    ex = FakeBinance(fail={2: FakeRateLimit("429"), 4: FakeNetworkError("reset")})
    sleeps: list[float] = []
    report = run(store, ex, sleeps)
    assert report.added == 5000 and report.retries == 2
    assert_matches(store.load("EURUSD", "1h", 0, 2**62), reference())
    assert sleeps.count(0.05) == report.requests - 1  # rateLimit between requests
    assert sleeps.count(0.1) == 2  # first backoff: 2 x rateLimit
    assert ex.calls[2][2] == ex.calls[1][2]  # the failed page is asked for again
    info = store.resolve("EURUSD")
    assert "ccxt" in info.description and info.base_resolution == "1h"


def test_resumes_from_the_last_stored_bar(store):
    ex = FakeBinance()
    half = ex.klines[2500][0]
    run(store, ex, [], until_ms=half)
    assert store.resolve("EURUSD").last_ts == half * 1_000_000
    again = FakeBinance()
    report = run(store, again, [])
    assert again.calls[0][2] == half + HOUR_MS
    assert report.added == 2499
    assert_matches(store.load("EURUSD", "1h", 0, 2**62), reference())


def test_interrupted_fetch_keeps_flushed_bars_and_resumes(store):
    ex = FakeBinance(fail={3: RuntimeError("killed")})
    with pytest.raises(RuntimeError):
        run(store, ex, [], flush_bars=1000)
    assert store.resolve("EURUSD").bar_count == 2000
    run(store, FakeBinance(), [])
    assert_matches(store.load("EURUSD", "1h", 0, 2**62), reference())


def test_retries_exhausted_raise_and_store_nothing(store):
    ex = FakeBinance(fail={i: FakeRateLimit("429") for i in range(1, 10)})
    with pytest.raises(FakeRateLimit):
        run(store, ex, [], tries=3)
    assert len(ex.calls) == 3 and store.symbols() == []


def test_the_forming_bar_is_not_stored(store):
    ex = FakeBinance()
    last_open = ex.klines[-1][0]
    run(store, ex, [], now_ms=last_open + HOUR_MS // 2)
    assert store.resolve("EURUSD").last_ts == ex.klines[-2][0] * 1_000_000


def test_page_parsing():
    bars = page_to_bars([[1_499_040_000_000, 0.0163479, 0.8, 0.015758, 0.015771, 148976.11427815]])
    assert bars.ts.tolist() == [1_499_040_000_000_000_000] and bars.high.tolist() == [0.8]
