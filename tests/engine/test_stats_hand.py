"""The first-screen statistics against hand computations: drawdown episodes, calendar CAGR,
returns by month and year, round-trip statistics and their edge cases, alpha and beta, the
risk-free rate, and a portfolio's equal-weight buy-and-hold."""

import math

import numpy as np
import pandas as pd
import pytest

from engine.data.store import Bars
from engine.run import run_backtest
from engine.stats import compute_metrics, period_returns
from engine.sweep import rank_key
from engine.templates import DcaPlan
from engine.templates.run import run_template
from tests.engine.peers import ALIGNED, SMA_CROSS

DAY = 86_400 * 10**9
EQ = np.array([100.0, 110.0, 99.0, 104.5, 120.0, 108.0])
TS = np.array([0, 1, 2, 5, 6, 8], dtype=np.int64) * DAY
FLAT = np.zeros(EQ.size, dtype=bool)
TRADE_KEYS = (
    "win_rate", "profit_factor", "expectancy", "avg_win", "avg_loss", "sqn", "kelly_criterion",
    "best_trade_pct", "worst_trade_pct", "avg_trade_pct", "expectancy_pct", "profit_factor_pct",
    "max_trade_duration_days", "avg_trade_duration_days", "max_trade_duration_bars",
    "avg_trade_duration_bars",
)  # fmt: skip


def trips(pnl: list[float], ret: list[float]) -> dict:
    """compute_metrics' round-trip keywords for trips each held one day and one bar."""
    k = len(pnl)
    return {
        "trip_returns": np.array(ret, dtype=np.float64),
        "trip_times": np.stack([np.arange(k), np.arange(k) + 1]) * DAY,
        "trip_bars": np.ones(k, dtype=np.int64),
    }


def test_drawdown_episodes_by_hand():
    m = compute_metrics(EQ, FLAT, np.zeros(0), 365.0, timestamps=TS)
    # 110 (day 1) -> 99, 104.5 -> recovered by 120 (day 6): deepest 1 - 99/110 = 10%, 2 bars
    # below the peak, 5 days from the peak's bar to the recovery's; 120 (day 6) -> 108 at the
    # end, not recovered: 10%, 1 bar, 2 days to the last bar
    assert m["avg_drawdown"] == pytest.approx(0.1)
    assert m["avg_drawdown_duration"] == pytest.approx(1.5)
    assert m["max_drawdown_duration"] == 2
    assert m["max_drawdown_duration_days"] == pytest.approx(5.0)
    assert m["avg_drawdown_duration_days"] == pytest.approx(3.5)
    assert m["duration_days"] == 8.0
    assert m["equity_final"] == 108.0 and m["equity_peak"] == 120.0


def test_no_drawdown_has_no_average():
    eq = np.array([100.0, 100.0, 101.0, 102.0])
    m = compute_metrics(eq, np.zeros(4, bool), np.zeros(0), 365.0, timestamps=np.arange(4) * DAY)
    assert m["max_drawdown"] == 0.0 and m["max_drawdown_duration_days"] == 0.0
    assert m["avg_drawdown"] is None and m["avg_drawdown_duration_days"] is None


def test_calendar_cagr_by_hand():
    # 100 -> 121 over two years of 365.25 days (one bar a day would make it 730.5 bars)
    ts = np.array([0, 365, 730.5]) * DAY
    m = compute_metrics(np.array([100.0, 90.0, 121.0]), np.zeros(3, bool), np.zeros(0), 365.0,
                        timestamps=ts.astype(np.int64))  # fmt: skip
    assert m["cagr"] == pytest.approx(0.1, rel=1e-12)
    assert m["irr_annualized"] == pytest.approx(1.21 ** (365 / 2) - 1)  # bars, not time


def test_returns_by_month_and_year_by_hand():
    days = ["2023-12-31T12:00", "2024-01-15", "2024-01-31T23:00", "2024-02-10", "2025-03-01"]
    ts = pd.DatetimeIndex(days).as_unit("ns").asi8
    eq = np.array([100.0, 110.0, 99.0, 108.9, 119.79])
    out = period_returns(eq, ts)
    assert out["returns_by_month"] == [
        {"month": "2023-12", "return": 0.0},
        {"month": "2024-01", "return": pytest.approx(-0.01)},
        {"month": "2024-02", "return": pytest.approx(0.1)},
        {"month": "2025-03", "return": pytest.approx(0.1)},
    ]
    assert out["returns_by_year"] == [
        {"year": "2023", "return": 0.0},
        {"year": "2024", "return": pytest.approx(0.089)},
        {"year": "2025", "return": pytest.approx(0.1)},
    ]


