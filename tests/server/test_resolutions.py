"""Runs at tick, second, week and month resolution on stored data, through the running server.

Expected values come from the files themselves (a hand-built tick path whose one trade is
known in advance) or from pandas and quantstats working on the same files, never from our own
output.
"""

import subprocess
import sys
from pathlib import Path
from typing import Any

import backtesting
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from engine.data.store import Bars, BarStore
from tests.server.api_helpers import completed_run, wait_state
from tests.server.harness import ServerProcess, Subscriber, backtest

FILES = Path(backtesting.__file__).parent / "test"
ROOT = Path(__file__).resolve().parents[2]
NS = 1_000_000_000
DAY0 = int(pd.Timestamp("2024-05-06T00:00:00Z").value)  # a Monday
A, B = 30_000, 50_000  # the ticks where the price first rises above 101, then drops below 100
ALL_IN = {"sizing": "fraction", "size": 1.0, "lot_size": 1, "fee_bps": 0, "slippage_bps": 0,
          "atr_multiplier": 0, "max_trade_amount": 1e12, "max_units_per_trade": 1e12}  # fmt: skip
ENTRY = {"condition": "close > 101", "signal_type": "TRIGGER"}
EXIT = {"condition": "close < 100", "signal_type": "TRIGGER"}


def import_file(srv: ServerProcess, path: Path, symbol: str, *extra: str) -> str:
    """Import a CSV with the CLI into the server's data directory; return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "data", "import", str(path), "--symbol", symbol,
         "--data-dir", str(srv.data_dir), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def day_of_ticks() -> tuple[np.ndarray, np.ndarray]:
    """A day of ticks 0.2-1.8 s apart (two share a time), flat at 100, above 101 from tick A,
    below 100 from tick B: one long trade, entered at tick A+1's price and left at B+1's."""
    rng = np.random.default_rng(13)
    ts = DAY0 + np.cumsum(rng.integers(200, 1800, 86_400)) * 1_000_000
    ts[10] = ts[9]
    price = np.full(ts.size, 100.0)
    price[A:B] = 101.5 + (np.arange(B - A) % 7) * 0.25  # 101.5 .. 103.0
    price[B:] = 99.0 - (np.arange(ts.size - B) % 5) * 0.1
    return ts.astype(np.int64), price


@pytest.fixture(scope="module")
def ticks(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    ts, price = day_of_ticks()
    path = tmp_path_factory.mktemp("ticks") / "ticks.csv"
    size = np.arange(ts.size) % 3 + 1
    pd.DataFrame({"timestamp": ts, "price": price, "size": size}).rename(
        columns={"size": "volume"}
    ).to_csv(path, index=False)
    out = import_file(server, path, "TICKDAY", "--resolution", "tick")
    assert "86400 rows read" in out and "tick" in out
    BarStore(server.data_dir / "bars").write(
        "TICKDAY2", Bars(ts, price, price, price, price, size.astype(float)), resolution="tick"
    )
    return ts, price


def iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat().replace("+00:00", "Z")


def run_body(symbol: str, resolution: str, start: int, end: int, **extra: Any) -> dict:
    strategy = {"name": "levels", "entry": [ENTRY], "exit": [EXIT]}
    return backtest(symbols=[symbol], resolution=resolution, start=iso(start), end=iso(end),
                    strategy=strategy, execution=ALL_IN, **extra)  # fmt: skip


def ns_of(text: str) -> int:
    return int(pd.Timestamp(text).value)


async def test_tick_run_fills_at_the_next_tick(server: ServerProcess, ticks: tuple) -> None:
    ts, price = ticks
    async with server.client() as c:
        created, res = await completed_run(c, run_body("TICKDAY", "tick", ts[0], ts[-1]))
    [trip] = res["round_trips"]
    # The signal tick's close crosses the level; the order fills at the next tick's price.
    assert trip["entry_price"] == price[A + 1] and ns_of(trip["entry_time"]) == ts[A + 1]
    assert trip["exit_price"] == price[B + 1] and ns_of(trip["exit_time"]) == ts[B + 1]
    units = np.floor(10_000.0 / price[A + 1])
    assert trip["quantity"] == units
    assert trip["pnl"] == pytest.approx(units * (price[B + 1] - price[A + 1]), abs=1e-9)
    assert res["bars"] == ts.size  # every tick is a step, the two sharing a time too
    span_years = (ts[-1] - ts[0]) / (365 * 86_400 * NS)
    annual = res["annualization"]
    assert annual["periods_per_year"] == pytest.approx((ts.size - 1) / span_years, rel=1e-12)
    assert "ticks" in annual["basis"] and annual["risk_free_rate"] == 0.0
    sub = Subscriber(server, created["run_id"])
    await sub.follow()
    simulate = [e["data"]["progress"] for e in sub.seen if e["type"] == "progress"
                and e["data"]["phase"] == "simulate"]  # fmt: skip
    assert len(simulate) > 1 and simulate == sorted(simulate)
    logs = [e["data"]["message"] for e in sub.seen if e["type"] == "log"]
    assert any(m.startswith(f"TICKDAY: {ts.size} bars traded") for m in logs), logs


async def test_second_bars_built_from_ticks_match_pandas(
    server: ServerProcess, ticks: tuple
) -> None:
    ts, price = ticks
    frame = pd.Series(price, index=pd.to_datetime(ts, utc=True)).resample("1s")
    opens = frame.first().dropna()
    # A run takes bars opening in [start, end] whose second has closed by the data's last tick.
    first, last = pd.Timestamp(int(ts[0]), tz="UTC"), pd.Timestamp(int(ts[-1]), tz="UTC")
    opens = opens[(opens.index >= first) & (opens.index + pd.Timedelta("1s") <= last)]
    async with server.client() as c:
        _, res = await completed_run(c, run_body("TICKDAY", "second", ts[0], ts[-1]))
    assert res["bars"] == len(opens)
    [trip] = res["round_trips"]
    # Entry at the open of the first second after the second in which tick A printed.
    after = opens.index[opens.index > pd.Timestamp(int(ts[A]), tz="UTC").floor("1s")][0]
    assert pd.Timestamp(trip["entry_time"]) == after and trip["entry_price"] == opens[after]


async def test_tick_run_cancels_mid_run(server: ServerProcess) -> None:
    n = 1_000_000  # ten days of ticks: long enough on the paced test server to cancel midway
    ts = DAY0 + np.arange(n, dtype=np.int64) * 864_000_000
    p = 100.0 + np.sin(np.arange(n) / 500.0)
    BarStore(server.data_dir / "bars").write(
        "TICKLONG", Bars(ts, p, p.copy(), p.copy(), p.copy(), np.ones(n)), resolution="tick"
    )
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=run_body("TICKLONG", "tick", ts[0], ts[-1]))
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
        await wait_state(c, run_id, {"running"})
        assert (await c.post(f"/api/v2/backtests/{run_id}/cancel")).status_code == 202
        final = await wait_state(c, run_id, {"cancelled", "completed", "failed"})
    assert final["state"] == "cancelled" and final["progress"] < 1.0


async def test_monthly_file_runs_as_monthly_bars(server: ServerProcess) -> None:
    out = import_file(server, FILES / "BTCUSD.csv", "BTC-MONTHLY")
    assert "1M" in out  # detected from the rows' spacing: one row a month
    raw = pd.read_csv(FILES / "BTCUSD.csv", index_col=0, parse_dates=True)
    body = run_body("BTC-MONTHLY", "month", ns_of("2013-01-01T00:00:00Z"),
                    ns_of("2024-12-01T00:00:00Z"))  # fmt: skip
    body["strategy"] = {"name": "trend", "entry": [{"condition": "close > sma(6)"}],
                        "exit": [{"condition": "close < sma(6)"}]}  # fmt: skip
    async with server.client() as c:
        _, res = await completed_run(c, body)
        _, fixed = await completed_run(c, {**body, "periods_per_year": 365, "risk_free_rate": 0.04})
    # Bars are stamped with their month's first day; the file labels each by its last day.
    months = [pd.Timestamp(p["timestamp"]) for p in res["equity"]]
    assert all(m.day == 1 and m.hour == 0 for m in months)
    closes = raw["Close"].set_axis(raw.index.to_period("M").to_timestamp().tz_localize("UTC"))
    assert {m: closes[m] for m in months[:3]}  # every bar is one of the file's months
    assert res["annualization"]["periods_per_year"] == 12
    assert "monthly" in res["annualization"]["basis"]
    returns = pd.Series([p["equity"] for p in res["equity"]]).pct_change().dropna()
    expected = qs.stats.sharpe(returns, rf=0.0, periods=12)
    assert res["metrics"]["sharpe_ratio"] == pytest.approx(expected, rel=1e-9)
    assert fixed["annualization"] == {
        "periods_per_year": 365, "risk_free_rate": 0.04, "basis": "set by the run",
    }  # fmt: skip
    expected = qs.stats.sharpe(returns, rf=0.04, periods=365)
    assert fixed["metrics"]["sharpe_ratio"] == pytest.approx(expected, rel=1e-9)


async def test_weekly_bars_run_monday_to_sunday_in_the_run_time_zone(
    server: ServerProcess,
) -> None:
    import_file(server, FILES / "GOOG.csv", "GOOG-WEEKLY")
    raw = pd.read_csv(FILES / "GOOG.csv", index_col=0, parse_dates=True)
    tz = "America/New_York"
    local = raw.tz_localize("UTC").tz_convert(tz)
    weekly = (
        local.resample("W-MON", label="left", closed="left")
        .agg({"Open": "first", "Close": "last"})
        .dropna()
    )
    body = run_body("GOOG-WEEKLY", "week", ns_of("2006-01-02T05:00:00Z"),
                    ns_of("2012-12-31T05:00:00Z"), timezone=tz)  # fmt: skip
    body["strategy"] = {"name": "trend", "entry": [{"condition": "close > sma(10)"}],
                        "exit": [{"condition": "close < sma(10)"}]}  # fmt: skip
    async with server.client() as c:
        _, res = await completed_run(c, body)
    stamps = [pd.Timestamp(p["timestamp"]).tz_convert(tz) for p in res["equity"]]
    assert all(s.weekday() == 0 and s.hour == 0 and s.minute == 0 for s in stamps)
    assert res["annualization"]["periods_per_year"] == 52
    assert res["round_trips"]
    for trip in res["round_trips"]:  # each fill is the open of a week pandas built alike
        week = pd.Timestamp(trip["entry_time"]).tz_convert(tz)
        assert trip["entry_price"] == weekly["Open"][week]


async def test_resolution_refusals_name_the_field(server: ServerProcess, ticks: tuple) -> None:
    ts, _ = ticks
    async with server.client() as c:
        tf = run_body("TICKDAY", "tick", ts[0], ts[-1])
        tf["strategy"]["entry"] = [{**ENTRY, "timeframe": "1m"}]
        r = await c.post("/api/v2/backtests", json=tf)
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["code"] == "invalid_strategy" and err["field"] == "strategy.entry[0].timeframe"
        assert "tick" in err["message"]
        two = run_body("TICKDAY", "tick", ts[0], ts[-1])
        two["symbols"] = ["TICKDAY", "TICKDAY2"]
        r = await c.post("/api/v2/backtests", json=two)
        err = r.json()["error"]
        assert r.status_code == 422 and err["field"] == "symbols" and "one symbol" in err["message"]
        r = await c.post("/api/v2/backtests", json={**backtest(), "resolution": "tick"})
        err = r.json()["error"]
        assert r.status_code == 400 and err["code"] == "unsupported_resolution"
        assert "ETH-USD" in err["message"] and err["field"] == "resolution"
        for bad in (0, -12, "12"):
            r = await c.post("/api/v2/backtests", json={**backtest(), "periods_per_year": bad})
            assert r.status_code == 422 and r.json()["error"]["field"] == "periods_per_year"
        r = await c.post("/api/v2/backtests", json={**backtest(), "risk_free_rate": 5})
        assert r.status_code == 422 and r.json()["error"]["field"] == "risk_free_rate"


async def test_a_named_benchmark_sets_alpha_and_beta(server: ServerProcess) -> None:
    start, end = "2024-03-01T00:00:00Z", "2024-03-11T00:00:00Z"
    body = backtest(start=start, end=end, benchmark="btc")
    minutes = BarStore(server.data_dir / "bars").load(
        "BTC-USD", "1m", ns_of(start), ns_of(end) + 3_600 * NS - 1
    )
    hourly = (
        pd.Series(minutes.close, index=pd.to_datetime(minutes.ts, utc=True)).resample("1h").last()
    )  # each hour's close, by pandas from the stored minutes
    async with server.client() as c:
        created, res = await completed_run(c, body)
        assert created["config"]["benchmark"] == "BTC-USD"
        bad = await c.post("/api/v2/backtests", json={**body, "benchmark": "NOPE"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "benchmark"
    first, last = pd.Timestamp(res["period"]["start"]), pd.Timestamp(res["period"]["end"])
    expected = hourly[last] / hourly[first] - 1
    assert res["metrics"]["benchmark_return"] == pytest.approx(expected, rel=1e-12)
    eq = pd.Series([p["equity"] for p in res["equity"]]).pct_change().dropna()
    eq = eq.reset_index(drop=True)  # both series indexed 0..n-1 (quantstats aligns on index)
    bench = hourly[first:last].pct_change().dropna().reset_index(drop=True)
    greeks = qs.stats.greeks(eq, bench, periods=res["annualization"]["periods_per_year"])
    assert res["metrics"]["beta"] == pytest.approx(greeks["beta"], rel=1e-9)
    assert res["metrics"]["alpha"] == pytest.approx(greeks["alpha"], rel=1e-9)
