"""The synthetic demo data: deterministic, extendable bit for bit, resolvable, never over a user's."""

import numpy as np
import pytest

from engine.data.bars import validate_bars
from engine.data.demo import (
    ANCHOR_NS,
    DEMO_SYMBOLS,
    demo_end_ns,
    demo_series,
    generate_bars,
    update_demo_data,
)
from engine.data.store import COLUMNS, MINUTE_NS, BarStore

DAY = 86_400 * 10**9
T0 = np.datetime64("2024-01-01T00:00", "ns").astype(np.int64)


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def everything(store: BarStore, name: str):
    return store.load(name, "1m", 0, 2**62)


def assert_identical(a, b) -> None:
    """Equal bit for bit, column by column."""
    for col in COLUMNS:
        x, y = np.asarray(getattr(a, col)), np.asarray(getattr(b, col))
        assert x.dtype == y.dtype and x.shape == y.shape, col
        assert x.tobytes() == y.tobytes(), col


def test_anchor_is_2024_01_01_utc():
    assert ANCHOR_NS == T0 == 1_704_067_200 * 10**9


def test_offers_every_seed_symbol_and_the_catalog_resolves_them(tmp_path):
    store = BarStore(tmp_path / "bars")
    report = update_demo_data(store, ns("2024-01-02T00:00"))
    expected = ["AAPL", "MSFT", "GOOGL", "BTC-USD", "ETH-USD", "BTC-USDC", "ETH-USDC",
                "ETH-USDT", "SOL-USDC", "BTC-USDT"]  # fmt: skip
    assert sorted(report.generated) == sorted(expected)
    assert sorted(i.name for i in store.symbols()) == sorted(expected)
    assert all(i.synthetic for i in store.symbols())
    names = {
        "AAPL": "AAPL", "msft": "MSFT", "GOOGL": "GOOGL",
        "BTC": "BTC-USD", "btc-usd": "BTC-USD", "BTCUSD": "BTC-USD", "btc/usd": "BTC-USD",
        "ETH": "ETH-USD", "ETHUSD": "ETH-USD", "eth-usd": "ETH-USD",
        "BTC-USDC": "BTC-USDC", "BTCUSDC": "BTC-USDC", "btc/usdc": "BTC-USDC",
        "BTCUSDT": "BTC-USDT", "btc/usdt": "BTC-USDT", "BTC_USDT": "BTC-USDT",
        "ETH-USDC": "ETH-USDC", "ETHUSDT": "ETH-USDT", "eth/usdt": "ETH-USDT",
        "SOL-USDC": "SOL-USDC", "SOLUSDC": "SOL-USDC",
    }  # fmt: skip
    for name, symbol in names.items():
        info = store.resolve(name)
        assert info is not None and info.name == symbol, name
    # A bare SOL tries SOL + the default quote (USD): there is no SOL-USD.
    assert store.resolve("SOL") is None
    # Same base, different quotes: distinct series.
    closes = [everything(store, n).close for n in ("BTC-USD", "BTC-USDC", "BTC-USDT")]
    assert not np.array_equal(closes[0], closes[1]) and not np.array_equal(closes[0], closes[2])
    assert not np.array_equal(closes[1], closes[2])


def test_two_generations_are_identical(tmp_path):
    end = ns("2024-01-04T13:37")
    a, b = BarStore(tmp_path / "a"), BarStore(tmp_path / "b")
    update_demo_data(a, end)
    update_demo_data(b, end)
    for spec in DEMO_SYMBOLS:
        assert_identical(everything(a, spec.name), everything(b, spec.name))


