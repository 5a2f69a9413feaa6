"""The annualisation factor follows the bars: each rule by hand, and BTCUSD against quantstats."""

from pathlib import Path

import backtesting
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from engine.annualisation import annualisation, bars_per_year, median_gap
from engine.data.importer import import_csv
from engine.data.store import BarStore
from engine.execution import Execution
from engine.run import run_backtest
from engine.strategy.compile import compile_strategy

FILES = Path(backtesting.__file__).parent / "test"
H = 3_600 * 10**9
D = 24 * H
T0 = 1_704_067_200 * 10**9  # 2024-01-01, a Monday


def test_each_rule_by_hand() -> None:
    hourly = T0 + np.arange(1000) * H
    assert bars_per_year("1h", hourly)[0] == 365 * 24
    assert bars_per_year("1d", T0 + np.arange(100) * D)[0] == 365
    assert bars_per_year("1w", T0 + np.arange(10) * 7 * D)[0] == 52
    assert bars_per_year("1M", T0 + np.arange(10) * 31 * D)[0] == 12
    # Monthly data stored as daily bars is still 12 a year; weekly data stored so, 52.
    month_starts = pd.date_range("2020-01-01", periods=40, freq="MS").as_unit("ns").asi8
    assert bars_per_year("1d", month_starts) == (
        12.0,
        "bars a month apart (median spacing): 12 a year",
    )
    assert bars_per_year("1d", T0 + np.arange(30) * 7 * D)[0] == 52
    # Exchange: 252 trading days, times the median bars per day for intraday bars.
    weekdays = pd.bdate_range("2024-01-01", periods=60).as_unit("ns").asi8
    assert bars_per_year("1d", weekdays, "exchange")[0] == 252
    seven = (weekdays[:, None] + (14 + np.arange(7))[None, :] * H).ravel()
    assert bars_per_year("1h", seven, "exchange")[0] == 252 * 7
    # Ticks: their count over their span, per 365-day year (11 ticks over 10 s: 1 a second).
    ticks = T0 + np.arange(11) * 10**9
    assert bars_per_year("tick", ticks)[0] == pytest.approx(365 * 86_400)


def times(*gaps: int) -> np.ndarray:
    """Bar times from T0 with these gaps between them."""
    return T0 + np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)


def test_median_gap_by_hand_around_the_shortcut() -> None:
    # More than half the gaps are the step: the median is the step (sorted 1,1,1,5,9 -> 1).
    assert median_gap(times(H, 9 * H, H, 5 * H, H), H) == H
    # Exactly half: no shortcut; sorted 1,1,5,9 -> (1 + 5) / 2 = 3 hours.
    assert median_gap(times(H, 9 * H, H, 5 * H), H) == 3 * H
    # Half and half, two values: (1 + 13) / 2 = 7 days.
    assert median_gap(times(D, 13 * D, D, 13 * D), D) == 7 * D
    # Duplicated times (gap 0) are not spacing: positive gaps 2,2,3 -> 2 s, with or without a step.
    s = 10**9
    assert median_gap(times(0, 0, 0, 2 * s, 2 * s, 3 * s), 2 * s) == 2 * s
    assert median_gap(times(0, 0, 0, 2 * s, 3 * s, 3 * s), 2 * s) == 3 * s
    # Irregular ticks (no step; the first gap is only a guess): 1, 2, 3, 100 ms -> 2.5 ms.
    ms = 10**6
    assert median_gap(times(3 * ms, 1 * ms, 100 * ms, 2 * ms)) == 2_500_000
    assert median_gap(times(3 * ms, 3 * ms, 100 * ms, 3 * ms, 1 * ms)) == 3 * ms
    # A wrong step changes nothing: weekly bars checked against a day.
    assert median_gap(T0 + np.arange(30) * 7 * D, D) == 7 * D
    assert median_gap(np.array([T0]), D) is None
    assert median_gap(np.array([T0, T0]), D) is None
    assert median_gap(np.array([], dtype=np.int64), D) is None


def test_the_shortcut_edge_decides_the_factor() -> None:
    # Daily bars, half a day apart and half 13 days apart: median 7 days -> weekly, 52.
    assert bars_per_year("1d", times(*[D, 13 * D] * 20)) == (
        52.0,
        "bars a week apart (median spacing): 52 a year",
    )
    # One more daily gap than the rest: the median is a day -> 365.
    assert bars_per_year("1d", times(*[D, 13 * D] * 20, D))[0] == 365
    # Hourly-stored monthly data with one month missing is still 12 a year (median 31 days).
    months = pd.date_range("2020-01-01", periods=25, freq="MS").as_unit("ns").asi8
    assert bars_per_year("1h", np.delete(months, 7))[0] == 12
    # Hourly bars, over half of the gaps an hour (a weekend gap each 5 days): 365 x 24.
    week = np.concatenate([np.arange(120), 168 + np.arange(120)]) * H + T0
    assert bars_per_year("1h", week)[0] == 365 * 24
    # Irregular ticks: count over span, whatever the first gap was.
    assert bars_per_year("tick", times(3, 1, 100, 2))[0] == pytest.approx(4 * 365 * D / 106)


def test_the_run_may_set_the_factor_and_a_rate() -> None:
    got = annualisation("1h", T0 + np.arange(10) * H, periods_per_year=250, risk_free_rate=0.03)
    assert (got.periods_per_year, got.risk_free_rate, got.basis) == (250, 0.03, "set by the run")
    assert annualisation("1M", np.zeros(0)).wire()["periods_per_year"] == 12


def test_monthly_btcusd_sharpe_equals_quantstats_at_12_a_year(tmp_path: Path) -> None:
    store = BarStore(tmp_path / "store")
    import_csv(store, FILES / "BTCUSD.csv", "BTCM")
    start = int(pd.Timestamp("2014-01-01T00:00Z").value)
    bars = {"BTCM": store.load_with_warmup("BTCM", "1M", start, 2**62, 12)}
    strategy = compile_strategy({"name": "t", "entry": [{"condition": "close > sma(6)"}],
                                 "exit": [{"condition": "close < sma(6)"}]})  # fmt: skip
    ppy = annualisation("1M", bars["BTCM"].ts).periods_per_year
    out = run_backtest(bars, strategy, Execution(), 10_000.0, start, resolution="1M",
                       periods_per_year=ppy)  # fmt: skip
    returns = pd.Series([p["equity"] for p in out.equity]).pct_change().dropna()
    assert len(returns) == out.bars - 1  # the whole curve (fewer points than the sampling cap)
    assert out.metrics["sharpe_ratio"] == pytest.approx(qs.stats.sharpe(returns, periods=12))
    # The old 365-day factor overstated it by sqrt(365 / 12), about 5.5 times.
    daily = run_backtest(bars, strategy, Execution(), 10_000.0, start, periods_per_year=365.0)
    ratio = daily.metrics["sharpe_ratio"] / out.metrics["sharpe_ratio"]
    assert ratio == pytest.approx(np.sqrt(365 / 12))
