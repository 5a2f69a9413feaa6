"""Differential tests: our engine against backtesting.py, our metrics against empyrical.

The strategy is an SMA 10/30 crossover, long only: enter when the fast SMA crosses above the slow
one, exit when it crosses below; orders fill at the next bar's open with a 0.1% commission per
fill. Conventions aligned with backtesting.py (read from its ``_Broker._process_orders``):

- Its default order size (all available margin) buys ``(cash * (1 - eps)) // (price * (1 +
  commission))`` whole units: the fee-adjusted all-in rule. Our ``sizing="fraction", size=1.0,
  lot_size=1`` computes ``floor(equity / (price * (1 + fee)))``, the same rule (equity == cash
  when flat; the (1 - eps) factor only matters when the quotient is an integer to within 1 ulp).
- Its commission is charged on each fill's notional at the fill price, like our ``fixed_bps``.
- Everything else in our risk model is switched off: no stop (atr_multiplier 0), no caps, no
  minimum trade amount or balance, one position, no cooldowns (limits 0).
- EURUSD (hourly, price ~1.1) is traded in whole units with 10,000 of capital, so each trade is
  about 9,000 units and the rounding to whole units is tiny; no price scaling is needed.
- A position still open at the end stays open in both (backtesting.py ``finalize_trades=False``)
  and is valued in the final equity.
"""

import warnings

import empyrical
import numpy as np
import pandas as pd
import pytest
import quantstats as qs
from backtesting import Backtest
from backtesting.test import EURUSD, GOOG

from engine.execution import Execution
from engine.run import run_backtest
from engine.stats import compute_metrics
from tests.engine.peers import ALIGNED, CASH, SMA_CROSS, SmaCross, ours, peer, to_bars


@pytest.fixture(scope="module", params=["GOOG", "EURUSD"])
def pair(request):
    df = {"GOOG": GOOG, "EURUSD": EURUSD}[request.param]
    return df, peer(df), ours(df, 252.0 if request.param == "GOOG" else None)


def test_trades_match_one_for_one(pair):
    df, theirs, out = pair
    trades = theirs["_trades"]
    index = df.index.as_unit("ns").asi8
    assert len(out.round_trips) == len(trades) > 10
    for t, (_, row) in zip(out.round_trips, trades.iterrows(), strict=True):
        assert np.searchsorted(index, t["entry_time"]) == row["EntryBar"]
        assert np.searchsorted(index, t["exit_time"]) == row["ExitBar"]
        assert t["entry_price"] == row["EntryPrice"] and t["exit_price"] == row["ExitPrice"]
        assert t["quantity"] == row["Size"]
        assert t["pnl"] == pytest.approx(row["PnL"], rel=1e-9, abs=1e-9)
        assert t["return"] != 0.0


def test_equity_drawdown_and_return_match(pair):
    _df, theirs, out = pair
    curve = theirs["_equity_curve"]["Equity"].to_numpy()
    equity = np.array([p["equity"] for p in out.equity])
    assert equity.size == curve.size
    np.testing.assert_allclose(equity, curve, rtol=1e-9)
    assert equity[-1] == pytest.approx(theirs["Equity Final [$]"], rel=1e-9)
    assert out.metrics["total_return"] * 100 == pytest.approx(theirs["Return [%]"], rel=1e-6)
    assert -out.metrics["max_drawdown"] * 100 == pytest.approx(
        theirs["Max. Drawdown [%]"], rel=1e-6
    )
    assert out.metrics["trade_count"] == theirs["# Trades"]
    assert out.metrics["win_rate"] * 100 == pytest.approx(theirs["Win Rate [%]"], rel=1e-9)


def empyrical_metrics(returns: np.ndarray, ppy: float) -> dict[str, float]:
    """Return empyrical's values for the metrics whose definitions we share."""
    r = pd.Series(returns)
    return {
        "sharpe_ratio": empyrical.sharpe_ratio(r, annualization=ppy),
        "sortino_ratio": empyrical.sortino_ratio(r, annualization=ppy),
        "volatility_annualized": empyrical.annual_volatility(r, annualization=ppy),
        "irr_annualized": empyrical.annual_return(r, annualization=ppy),
        "max_drawdown": -empyrical.max_drawdown(r),
        "calmar_ratio": empyrical.calmar_ratio(r, annualization=ppy),
    }


def check_against_empyrical(metrics: dict, equity: np.ndarray, ppy: float) -> None:
    """Assert our metrics equal empyrical's on the equity's bar returns within 1e-6 relative."""
    expected = empyrical_metrics(equity[1:] / equity[:-1] - 1.0, ppy)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-6), key


def test_metrics_on_strategy_equity_match_empyrical():
    # Definitions shared with empyrical: sharpe = mean / std(ddof=1) * sqrt(ppy) (risk-free 0);
    # sortino = mean / sqrt(mean(min(r, 0)^2)) * sqrt(ppy) (empyrical's downside risk, target
    # 0, averaged over all periods, the same convention as quantstats'); CAGR = growth **
    # (ppy / periods) - 1, counted in bars, not calendar days (older quantstats releases divided
    # calendar days by 365, which for a 252-day exchange calendar disagrees with the bar-based
    # annualisation of every other metric, so we keep the bar count, as empyrical and current
    # quantstats do); calmar = CAGR / max drawdown; volatility = std(ddof=1) * sqrt(ppy).
    out = ours(GOOG, 252.0)
    equity = np.array([p["equity"] for p in out.equity])
    check_against_empyrical(out.metrics, equity, 252.0)


def test_metrics_on_raw_goog_returns_match_empyrical():
    close = GOOG["Close"].to_numpy(np.float64)
    metrics = compute_metrics(close, np.ones(close.size, bool), np.empty(0), 252.0)
    check_against_empyrical(metrics, close, 252.0)


def test_metrics_on_strategy_equity_match_quantstats():
    out = ours(GOOG, 252.0)
    equity = np.array([p["equity"] for p in out.equity])
    r = pd.Series(equity[1:] / equity[:-1] - 1.0, index=GOOG.index[1:])
    expected = {
        "irr_annualized": qs.stats.cagr(r, periods=252),
        "sharpe_ratio": qs.stats.sharpe(r, periods=252),
        "sortino_ratio": qs.stats.sortino(r, periods=252),
        "volatility_annualized": qs.stats.volatility(r, periods=252),
    }
    for key, value in expected.items():
        assert out.metrics[key] == pytest.approx(value, rel=1e-6), key


def test_close_fill_mode_matches_backtesting_trade_on_close():
    # backtesting.py's trade_on_close fills market orders at the signal bar's close
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Backtest(GOOG, SmaCross, cash=CASH, commission=0.001, trade_on_close=True).run()
    bars = to_bars(GOOG)
    ex = Execution(**{**ALIGNED.__dict__, "fill": "close"})
    out = run_backtest({"X": bars}, SMA_CROSS, ex, CASH, int(bars.ts[0]), max_points=len(bars))
    assert [t["entry_price"] for t in out.round_trips] == list(theirs["_trades"]["EntryPrice"])
    assert [t["quantity"] for t in out.round_trips] == list(theirs["_trades"]["Size"])
    assert out.equity[-1]["equity"] == pytest.approx(theirs["Equity Final [$]"], rel=1e-9)