@pytest.mark.parametrize(
    "end", ["2024-01-03T05:07:42Z", "2024-01-03T00:00:00Z", "2024-01-03T00:01Z", "2024-01-05"]
)
def test_data_ends_at_the_requested_minute_and_bars_are_valid(tmp_path, end):
    store = BarStore(tmp_path / "bars")
    end_ns = demo_end_ns(end)
    update_demo_data(store, end_ns)
    floor = ns(end.rstrip("Z")[:16] if "T" in end else end)  # the minute, seconds dropped
    for spec in DEMO_SYMBOLS:
        info = store.resolve(spec.name)
        bars = everything(store, spec.name)
        assert info.first_ts == T0 and info.last_ts == floor - MINUTE_NS
        assert len(bars) == (floor - T0) // MINUTE_NS and info.gaps == 0
        validate_bars(bars, MINUTE_NS)
        assert np.all(np.diff(bars.ts) == MINUTE_NS)
        assert bars.open[0] == spec.start_price
        np.testing.assert_array_equal(bars.open[1:], bars.close[:-1])
        assert np.all(bars.low > 0) and np.all(bars.volume > 0)


def test_top_up_equals_a_fresh_generation_bit_for_bit(tmp_path):
    steps = ["2024-01-03T05:07", "2024-01-03T05:08", "2024-01-04T00:00", "2024-01-06T21:13"]
    topped, fresh = BarStore(tmp_path / "topped"), BarStore(tmp_path / "fresh")
    first = update_demo_data(topped, ns(steps[0]))
    assert len(first.generated) == len(DEMO_SYMBOLS) and not first.topped_up
    for step in steps[1:]:
        report = update_demo_data(topped, ns(step))
        assert sorted(report.topped_up) == sorted(s.name for s in DEMO_SYMBOLS)
        assert not report.generated and not report.skipped
        assert "topped up" in report.summary()
    update_demo_data(fresh, ns(steps[-1]))
    for spec in DEMO_SYMBOLS:
        assert_identical(everything(topped, spec.name), everything(fresh, spec.name))
    # Up to date: nothing is written, and an earlier end never cuts the data back.
    before = {i.name: i.meta["generation"] for i in topped.symbols()}
    assert update_demo_data(topped, ns(steps[-1])).written == []
    assert update_demo_data(topped, ns(steps[0])).written == []
    assert {i.name: i.meta["generation"] for i in topped.symbols()} == before


def test_series_is_the_same_built_whole_day_by_day_or_in_chunks():
    spec = DEMO_SYMBOLS[1]
    end = T0 + 40 * DAY + 333 * MINUTE_NS
    whole = demo_series(spec, end)
    for cuts in ([1, 2, 3, 10, 11, 39, 40], [7, 14, 21, 28, 35]):
        parts, prev, day = [], None, 0
        for cut in [*cuts, None]:
            stop = end if cut is None else T0 + cut * DAY
            part = demo_series(spec, stop, first_day=day, prev_close=prev)
            parts.append(part)
            prev, day = float(part.close[-1]), cut
        glued = type(whole)(*(np.concatenate([getattr(p, c) for p in parts]) for c in COLUMNS))
        assert_identical(glued, whole)
    # A partial day is the prefix of the full day.
    day41 = demo_series(spec, T0 + 41 * DAY)
    assert_identical(whole, type(whole)(*(getattr(day41, c)[: len(whole)] for c in COLUMNS)))


def test_each_day_draws_from_its_own_seeded_generator():
    """Re-derive a day's shocks and volume noise from the documented seeding, independently."""
    spec, seed = DEMO_SYMBOLS[0], 7
    bars = demo_series(spec, T0 + 10 * DAY)
    sigma = spec.volatility / np.sqrt(365 * 24 * 60)
    for day in (0, 3, 9):
        z = np.random.default_rng([seed, spec.key, 0, day]).standard_normal((4, 1440))
        sl = slice(day * 1440, (day + 1) * 1440)
        # log(close/open) = drift of the day - sigma^2/2 + sigma * shock: constant once the
        # shock is taken out.
        rest = np.log(bars.close[sl] / bars.open[sl]) - sigma * z[0]
        assert np.ptp(rest) < 1e-12
        np.testing.assert_allclose(
            bars.volume[sl], spec.volume * np.exp(0.5 * z[3]) * (1 + np.abs(z[0])), rtol=1e-12
        )


