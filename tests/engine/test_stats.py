"""Metrics against hand computations on a small equity series."""

import math

import numpy as np
import pytest

from engine.stats import compute_metrics, periods_per_year

R_NAMES = ("pnl_r", "gross_profit_r", "gross_loss_r", "expectancy_r", "avg_win_r", "avg_loss_r")

EQ = np.array([100.0, 110.0, 99.0, 104.5, 120.0, 108.0])
PNL = np.array([10.0, -11.0, 5.5, 15.5, -12.0])
IN_MARKET = np.array([False, True, True, False, True, True])


def test_metrics_by_hand():
    ppy = 365.0
    m = compute_metrics(EQ, IN_MARKET, PNL, ppy)
    r = np.array([0.1, -0.1, 0.05555555555555555, 0.14832535885167464, -0.1])
    mean, sd = r.mean(), r.std(ddof=1)
    assert m["total_return"] == pytest.approx(0.08)
    assert m["irr_annualized"] == pytest.approx(1.08 ** (365 / 5) - 1)
    assert m["volatility_annualized"] == pytest.approx(sd * math.sqrt(365))
    assert m["sharpe_ratio"] == pytest.approx(mean / sd * math.sqrt(365))
    downside = math.sqrt((0.1**2 + 0.1**2) / 5)
    assert m["sortino_ratio"] == pytest.approx(mean / downside * math.sqrt(365))
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99 and 120 -> 108 are both 10%
    assert m["max_drawdown_duration"] == 2  # bars 2 and 3 sit below the 110 peak
    assert m["calmar_ratio"] == pytest.approx((1.08 ** (365 / 5) - 1) / 0.1)
    assert m["win_rate"] == pytest.approx(3 / 5)
    assert m["profit_factor"] == pytest.approx(31.0 / 23.0)
    assert m["expectancy"] == pytest.approx(8.0 / 5)
    assert m["avg_win"] == pytest.approx(31.0 / 3)
    assert m["avg_loss"] == pytest.approx(-11.5)
    assert m["exposure"] == pytest.approx(4 / 6)
    assert m["trade_count"] == 5


def test_undefined_metrics_are_none():
    m = compute_metrics(np.full(10, 100.0), np.zeros(10, bool), np.empty(0), 365.0)
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0 and m["trade_count"] == 0
    for key in ("sharpe_ratio", "sortino_ratio", "calmar_ratio", "win_rate", "profit_factor",
                "expectancy", "avg_win", "avg_loss"):  # fmt: skip
        assert m[key] is None, key
    assert all(v is None or math.isfinite(v) for v in m.values())


def test_periods_per_year():
    assert periods_per_year(3_600 * 10**9) == 365 * 24
    assert periods_per_year(86_400 * 10**9) == 365


def test_r_metrics_and_counts_by_hand():
    pnl = np.array([30.0, -10.0, 0.0, 50.0, -20.0, 5.0])
    r = np.array([1.5, -1.0, 0.0, 2.5, -1.0, np.nan])  # the last trip had no stop
    m = compute_metrics(EQ, IN_MARKET, pnl, 365.0, r_multiple=r, both_hit=2)
    assert (m["wins"], m["losses"], m["both_hit"]) == (3, 2, 2)
    assert m["pnl_r"] == pytest.approx(2.0)
    assert m["gross_profit_r"] == pytest.approx(4.0) and m["gross_loss_r"] == pytest.approx(-2.0)
    # seed 003: expectancyR = winRate * avgWinR + lossRate * avgLossR over the 5 trips with R
    assert m["expectancy_r"] == pytest.approx(2 / 5 * 2.0 + 2 / 5 * -1.0)
    assert m["avg_win_r"] == pytest.approx(2.0) and m["avg_loss_r"] == pytest.approx(-1.0)


def test_r_metrics_are_none_without_r():
    m = compute_metrics(EQ, IN_MARKET, PNL, 365.0)
    for key in R_NAMES:
        assert m[key] is None, key
    m = compute_metrics(EQ, IN_MARKET, np.array([1.0]), 365.0, r_multiple=np.array([0.5]))
    assert m["avg_loss_r"] is None and m["gross_loss_r"] == 0.0 and m["both_hit"] == 0


def test_the_wire_names_every_metric_and_its_counts():
    from protocol.results import COUNT_METRICS, METRICS

    m = compute_metrics(EQ, IN_MARKET, PNL, 365.0)
    assert list(METRICS) == list(dict.fromkeys(METRICS)) and set(METRICS) == set(m)
    assert set(COUNT_METRICS) <= set(m)
