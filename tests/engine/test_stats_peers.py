"""The first-screen statistics against backtesting.py's `stats` and quantstats, on GOOG and EURUSD.

The run is tests/engine/peers.py's SMA 10/30 crossover (0.1% commission, all-in whole units),
whose trades and equity curve match backtesting.py's bar for bar (test_differential.py). Each of
our statistics is compared with the peer's value on that same run; where our definition differs
on purpose (the README's "Verified against peers" lists each difference), the test rescales the
peer's per-trade data to our definition or checks ours against a hand computation.

Tolerances: 1e-12 relative unless a comment says otherwise. Both sides compute the same formula
on the same float64 inputs in a different order (numba loops against numpy/pandas reductions),
so they differ by a few ulps times the length of a sum (observed at most ~3e-14).
"""

from functools import cache

import empyrical
import numpy as np
import pandas as pd
import pytest
import quantstats as qs
from backtesting.test import EURUSD, GOOG

from engine.run import run_backtest
from engine.stats import compute_metrics
from tests.engine.peers import ALIGNED, CASH, SMA_CROSS, ours, peer, to_bars

REL = 1e-12
DAY = pd.Timedelta(days=1)
US_IN_DAYS = 1e-6 / 86_400
FEE = 0.001  # the run's commission per fill
PPY = {"GOOG": 252.0, "EURUSD": 365.0 * 24}  # daily exchange bars; hourly bars, every day
FRAMES = {"GOOG": GOOG, "EURUSD": EURUSD}


@cache
def both(name: str) -> tuple:
    """(name, frame, backtesting.py's stats, our output) for one bundled file."""
    df = FRAMES[name]
    return name, df, peer(df), ours(df, PPY[name])


@pytest.fixture(params=["GOOG", "EURUSD"])
def run(request):
    """Both runs of one bundled file."""
    return both(request.param)


def equity_of(out) -> np.ndarray:
    """Our full-resolution equity curve (the test keeps every bar)."""
    return np.array([p["equity"] for p in out.equity])


def bar_returns(df: pd.DataFrame, out) -> tuple[pd.Series, pd.Series]:
    """(our equity's bar returns, the symbol's close-to-close returns), indexed by bar time."""
    eq, close = equity_of(out), df["Close"].to_numpy(np.float64)
    index = df.index[1:]
    return pd.Series(eq[1:] / eq[:-1] - 1, index=index), pd.Series(
        close[1:] / close[:-1] - 1, index=index
    )


# ---- against backtesting.py -----------------------------------------------------------------


def test_period_equity_and_calendar_cagr_match_backtesting(run):
    _name, _df, theirs, out = run
    m = out.metrics
    assert out.period == {
        "start": theirs["Start"].value,
        "end": theirs["End"].value,
    }
    assert m["duration_days"] == pytest.approx(theirs["Duration"] / DAY, rel=REL)
    assert m["equity_final"] == pytest.approx(theirs["Equity Final [$]"], rel=REL)
    assert m["equity_peak"] == pytest.approx(theirs["Equity Peak [$]"], rel=REL)
    # CAGR on calendar time: growth ** (365.25 days / duration) - 1, backtesting.py's definition
    assert m["cagr"] == pytest.approx(theirs["CAGR [%]"] / 100, rel=REL)


def test_same_annualisation_return_and_calmar_match_backtesting():
    # Only GOOG: backtesting.py annualises EURUSD's hourly bars from daily resampled equity.
    _name, _df, theirs, out = both("GOOG")
    # GOOG: daily bars without weekends, so backtesting.py annualises its daily returns with
    # 252, the factor we pass; its geometric annualised return is then our irr_annualized.
    assert out.metrics["irr_annualized"] == pytest.approx(
        theirs["Return (Ann.) [%]"] / 100, rel=REL
    )
    assert out.metrics["calmar_ratio"] == pytest.approx(theirs["Calmar Ratio"], rel=REL)