def test_trade_statistics_by_hand():
    pnl = np.array([10.0, -5.0, 20.0, -5.0])
    kw = trips(list(pnl), [0.1, -0.05, 0.2, -0.05])
    kw["trip_times"] = np.array([[0, 2, 5, 9], [1, 5, 6, 10]]) * DAY
    kw["trip_bars"] = np.array([1, 3, 1, 1])
    m = compute_metrics(EQ, FLAT, pnl, 365.0, **kw, commissions=1.5)
    sd = math.sqrt(((10 - 5) ** 2 + (-5 - 5) ** 2 + (20 - 5) ** 2 + (-5 - 5) ** 2) / 3)
    assert m["sqn"] == pytest.approx(math.sqrt(4) * 5 / sd)
    assert m["kelly_criterion"] == pytest.approx(0.5 - 0.5 / (15 / 5))
    assert (m["best_trade_pct"], m["worst_trade_pct"]) == (0.2, -0.05)
    assert m["avg_trade_pct"] == pytest.approx((1.1 * 0.95 * 1.2 * 0.95) ** 0.25 - 1)
    assert m["expectancy_pct"] == pytest.approx(0.05)
    assert m["profit_factor_pct"] == pytest.approx(0.3 / 0.1)
    assert m["max_trade_duration_days"] == 3.0 and m["avg_trade_duration_days"] == 1.5
    assert m["max_trade_duration_bars"] == 3 and m["avg_trade_duration_bars"] == 1.5
    assert m["commissions"] == 1.5


def test_no_trades():
    m = compute_metrics(EQ, FLAT, np.zeros(0), 365.0, **trips([], []), commissions=0.0)
    assert (m["trade_count"], m["wins"], m["losses"], m["commissions"]) == (0, 0, 0, 0.0)
    assert all(m[k] is None for k in TRADE_KEYS), [k for k in TRADE_KEYS if m[k] is not None]


def test_one_trade():
    m = compute_metrics(EQ, FLAT, np.array([8.0]), 365.0, **trips([8.0], [0.08]))
    assert m["win_rate"] == 1.0 and m["expectancy"] == 8.0
    for key in ("best_trade_pct", "worst_trade_pct", "avg_trade_pct", "expectancy_pct"):
        assert m[key] == pytest.approx(0.08), key
    # a standard deviation needs two trades, Kelly and profit factors a loss
    for key in ("sqn", "kelly_criterion", "profit_factor", "profit_factor_pct", "avg_loss"):
        assert m[key] is None, key


def test_no_losses():
    pnl = [4.0, 6.0, 0.0]
    m = compute_metrics(EQ, FLAT, np.array(pnl), 365.0, **trips(pnl, [0.04, 0.06, 0.0]))
    assert (m["wins"], m["losses"], m["win_rate"]) == (2, 0, pytest.approx(2 / 3))
    assert m["sqn"] == pytest.approx(math.sqrt(3) * (10 / 3) / np.std(pnl, ddof=1))
    for key in ("profit_factor", "profit_factor_pct", "kelly_criterion", "avg_loss"):
        assert m[key] is None, key


def test_a_trade_losing_everything_has_no_geometric_average():
    pnl = [5.0, -120.0]  # a leveraged trade losing 120% of its margin
    m = compute_metrics(EQ, FLAT, np.array(pnl), 365.0, **trips(pnl, [0.05, -1.2]))
    assert m["avg_trade_pct"] is None
    assert m["expectancy_pct"] == pytest.approx(-0.575) and m["worst_trade_pct"] == -1.2


def test_alpha_beta_by_hand():
    bench = np.array([50.0, 52.0, 51.0, 53.0, 56.0, 55.0])
    m = compute_metrics(EQ, FLAT, np.zeros(0), 252.0, benchmark=bench)
    r, b = EQ[1:] / EQ[:-1] - 1, bench[1:] / bench[:-1] - 1
    beta = ((r - r.mean()) * (b - b.mean())).sum() / ((b - b.mean()) ** 2).sum()
    assert m["beta"] == pytest.approx(beta, rel=1e-12)
    assert m["alpha"] == pytest.approx((r.mean() - beta * b.mean()) * 252, rel=1e-12)
    assert m["buy_and_hold_return"] == pytest.approx(55 / 50 - 1)


def test_constant_benchmark_has_no_beta():
    m = compute_metrics(EQ, FLAT, np.zeros(0), 252.0, benchmark=np.full(EQ.size, 7.0))
    assert m["buy_and_hold_return"] == 0.0 and m["beta"] is None and m["alpha"] is None


