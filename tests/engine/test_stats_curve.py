"""engine.stats_curve.returns_by: calendar-period returns against pandas' own calendar grouping."""

import numpy as np
import pandas as pd
import pytest

from engine.stats_curve import period_returns, returns_by

DAY = 86_400_000_000_000


def pandas_returns(eq: np.ndarray, ts: np.ndarray, unit: str) -> list[tuple[str, float]]:
    """Each calendar period's last equity over the previous period's last (the first: over the
    first bar's), minus 1, grouped by pandas' periods."""
    s = pd.Series(eq, index=pd.to_datetime(ts))
    last = s.groupby(s.index.to_period(unit)).last()
    before = last.shift(1).fillna(eq[0])
    return [(str(p), float(v)) for p, v in (last / before - 1.0).items()]


@pytest.mark.parametrize("seed", range(12))
def test_returns_by_month_and_year_match_pandas(seed: int) -> None:
    """Random clocks (minutes to months apart, long gaps, before and after 1970)."""
    rng = np.random.default_rng(seed)
    step = int(rng.choice([60, 3600, 86_400, 7 * 86_400, 40 * 86_400])) * 1_000_000_000
    n = min(int(rng.integers(1, 4000)), 100 * 365 * DAY // (4 * step))  # within int64 ns
    gaps = rng.integers(1, 4, n).astype(np.int64) * step
    if seed % 3 == 0:
        gaps[rng.integers(0, n)] = min(400 * step, 20 * 365 * DAY)  # empty periods between
    start = int(rng.integers(-20_000, 10_000)) * DAY
    ts = start + np.cumsum(gaps) - gaps[0]
    eq = 1000.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    for unit, key in (("M", "month"), ("Y", "year")):
        got = [(row[key], row["return"]) for row in returns_by(eq, ts, unit)]
        want = pandas_returns(eq, ts, unit)
        assert [k for k, _ in got] == [k for k, _ in want]
        assert np.allclose([v for _, v in got], [v for _, v in want], rtol=0, atol=1e-15)


def test_times_out_of_order_keep_runs_of_one_period() -> None:
    """Unsorted times: each run of consecutive bars in one month is a period of its own."""
    jan, feb = pd.Timestamp("2024-01-10").value, pd.Timestamp("2024-02-10").value
    ts = np.array([jan, jan + DAY, feb, jan + 2 * DAY])
    eq = np.array([100.0, 110.0, 121.0, 99.0])
    rows = period_returns(eq, ts)["returns_by_month"]
    assert [r["month"] for r in rows] == ["2024-01", "2024-02", "2024-01"]
    assert np.allclose([r["return"] for r in rows], [0.10, 0.10, 99.0 / 121.0 - 1.0])


def test_empty_curve_has_no_periods() -> None:
    """No bars, no rows."""
    none = np.zeros(0)
    assert period_returns(none, np.zeros(0, dtype=np.int64)) == {
        "returns_by_month": [],
        "returns_by_year": [],
    }