def test_drawdown_depths_and_durations_match_backtesting(run):
    _name, _df, theirs, out = run
    m = out.metrics
    assert m["max_drawdown"] == pytest.approx(-theirs["Max. Drawdown [%]"] / 100, rel=REL)
    assert m["avg_drawdown"] == pytest.approx(-theirs["Avg. Drawdown [%]"] / 100, rel=REL)
    # backtesting.py prints durations rounded up to the bar period; its equity curve keeps the
    # exact duration of each episode (peak bar to recovery bar, or to the last bar)
    durations = theirs["_equity_curve"]["DrawdownDuration"].dropna()
    assert m["max_drawdown_duration_days"] == pytest.approx(durations.max() / DAY, rel=REL)
    assert m["avg_drawdown_duration_days"] == pytest.approx(
        durations.mean() / DAY, rel=REL, abs=US_IN_DAYS
    )
    assert m["max_drawdown_duration_days"] == theirs["Max. Drawdown Duration"] / DAY


def test_trade_statistics_match_backtesting(run):
    _name, _df, theirs, out = run
    m, trades = out.metrics, theirs["_trades"]
    assert m["trade_count"] == theirs["# Trades"] and m["wins"] == (trades["PnL"] > 0).sum()
    assert m["win_rate"] == pytest.approx(theirs["Win Rate [%]"] / 100, rel=REL)
    assert m["sqn"] == pytest.approx(theirs["SQN"], rel=REL)
    assert m["kelly_criterion"] == pytest.approx(theirs["Kelly Criterion"], rel=REL)
    assert m["max_trade_duration_days"] == pytest.approx(trades["Duration"].max() / DAY, rel=REL)
    # the bundled frames' times are in microseconds, and pandas truncates a mean of durations to
    # that unit: the peer's average is exact to 1 us
    assert m["avg_trade_duration_days"] == pytest.approx(
        trades["Duration"].mean() / DAY, rel=REL, abs=US_IN_DAYS
    )
    # profit factor on trade returns: a ratio of sums, so the denominators' common factor
    # (below) cancels and the peer's value is ours as it stands
    assert m["profit_factor_pct"] == pytest.approx(theirs["Profit Factor"], rel=REL)


def test_trade_returns_match_backtesting_over_our_denominator(run):
    # backtesting.py's trade return is pnl / (size x entry price); ours (a round trip's
    # `return`) is pnl / (size x entry price + entry fee), the capital the trade committed. With
    # a 0.1% fee on every entry the two differ by the factor 1.001 on every trade.
    _name, _df, theirs, out = run
    m = out.metrics
    ret = theirs["_trades"]["ReturnPct"].to_numpy() / (1 + FEE)
    ours_ret = np.array([t["return"] for t in out.round_trips])
    np.testing.assert_allclose(ours_ret, ret, rtol=REL)
    assert m["best_trade_pct"] == pytest.approx(theirs["Best Trade [%]"] / 100 / (1 + FEE), rel=REL)
    assert m["worst_trade_pct"] == pytest.approx(
        theirs["Worst Trade [%]"] / 100 / (1 + FEE), rel=REL
    )
    assert m["expectancy_pct"] == pytest.approx(theirs["Expectancy [%]"] / 100 / (1 + FEE), rel=REL)
    # the geometric mean of the rescaled returns, backtesting.py's "Avg. Trade" formula
    assert m["avg_trade_pct"] == pytest.approx(np.expm1(np.log1p(ret).mean()), rel=REL)


def test_commissions_are_every_fill_backtesting_counts_closed_trades(run):
    # backtesting.py sums the commissions of closed trades; ours are every fee the account paid,
    # so a position still open at the end adds its entry fee
    _name, _df, theirs, out = run
    closed = sum(t["commission"] for t in out.round_trips)
    assert closed == pytest.approx(theirs["Commissions [$]"], rel=REL)
    open_fees = sum(p["quantity"] * p["entry_price"] * FEE for p in out.open_positions)
    assert out.metrics["commissions"] == pytest.approx(closed + open_fees, rel=REL)
    assert out.metrics["commissions"] == pytest.approx(
        sum(f["commission"] for f in out.trades), rel=REL
    )