def test_volatility_matches_the_parameters():
    for spec in DEMO_SYMBOLS:
        bars = demo_series(spec, T0 + 60 * DAY)
        r = np.diff(np.log(bars.close))
        annual = np.std(r) * np.sqrt(365 * 24 * 60)
        assert annual == pytest.approx(spec.volatility, rel=0.02), spec.name


def test_user_symbols_with_demo_names_are_never_touched(tmp_path):
    store = BarStore(tmp_path / "bars")
    mine = generate_bars(DEMO_SYMBOLS[0], T0, 3 * 1440, np.random.default_rng(5))
    store.write("MSFT", mine, synthetic=False, description="my import")
    store.write("btcusdt", mine, synthetic=False, description="my import")  # BTC-USDT compacted
    store.write("AAPL", mine, synthetic=True, description="my own synthetic test data")
    store.write("SOL-X", mine, aliases=["ETH"], description="an alias taken")
    for end in ("2024-01-05T00:00", "2024-01-07T12:00"):
        report = update_demo_data(store, ns(end))
        assert sorted(report.skipped) == ["AAPL", "BTC-USDT", "MSFT"]
        for name in ("MSFT", "btcusdt", "AAPL"):
            assert_identical(everything(store, name), mine)
            assert store.resolve(name).description.startswith("my ")
    assert store.resolve("BTCUSDT").name == "btcusdt"
    # ETH-USD is made, without the alias a user's symbol holds.
    eth = store.resolve("ETH-USD")
    assert eth.synthetic and "ETH" not in eth.aliases and store.resolve("ETH").name == "SOL-X"


def test_demo_data_of_an_older_generator_is_rebuilt(tmp_path):
    """A data dir from before (731 days from a single generator) gets this definition."""
    store, fresh = BarStore(tmp_path / "old"), BarStore(tmp_path / "fresh")
    spec = DEMO_SYMBOLS[2]
    old = generate_bars(spec, T0, 5 * 1440, np.random.default_rng(9))
    store.write(spec.name, old, aliases=list(spec.aliases), synthetic=True,
                description="ETH-USD synthetic demo data (1-minute geometric Brownian motion)")  # fmt: skip
    end = ns("2024-01-08T03:00")
    report = update_demo_data(store, end)
    assert "ETH-USD" in report.generated
    update_demo_data(fresh, end)
    assert_identical(everything(store, "ETH"), everything(fresh, "ETH"))


def test_end_parsing():
    now = ns("2026-12-01T10:20:30.5")
    assert demo_end_ns(None, now_ns=now) == ns("2026-12-01T10:20")
    assert demo_end_ns("", now_ns=now) == ns("2026-12-01T10:20")
    assert demo_end_ns("2025-02-01", now_ns=now) == ns("2025-02-01T00:00")
    assert demo_end_ns("2025-02-01T10:30:59", now_ns=now) == ns("2025-02-01T10:30")
    assert demo_end_ns("2025-02-01T10:30:59Z", now_ns=now) == ns("2025-02-01T10:30")
    assert demo_end_ns("2025-02-01T10:30+02:00", now_ns=now) == ns("2025-02-01T08:30")
    assert demo_end_ns("2999-01-01", now_ns=now) == ns("2026-12-01T10:20"), "no future bars"
    for bad in ("yesterday", "2023-12-31", "2024-01-01T00:00Z"):
        with pytest.raises(ValueError):
            demo_end_ns(bad, now_ns=now)


def test_no_future_bars(tmp_path):
    store = BarStore(tmp_path / "bars")
    now = ns("2024-01-02T03:04:05")
    report = update_demo_data(store, ns("2200-01-01"), now_ns=now)
    assert report.end_ns == ns("2024-01-02T03:04")
    assert all(i.last_ts == ns("2024-01-02T03:03") for i in store.symbols())


def test_setting(monkeypatch):
    from server.settings import Settings

    monkeypatch.delenv("BARSTREAM_DEMO_END", raising=False)
    assert Settings().demo_end is None
    monkeypatch.setenv("BARSTREAM_DEMO_END", "2025-02-01")
    assert Settings().demo_end == "2025-02-01"
