"""The annualisation factor follows the bars: each rule by hand, and BTCUSD against quantstats."""

from pathlib import Path

import backtesting
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from engine.annualisation import annualisation, bars_per_year
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