def test_buy_and_hold_matches_backtesting_over_the_same_window(run):
    # backtesting.py's buy-and-hold starts at the first bar its indicators are defined on (29
    # for the 30-bar SMA); ours at the first bar of the trading period. Started there, our run
    # makes the same trades and the two buy-and-hold returns are the same.
    name, df, theirs, whole = run
    first = int(np.argmax(df["Close"].rolling(30).mean().notna().to_numpy()))
    out = ours(df, PPY[name], start=first)
    assert len(out.round_trips) == theirs["# Trades"]
    assert out.metrics["buy_and_hold_return"] == pytest.approx(
        theirs["Buy & Hold Return [%]"] / 100, rel=REL
    )
    close = df["Close"].to_numpy()
    assert whole.metrics["buy_and_hold_return"] == pytest.approx(close[-1] / close[0] - 1, rel=REL)


def test_exposure_counts_bars_ending_in_a_position(run):
    # backtesting.py counts a trade's bars from its entry bar through its exit bar (closed trades
    # only); ours counts the bars that end holding a position: the exit bar (filled at its open)
    # ends flat, and a position still open at the end counts to the last bar.
    _name, df, theirs, out = run
    n, index = len(df), df.index.as_unit("ns").asi8
    held = sum(
        np.searchsorted(index, t["exit_time"]) - np.searchsorted(index, t["entry_time"])
        for t in out.round_trips
    )
    held += sum(n - np.searchsorted(index, p["entry_time"]) for p in out.open_positions)
    assert out.metrics["exposure"] == pytest.approx(held / n, rel=REL)
    trades = theirs["_trades"]
    theirs_held = (trades["ExitBar"] - trades["EntryBar"] + 1).sum()
    assert theirs["Exposure Time [%]"] / 100 == pytest.approx(theirs_held / n, rel=REL)


# ---- against quantstats (and empyrical) on the same bar returns -----------------------------


def test_alpha_beta_match_quantstats_greeks(run):
    # ours: simple bar returns against buy-and-hold's, alpha annualised arithmetically, as
    # quantstats' greeks (backtesting.py regresses log returns and reports a total-return alpha)
    name, df, _theirs, out = run
    r, b = bar_returns(df, out)
    greeks = qs.stats.greeks(r, b, periods=PPY[name])
    assert out.metrics["beta"] == pytest.approx(greeks["beta"], rel=REL)
    assert out.metrics["alpha"] == pytest.approx(greeks["alpha"], rel=REL)
    assert out.metrics["beta"] == pytest.approx(empyrical.beta(r, b), rel=REL)


@pytest.mark.parametrize("rate", [0.0, 0.04, -0.01])
def test_sharpe_sortino_with_a_risk_free_rate_match_quantstats(run, rate):
    # quantstats de-annualises the rate per period, (1 + rate) ** (1 / periods) - 1, and
    # subtracts it from every return; it skips a rate that is not positive, so the negative
    # rate is checked against the same formula written here with pandas
    name, df, _theirs, out = run
    ppy = PPY[name]
    r, _ = bar_returns(df, out)
    m = compute_metrics(
        equity_of(out), np.zeros(len(df), bool), np.zeros(0), ppy, risk_free_rate=rate
    )
    if rate >= 0:
        sharpe, sortino = (
            qs.stats.sharpe(r, rf=rate, periods=ppy),
            qs.stats.sortino(r, rf=rate, periods=ppy),
        )
    else:
        x = r - ((1 + rate) ** (1 / ppy) - 1)
        sharpe = x.mean() / x.std() * np.sqrt(ppy)
        sortino = x.mean() / np.sqrt((x.clip(upper=0) ** 2).mean()) * np.sqrt(ppy)
    assert m["sharpe_ratio"] == pytest.approx(sharpe, rel=REL)
    assert m["sortino_ratio"] == pytest.approx(sortino, rel=REL)


