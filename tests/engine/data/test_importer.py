"""CSV import and export on real price files: round trips, formats, validation, merge, resampling."""

import io
from pathlib import Path

import backtesting
import numpy as np
import pandas as pd
import pytest

from engine.data.bars import COLUMNS
from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.importer import ImportFailed, import_csv, read_csv, write_csv
from engine.data.store import BarStore

FILES = Path(backtesting.__file__).parent / "test"
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
OHLCV = ("open", "high", "low", "close", "volume")


def frame(name: str) -> pd.DataFrame:
    """The file as pandas reads it: an independent reference for every value."""
    df = pd.read_csv(FILES / name, index_col=0, parse_dates=True)
    df.columns = [c.lower() for c in df.columns]
    df.index = df.index.tz_localize("UTC")
    return df


def snapshot(root: Path) -> dict:
    """Every path under root with its bytes and mtime."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def assert_bars_equal(bars, df: pd.DataFrame) -> None:
    np.testing.assert_array_equal(bars.ts, df.index.as_unit("ns").asi8)
    for col in OHLCV:
        np.testing.assert_array_equal(getattr(bars, col), df[col].to_numpy(dtype=np.float64))


@pytest.fixture
def store(tmp_path) -> BarStore:
    return BarStore(tmp_path / "bars")


@pytest.mark.parametrize(
    ("name", "resolution", "expected"),
    [("GOOG.csv", None, "1d"), ("EURUSD.csv", None, "1h"), ("BTCUSD.csv", "1d", "1d")],
)
def test_round_trip_import_load_export_import(store, tmp_path, name, resolution, expected):
    report = import_csv(store, FILES / name, "X", resolution=resolution)
    assert report.resolution == expected and report.format == "generic"
    df = frame(name)
    bars = store.load("X", expected, 0, 2**62)
    assert_bars_equal(bars, df)
    info = store.resolve("x")
    assert (info.bar_count, info.first_ts, info.last_ts) == (len(df), bars.ts[0], bars.ts[-1])
    out = tmp_path / "out.csv"
    with out.open("w") as f:
        write_csv(bars, f)
    again = BarStore(tmp_path / "again")
    import_csv(again, out, "Y", resolution=resolution)
    back = again.load("Y", expected, 0, 2**62)
    for col in COLUMNS:
        np.testing.assert_array_equal(getattr(back, col), getattr(bars, col))
    text = io.StringIO()
    write_csv(back, text)
    assert text.getvalue() == out.read_text()


def test_gaps_and_calendar_are_detected(store):
    goog = import_csv(store, FILES / "GOOG.csv", "GOOG").info
    eur = import_csv(store, FILES / "EURUSD.csv", "EURUSD").info
    ts = frame("GOOG.csv").index.as_unit("ns").asi8
    assert goog.gaps == int(np.count_nonzero(np.diff(ts) > 86_400 * 10**9))
    assert goog.calendar == "exchange" and eur.calendar == "24/7"
    assert goog.resolutions == ["1d", "1w", "1M"]
    assert eur.resolutions == ["1h", "4h", "1d", "1w", "1M"]
    assert import_csv(store, FILES / "GOOG.csv", "G2", calendar="24/7").info.calendar == "24/7"


def expected_resample(df: pd.DataFrame, rule: str, tz: str = "UTC") -> pd.DataFrame:
    """pandas' resample of complete buckets only: the last one is dropped if the data ends in it."""
    local = df.tz_convert(tz)
    ref = local.resample(rule).agg(AGG).dropna(subset=["open"])
    last_end = (
        (ref.index[-1] + pd.Timedelta(rule))
        if rule != "1D"
        else ref.index[-1] + pd.DateOffset(days=1)
    )
    step = df.index[1:] - df.index[:-1]
    if last_end > local.index[-1] + step.min():
        ref = ref.iloc[:-1]
    ref.index = ref.index.tz_convert("UTC")
    return ref


