"""Portfolios and big sweeps through the v2 API: 100 symbols on one account, 1,000 variants."""

from collections.abc import Iterator

import numpy as np
import pytest

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import Bars, BarStore
from tests.server.api_helpers import completed_results, completed_run
from tests.server.harness import ServerProcess, backtest, serving
from tests.server.streaming import read_stream

START_NS = 1_704_067_200_000_000_000  # 2024-01-01


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose store also holds 100 synthetic symbols of 60 days of 1-minute bars."""
    data_dir = tmp_path_factory.mktemp("wide")
    store = BarStore(data_dir / "bars")
    for k in range(100):
        bars = generate_bars(
            DEMO_SYMBOLS[k % 3], START_NS, 60 * 1440, np.random.default_rng(100 + k)
        )
        store.write(f"SYN{k:03d}", bars, synthetic=True, description="synthetic test symbol")
    store.write("CRASH", crash_bars(), synthetic=True, description="flat, then halves")
    yield from serving(data_dir, workers="2")


def crash_bars() -> Bars:
    """Two days of 1-minute bars at 100, a fall to 50 over ten minutes, then flat again."""
    n = 3 * 1440
    close = np.full(n, 100.0)
    close[2880:2890] = np.linspace(95.0, 50.0, 10)
    close[2890:] = 50.0
    open_ = np.r_[100.0, close[:-1]]
    ts = START_NS + np.arange(n, dtype=np.int64) * 60_000_000_000
    return Bars(ts, open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(n))


async def test_hundred_symbol_portfolio_shares_one_account(wide: ServerProcess) -> None:
    symbols = [f"SYN{k:03d}" for k in range(100)]
    strategy = {
        "entry": ["cross_above(ema(12), ema(26))"],
        "exit": ["cross_below(ema(12), ema(26))"],
    }
    execution = {"sizing": "fraction", "size": 1.0, "max_open_positions": 20, "fee_bps": 5,
                 "max_trade_amount": 1e9, "max_units_per_trade": 1e9}  # fmt: skip
    body = backtest(symbols=symbols, start="2024-01-05T00:00:00Z", end="2024-02-25T00:00:00Z",
                    capital=1_000_000, strategy=strategy, execution=execution)  # fmt: skip
    async with wide.client() as c:
        created, res = await completed_run(c, body)
        run_id = created["run_id"]
    events, code, _ = await read_stream(
        f"{wide.ws_url}/api/v2/backtests/{run_id}/stream", {"X-API-Key": wide.key}
    )
    assert code == 1000 and any(e["type"] == "progress" for e in events)
    traded = {t["symbol"] for t in res["trades"]}
    assert len(traded) > 50, "one account trades across the symbols"
    # One account: never more than 20 positions open at once, summed over every symbol.
    open_count: dict[str, int] = {}
    peak = 0
    for t in sorted(res["trades"], key=lambda t: (t["timestamp"], t["side"] == "buy")):
        open_count[t["symbol"]] = open_count.get(t["symbol"], 0) + (1 if t["side"] == "buy" else -1)
        peak = max(peak, sum(1 for v in open_count.values() if v > 0))
    assert 1 < peak <= 20
    last = res["equity"][-1]
    assert last["equity"] == pytest.approx(last["cash"] + last["positions"], rel=1e-9)
    assert {p["symbol"] for p in res["exposure"]} == set(symbols)


async def test_thousand_variant_sweep(wide: ServerProcess) -> None:
    grid = {
        "entry[0].params.window_fast": list(range(2, 27, 1)),  # 25 values
        "entry[0].params.window_slow": list(range(30, 70, 1)),  # 40 values
    }
    strategy = {"entry": [{"name": "sma_cross_up"}], "exit": [{"name": "sma_cross_down"}]}
    body = backtest(symbols=["SYN000"], resolution="1h", start="2024-01-05T00:00:00Z",
                    end="2024-02-25T00:00:00Z", strategy=strategy,
                    sweep={"grid": grid, "rank_by": "total_return"})  # fmt: skip
    async with wide.client() as c:
        created, res = await completed_run(c, body)
        assert created["config"]["sweep"]["variant_count"] == 1000
        run_id = created["run_id"]
    events, _, _ = await read_stream(
        f"{wide.ws_url}/api/v2/backtests/{run_id}/stream", {"X-API-Key": wide.key}
    )
    progress = [e["data"]["progress"] for e in events if e["type"] == "progress"]
    assert len(progress) >= 3 and progress == sorted(progress)
    assert len(res["sweep"]["variants"]) == 1000
    returns = [v["metrics"]["total_return"] for v in res["sweep"]["variants"]]
    assert returns == sorted(returns, reverse=True)


async def test_leveraged_position_is_liquidated_with_a_log_event(wide: ServerProcess) -> None:
    body = backtest(
        symbols=["CRASH"], resolution="1m", start="2024-01-01T01:00:00Z", end="2024-01-03T23:00:00Z",
        strategy={"entry": ["close > 0"]},
        execution={"leverage": 5, "sizing": "fraction", "size": 1.0, "max_open_positions": 1,
                   "atr_multiplier": 0, "max_trade_amount": 1e9, "max_units_per_trade": 1e9},
    )  # fmt: skip
    async with wide.client() as c:
        res = await completed_results(c, body)
    liquidated = [t for t in res["round_trips"] if t["liquidated"]]
    assert liquidated and liquidated[0]["exit_reason"] == "liquidation"
    # At 5x the margin is a fifth of the notional: the fall from 100 to 50 wipes it out.
    assert liquidated[0]["exit_price"] > 50 and liquidated[0]["pnl"] < 0
    logs = [entry for entry in res["logs"] if "liquidat" in entry["message"]]
    assert logs and logs[0]["level"] == "warning"