def test_a_runs_risk_free_rate_reaches_its_sharpe_and_sortino(run):
    name, df, _theirs, _out = run
    bars = to_bars(df)
    out = run_backtest(
        {"X": bars}, SMA_CROSS, ALIGNED, CASH, int(bars.ts[0]), max_points=len(bars),
        periods_per_year=PPY[name], risk_free_rate=0.04,
    )  # fmt: skip
    r, _ = bar_returns(df, out)
    assert out.metrics["sharpe_ratio"] == pytest.approx(
        qs.stats.sharpe(r, rf=0.04, periods=PPY[name]), rel=REL
    )
    assert out.metrics["sortino_ratio"] == pytest.approx(
        qs.stats.sortino(r, rf=0.04, periods=PPY[name]), rel=REL
    )


def test_cagr_in_bars_calmar_and_average_drawdown_match_quantstats(run):
    name, df, _theirs, out = run
    r, _ = bar_returns(df, out)
    m = out.metrics
    assert m["irr_annualized"] == pytest.approx(qs.stats.cagr(r, periods=PPY[name]), rel=REL)
    assert m["calmar_ratio"] == pytest.approx(qs.stats.calmar(r, periods=PPY[name]), rel=REL)
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(r))
    assert m["avg_drawdown"] == pytest.approx(-details["max drawdown"].mean() / 100, rel=REL)


def test_returns_by_month_and_year_match_quantstats(run):
    _name, df, _theirs, out = run
    r, _ = bar_returns(df, out)
    table = qs.stats.monthly_returns(r, eoy=True, compounded=True)
    months = out.returns_by_month
    for row in months:
        year = row["month"][:4]
        label = pd.Timestamp(f"{row['month']}-01").strftime("%b").upper()
        assert row["return"] == pytest.approx(table.loc[year, label], rel=REL, abs=1e-15)
    assert [m["month"] for m in months] == sorted({t.strftime("%Y-%m") for t in df.index})
    years = out.returns_by_year
    assert [y["year"] for y in years] == list(table.index)
    for row in years:
        assert row["return"] == pytest.approx(table.loc[row["year"], "EOY"], rel=REL, abs=1e-15)
    growth = np.prod([1 + y["return"] for y in years])
    assert growth - 1 == pytest.approx(out.metrics["total_return"], rel=1e-10)  # compounding


def test_alpha_beta_against_a_named_benchmark_match_quantstats():
    # A benchmark symbol with bars on every other day of GOOG's: each bar of the run compares
    # with the benchmark's last close at or before it (pandas' forward fill, independently).
    df = GOOG
    rng = np.random.default_rng(5)
    bench_df = df.iloc[::2].copy()
    bench_df["Close"] = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(bench_df))))
    bench_df[["Open", "High", "Low"]] = bench_df[["Close"] * 3].to_numpy()
    bars = to_bars(df)
    out = run_backtest(
        {"X": bars}, SMA_CROSS, ALIGNED, CASH, int(bars.ts[0]), max_points=len(bars),
        periods_per_year=252.0, benchmark=to_bars(bench_df),
    )  # fmt: skip
    versus = bench_df["Close"].reindex(df.index, method="ffill")
    r = pd.Series(equity_of(out)).pct_change().dropna()
    b = pd.Series(versus.to_numpy()).pct_change().dropna()
    greeks = qs.stats.greeks(r, b, periods=252.0)
    assert out.metrics["beta"] == pytest.approx(greeks["beta"], rel=REL)
    assert out.metrics["alpha"] == pytest.approx(greeks["alpha"], rel=REL)
    assert out.metrics["benchmark_return"] == pytest.approx(
        versus.iloc[-1] / versus.iloc[0] - 1, rel=REL
    )
    # buy-and-hold stays the traded symbol's own
    assert out.metrics["buy_and_hold_return"] == pytest.approx(
        df["Close"].iloc[-1] / df["Close"].iloc[0] - 1, rel=REL
    )
    assert ours(df, 252.0).metrics["benchmark_return"] is None