def assert_resampled(bars, ref: pd.DataFrame) -> None:
    np.testing.assert_array_equal(bars.ts, ref.index.as_unit("ns").asi8)
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(bars, col), ref[col].to_numpy())
    np.testing.assert_allclose(bars.volume, ref["volume"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(("res", "rule"), [("4h", "4h"), ("1d", "1D")])
def test_resampled_eurusd_matches_pandas(store, res, rule):
    import_csv(store, FILES / "EURUSD.csv", "EURUSD")
    ref = expected_resample(frame("EURUSD.csv"), rule)
    assert_resampled(store.load("EURUSD", res, 0, 2**62), ref)
    # second load comes from the disk cache, a fresh store reads the same files
    assert_resampled(BarStore(store.root).load("EURUSD", res, 0, 2**62), ref)
    assert any(p.name.startswith(f"{res}-") for p in (store.root / "EURUSD" / "cache").iterdir())


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/London", "Asia/Kolkata"])
def test_daily_bars_follow_the_time_zone_across_dst(store, tz):
    import_csv(store, FILES / "EURUSD.csv", "EURUSD")
    ref = expected_resample(frame("EURUSD.csv"), "1D", tz)
    got = store.load("EURUSD", "1d", 0, 2**62, tz=tz)
    assert_resampled(got, ref)
    lengths = set(np.diff(ref.index.as_unit("ns").asi8) % (86_400 * 10**9) // (3600 * 10**9))
    if tz != "Asia/Kolkata":  # the file spans a DST change: some local days are 23 or 25 hours
        assert lengths - {0}


@pytest.mark.parametrize("res", ["5m", "15m", "1h", "4h", "1d"])
def test_resampled_demo_minutes_match_pandas(store, res):
    start = 1_709_251_200 * 10**9 + 7 * 60 * 10**9  # 2024-03-01 00:07, partial first hour
    bars = generate_bars(DEMO_SYMBOLS[1], start, 5 * 1440 + 77, np.random.default_rng(3))
    store.write("BTC-USD", bars)
    df = pd.DataFrame(
        {c: getattr(bars, c) for c in OHLCV}, index=pd.to_datetime(bars.ts, unit="ns", utc=True)
    )
    rule = {"5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}[res]
    assert_resampled(store.load("BTC", res, 0, 2**62), expected_resample(df, rule))


def test_resample_cache_is_rebuilt_when_the_base_changes(store, tmp_path):
    lines = (FILES / "EURUSD.csv").read_text().splitlines()
    head = tmp_path / "head.csv"
    head.write_text("\n".join(lines[:2001]) + "\n")
    import_csv(store, head, "EURUSD")
    first = store.load("EURUSD", "4h", 0, 2**62)
    report = import_csv(store, FILES / "EURUSD.csv", "EURUSD")  # overlaps 2000 equal bars
    assert report.added == 3000
    ref = expected_resample(frame("EURUSD.csv"), "4h")
    assert_resampled(store.load("EURUSD", "4h", 0, 2**62), ref)
    assert len(first) < len(ref)
    assert len([p for p in (store.root / "EURUSD" / "cache").iterdir()]) == 1


def kline_text(df: pd.DataFrame, unit: int = 1_000_000) -> str:
    """A Binance-style kline export, built from Binance's documented column order: open time,
    open, high, low, close, volume, close time, quote volume, trades, taker base, taker quote,
    ignore; times in ms (µs with unit=1000)."""
    step = 3_600 * 10**9 // unit
    rows = []
    for t, r in zip(df.index.as_unit("ns").asi8 // unit, df.itertuples(), strict=True):
        rows.append(
            f"{t},{r.open!r},{r.high!r},{r.low!r},{r.close!r},{r.volume!r},{t + step - 1},"
            f"{r.volume * r.close!r},17,{r.volume / 2!r},1.0,0"
        )
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("unit", [1_000_000, 1_000])
def test_kline_export_is_detected(store, tmp_path, unit):
    df = frame("EURUSD.csv")
    path = tmp_path / "EURUSDT-1h.csv"
    path.write_text(kline_text(df, unit))
    parsed = read_csv(path)
    assert parsed.format == "kline" and parsed.resolution == "1h"
    import_csv(store, path, "EURUSDT")
    assert_bars_equal(store.load("EURUSDT", "1h", 0, 2**62), df)


@pytest.mark.parametrize("scale", [1, 1_000, 1_000_000, 1_000_000_000])
def test_epoch_timestamps_in_any_unit(store, tmp_path, scale):
    df = frame("GOOG.csv").iloc[:50]
    epoch = df.index.as_unit("ns").asi8 // 10**9 * scale
    text = "time,open,high,low,close,volume\n" + "".join(
        f"{t},{r.open},{r.high},{r.low},{r.close},{r.volume}\n"
        for t, r in zip(epoch, df.itertuples(), strict=True)
    )
    (tmp_path / "e.csv").write_text(text)
    import_csv(store, tmp_path / "e.csv", "E")
    assert_bars_equal(store.load("E", "1d", 0, 2**62), df)


def test_iso_with_offsets_and_z(store, tmp_path):
    rows = [
        "timestamp,open,high,low,close,volume",
        "2024-03-10T01:00:00-05:00,1,2,0.5,1.5,10",
        "2024-03-10T07:00:00Z,1.5,2,1,1,3",
        "2024-03-10T09:00:00+01:00,1,1,1,1,0",
    ]
    (tmp_path / "o.csv").write_text("\n".join(rows))
    import_csv(store, tmp_path / "o.csv", "O", resolution="1h")
    got = store.load("O", "1h", 0, 2**62)
    assert got.ts.tolist() == [pd.Timestamp(f"2024-03-10T{h:02d}:00Z").value for h in (6, 7, 8)]


def test_headerless_generic_file_asks_for_a_format(store, tmp_path):
    (tmp_path / "n.csv").write_text("1704067200,1,2,0.5,1.5,10\n1704070800,1,2,0.5,1.5,10\n")
    with pytest.raises(ImportFailed, match="--format"):
        import_csv(store, tmp_path / "n.csv", "N")
    assert not any(store.root.iterdir())


def test_ticks_resample_to_seconds(store, tmp_path):
    rng = np.random.default_rng(5)
    ts = 1_704_067_200 * 10**9 + np.sort(rng.integers(0, 600 * 10**9, 3000))
    price = 100 + np.cumsum(rng.normal(0, 0.01, 3000))
    size = rng.exponential(1.0, 3000)
    iso = np.datetime_as_string(ts.astype("datetime64[ns]"), unit="ns", timezone="UTC")
    text = "timestamp,price,size\n" + "".join(
        f"{t},{p!r},{s!r}\n" for t, p, s in zip(iso, price.tolist(), size.tolist(), strict=True)
    )
    (tmp_path / "t.csv").write_text(text)
    import_csv(store, tmp_path / "t.csv", "TICKS", resolution="tick")
    info = store.resolve("ticks")
    assert info.base_resolution == "tick" and info.resolutions[:3] == ["tick", "1s", "1m"]
    raw = store.load("TICKS", "tick", 0, 2**62)
    np.testing.assert_array_equal(raw.close, price)
    df = pd.DataFrame(
        {"open": price, "high": price, "low": price, "close": price, "volume": size},
        index=pd.to_datetime(ts, unit="ns", utc=True),
    )
    ref = df.resample("1s").agg(AGG).dropna(subset=["open"]).iloc[:-1]
    got = store.load("TICKS", "1s", 0, 2**62)
    np.testing.assert_array_equal(got.ts, ref.index.as_unit("ns").asi8)
    np.testing.assert_array_equal(got.high, ref["high"].to_numpy())
    np.testing.assert_allclose(got.volume, ref["volume"].to_numpy(), rtol=1e-12)
    out = io.StringIO()
    write_csv(raw, out, tick=True)
    assert out.getvalue().splitlines()[0] == "timestamp,price,volume"