def test_missing_inputs_leave_their_metrics_undefined():
    m = compute_metrics(EQ, FLAT, np.zeros(0), 365.0)
    for key in ("duration_days", "cagr", "avg_drawdown", "buy_and_hold_return", "alpha", "beta",
                "commissions", "best_trade_pct", "max_trade_duration_days"):  # fmt: skip
        assert m[key] is None, key
    assert all(v is None or math.isfinite(v) for v in m.values())


def test_risk_free_rate_by_hand():
    ppy, rate = 365.0, 0.05
    m = compute_metrics(EQ, FLAT, np.zeros(0), ppy, risk_free_rate=rate)
    x = EQ[1:] / EQ[:-1] - 1 - (1.05 ** (1 / 365) - 1)
    assert m["sharpe_ratio"] == pytest.approx(x.mean() / x.std(ddof=1) * math.sqrt(ppy))
    downside = math.sqrt(sum(v * v for v in x if v < 0) / x.size)
    assert m["sortino_ratio"] == pytest.approx(x.mean() / downside * math.sqrt(ppy))
    assert m["volatility_annualized"] == pytest.approx(x.std(ddof=1) * math.sqrt(ppy))


def test_portfolio_buy_and_hold_is_equal_weight_by_hand():
    # two symbols on different clocks: A hourly from hour 0, B every other hour from hour 3
    hour, rng = 3_600 * 10**9, np.random.default_rng(11)
    times = {"A": np.arange(300) * hour, "B": (3 + 2 * np.arange(150)) * hour}
    bars = {}
    for s, ts in times.items():
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, ts.size)))
        bars[s] = Bars(ts.astype(np.int64), close, close * 1.01, close * 0.99, close,
                       np.ones(ts.size))  # fmt: skip
    out = run_backtest(bars, SMA_CROSS, ALIGNED, 10_000.0, 0, max_points=10_000)
    assert out.round_trips  # the equity moves, so beta is not trivially 0
    frame = pd.DataFrame({s: pd.Series(b.close, index=b.ts) for s, b in bars.items()})
    held = (frame.ffill() / frame.bfill().iloc[0]).where(frame.ffill().notna(), 1.0)
    curve = held.mean(axis=1).to_numpy()  # each symbol: half the capital, bought at its 1st bar
    assert out.metrics["buy_and_hold_return"] == pytest.approx(curve[-1] - 1, rel=1e-12)
    eq = np.array([p["equity"] for p in out.equity])
    assert eq.size == curve.size
    r, b = eq[1:] / eq[:-1] - 1, curve[1:] / curve[:-1] - 1
    beta = np.cov(r, b)[0, 1] / np.var(b, ddof=1)
    assert out.metrics["beta"] == pytest.approx(beta, rel=1e-12)
    assert out.period == {"start": 0, "end": int(301 * hour)}  # B's last bar


@pytest.mark.parametrize(
    "metric",
    ["avg_drawdown", "avg_drawdown_duration", "max_drawdown_duration_days",
     "avg_drawdown_duration_days", "commissions"],
)  # fmt: skip
def test_sweeps_rank_drawdowns_and_commissions_lowest_first(metric):
    rows = [{"number": n, "metrics": {metric: v}} for n, v in ((1, 0.3), (2, None), (3, 0.1))]
    assert [r["number"] for r in sorted(rows, key=rank_key(metric))] == [3, 1, 2]


def test_template_runs_report_the_statistics():
    # a DCA plan buying 50 every 4 hours on a rising then falling hourly series
    hour = 3_600 * 10**9
    close = np.concatenate([np.linspace(100, 130, 40), np.linspace(130, 90, 40)])
    ts = (np.arange(close.size) * hour).astype(np.int64)
    bars = {"X": Bars(ts, close, close + 0.5, close - 0.5, close, np.ones(close.size))}
    out = run_template(bars, DcaPlan(50.0, "4h"), 1_000.0, int(ts[10]), maker_bps=0.0,
                       taker_bps=10.0, periods_per_year=8760.0, risk_free_rate=0.05)  # fmt: skip
    m = out.metrics
    assert m["buy_and_hold_return"] == pytest.approx(close[-1] / close[10] - 1)
    assert out.trades and m["commissions"] == pytest.approx(
        sum(f["commission"] for f in out.trades)
    )
    assert out.period == {"start": int(ts[10]), "end": int(ts[-1])}
    assert m["duration_days"] == pytest.approx(69 / 24)
    eq = np.array([p["equity"] for p in out.equity])
    x = eq[1:] / eq[:-1] - 1 - (1.05 ** (1 / 8760) - 1)
    assert m["sharpe_ratio"] == pytest.approx(x.mean() / x.std(ddof=1) * math.sqrt(8760))
    assert [row["month"] for row in out.returns_by_month] == ["1970-01"]
    assert out.returns_by_month[0]["return"] == pytest.approx(m["total_return"])
