"""Symbol catalog: aliases across the seeds' dialects, distinct markets, calendars, availability."""

from pathlib import Path

import backtesting
import numpy as np
import pytest

from engine.data.catalog import compact
from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.importer import import_csv
from engine.data.store import BarStore, UnavailableResolution

FILES = Path(backtesting.__file__).parent / "test"
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00Z


def minute_bars(days: int = 2, seed: int = 0):
    return generate_bars(DEMO_SYMBOLS[1], T0, days * 1440, np.random.default_rng(seed))


@pytest.fixture
def store(tmp_path) -> BarStore:
    s = BarStore(tmp_path / "bars", default_quote="USD")
    s.write("BTC-USD", minute_bars(seed=1))
    s.write("BTC-USDC", minute_bars(seed=2))  # seed 003's pair
    s.write("BTCUSDT", minute_bars(seed=3))  # seed 004's symbol
    s.write("ETH-USDC", minute_bars(seed=4))
    import_csv(s, FILES / "GOOG.csv", "AAPL", aliases=["Apple"])  # seed 002's ticker, real prices
    return s


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BTC", "BTC-USD"),  # seed 001's asset with the default quote
        ("btc", "BTC-USD"),
        ("BTC-USD", "BTC-USD"),
        ("btcusd", "BTC-USD"),
        ("BTC/USD", "BTC-USD"),
        ("BTC-USDC", "BTC-USDC"),
        ("btc_usdc", "BTC-USDC"),
        ("BTCUSDT", "BTCUSDT"),
        ("btc-usdt", "BTCUSDT"),
        ("AAPL", "AAPL"),
        ("apple", "AAPL"),
        ("ETH-USDC", "ETH-USDC"),
        ("ETH", None),  # no ETH-USD: a bare asset never falls back to another quote
        ("BTC-EUR", None),
        ("USD", None),
    ],
)
def test_resolve_across_dialects(store, name, expected):
    info = store.resolve(name)
    assert (info.name if info else None) == expected


def test_default_quote_is_configurable(store, monkeypatch):
    assert BarStore(store.root, default_quote="USDC").resolve("BTC").name == "BTC-USDC"
    assert BarStore(store.root, default_quote="usdt").resolve("btc").name == "BTCUSDT"
    monkeypatch.setenv("BARSTREAM_DEFAULT_QUOTE", "USDC")
    assert BarStore(store.root).resolve("ETH").name == "ETH-USDC"


def test_aliases_never_merge_markets(store):
    with pytest.raises(ValueError, match="already names BTCUSDT"):
        store.write("BTC-USDT", minute_bars())
    with pytest.raises(ValueError, match="already names BTC-USD"):
        store.write("XBT", minute_bars(), aliases=["btcusd"])
    with pytest.raises(ValueError, match="already names BTC-USDC"):
        store.write("ETH-USDC", minute_bars(), aliases=["BTC/USDC"])
    assert {i.name for i in store.symbols()} == {
        "AAPL",
        "BTC-USD",
        "BTC-USDC",
        "BTCUSDT",
        "ETH-USDC",
    }
    usd, usdc = store.load("BTC-USD", "1h", 0, 2**62), store.load("BTC-USDC", "1h", 0, 2**62)
    assert not np.array_equal(usd.close, usdc.close)
    assert compact(" btc/usd ") == "BTCUSD"


def test_infos_carry_calendar_and_available_resolutions(store):
    aapl, btc = store.resolve("AAPL"), store.resolve("BTC")
    assert aapl.calendar == "exchange" and aapl.resolutions == ["1d", "1w", "1M"] and aapl.gaps > 0
    assert btc.calendar == "24/7" and btc.resolutions == [
        "1m",
        "5m",
        "15m",
        "1h",
        "4h",
        "1d",
        "1w",
        "1M",
    ]
    assert btc.gaps == 0 and btc.base_resolution == "1m"


def test_finer_resolution_than_stored_is_unavailable(store):
    with pytest.raises(UnavailableResolution, match="AAPL has no 1h data; available: 1d"):
        store.load("AAPL", "1h", 0, 2**62)
    with pytest.raises(UnavailableResolution, match="BTC-USD has no tick data"):
        store.load("BTC", "tick", 0, 2**62)
