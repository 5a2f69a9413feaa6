"""Weekly and monthly bars: calendar buckets checked against pandas, and monthly files imported."""

from pathlib import Path

import backtesting
import numpy as np
import pandas as pd
import pytest

from engine.data.bars import Bars, count_gaps
from engine.data.importer import ImportFailed, import_csv
from engine.data.periods import DAY_NS, MONTH_NS, WEEK_NS, floor_periods, period_ends
from engine.data.resample import resample
from engine.data.store import BarStore
from engine.strategy.timeframe import on_timeframe

FILES = Path(backtesting.__file__).parent / "test"
AGG = {"Open": "first", "High": "max", "Low": "min", "Close": "last", "Volume": "sum"}


def goog() -> pd.DataFrame:
    return pd.read_csv(FILES / "GOOG.csv", index_col=0, parse_dates=True).tz_localize("UTC")


def as_bars(df: pd.DataFrame) -> Bars:
    cols = [df[c].to_numpy(np.float64) for c in ("Open", "High", "Low", "Close", "Volume")]
    return Bars(df.index.as_unit("ns").asi8.copy(), *cols)


def pandas_buckets(df: pd.DataFrame, rule: str, tz: str) -> pd.DataFrame:
    """pandas' own calendar resampling, in tz, labelled by each bucket's start."""
    local = df.tz_convert(tz)
    return local.resample(rule, label="left", closed="left").agg(AGG).dropna()


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize(("step", "rule"), [(WEEK_NS, "W-MON"), (MONTH_NS, "MS")])
def test_weekly_and_monthly_buckets_equal_pandas(step: int, rule: str, tz: str) -> None:
    df = goog()
    if tz != "UTC":  # daily bars at local midnight, so each falls in the local week or month
        df = df.set_axis(df.index.tz_localize(None).tz_localize(tz).tz_convert("UTC"))
    ours = resample(as_bars(df), step, tz)
    expected = pandas_buckets(df, rule, tz)
    np.testing.assert_array_equal(ours.ts, expected.index.tz_convert("UTC").as_unit("ns").asi8)
    for col, name in zip(("open", "high", "low", "close", "volume"), AGG, strict=True):
        np.testing.assert_array_equal(getattr(ours, col), expected[name].to_numpy())


def test_period_edges_by_hand() -> None:
    t = pd.Timestamp
    ts = np.array([t("2024-02-29T23:59:59Z").value, t("2024-03-03T12:00Z").value], np.int64)
    months = floor_periods(ts, MONTH_NS)
    assert list(months) == [t("2024-02-01T00:00Z").value, t("2024-03-01T00:00Z").value]
    assert list(period_ends(months, MONTH_NS)) == [
        t("2024-03-01T00:00Z").value, t("2024-04-01T00:00Z").value,
    ]  # fmt: skip
    weeks = floor_periods(ts, WEEK_NS)  # Thursday 29 Feb → Monday 26 Feb; Sunday 3 Mar too
    assert list(weeks) == [t("2024-02-26T00:00Z").value] * 2
    # New York's March month starts at local midnight, 05:00 UTC; April's at 04:00 (DST).
    ny = floor_periods(
        np.array([t("2024-03-15T00:00Z").value], np.int64), MONTH_NS, "America/New_York"
    )
    assert ny[0] == t("2024-03-01T05:00Z").value
    assert period_ends(ny, MONTH_NS, "America/New_York")[0] == t("2024-04-01T04:00Z").value
    assert list(floor_periods(np.array([t("2024-12-31T23:00Z").value]), MONTH_NS)) == [
        t("2024-12-01T00:00Z").value
    ]
    assert (
        period_ends(np.array([t("2024-12-01T00:00Z").value]), MONTH_NS)[0]
        == t("2025-01-01T00:00Z").value
    )
    assert (
        floor_periods(np.array([t("2024-05-06T10:00Z").value]), DAY_NS, "UTC")[0]
        == t("2024-05-06T00:00Z").value
    )


def test_monthly_timeframe_on_daily_bars_waits_for_the_month_to_close() -> None:
    df = goog()
    bars = as_bars(df)
    closes = on_timeframe(bars, "1d", "1M", lambda b: b.close)
    monthly = df["Close"].resample("MS").last()
    # Each day sees the close of the last month that ended by the end of that day.
    for i in (0, 10, 500, 2000):
        day_end = df.index[i] + pd.Timedelta("1D")
        done = monthly[monthly.index + pd.offsets.MonthBegin(1) <= day_end]
        expected = done.iloc[-1] if len(done) else np.nan
        np.testing.assert_equal(closes[i], expected)


def test_gaps_count_missing_calendar_periods() -> None:
    t = pd.Timestamp
    months = np.array([t(f"2024-{m:02d}-01T00:00Z").value for m in (1, 2, 3, 5, 6, 9)], np.int64)
    assert count_gaps(months, MONTH_NS) == 2  # April, then July and August


def test_monthly_file_labelled_by_month_end_imports_as_monthly_bars(tmp_path: Path) -> None:
    store = BarStore(tmp_path / "store")
    report = import_csv(store, FILES / "BTCUSD.csv", "BTCM")
    raw = pd.read_csv(FILES / "BTCUSD.csv", index_col=0, parse_dates=True)
    assert report.resolution == "1M" and report.info.resolutions == ["1M"]
    assert report.info.gaps == 0 and report.added == len(raw)
    bars = store.load("BTCM", "1M", 0, 2**62)
    starts = raw.index.to_period("M").to_timestamp().tz_localize("UTC").as_unit("ns").asi8
    np.testing.assert_array_equal(bars.ts, starts)
    np.testing.assert_array_equal(bars.close, raw["Close"].to_numpy())


def test_two_rows_in_one_month_fail_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "date,open,high,low,close\n2024-01-31,1,2,1,2\n2024-02-29,2,3,2,3\n2024-02-01,3,3,3,3\n"
    )
    store = BarStore(tmp_path / "store")
    with pytest.raises(ImportFailed, match="same month") as err:
        import_csv(store, path, "M", resolution="1M")
    assert err.value.row == 4  # the header is row 1
    assert store.symbols() == []
