"""Execution bounds are the same on every surface and in the engine: a value at a bound runs,
one past it is refused with the surface's status and code, naming the field, storing nothing."""

import json
from typing import Any

import pytest

from tests.server.api_helpers import completed_run
from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest
from tests.server.signed import SignedClient


async def run_count(server: ServerProcess) -> int:
    async with server.client() as c:
        r = await c.get("/api/v2/backtests", params={"include_archived": "true"})
    return int(r.headers["x-total-count"])


@pytest.mark.parametrize(
    ("execution", "field"),
    [
        ({"fee_bps": 10_000}, "execution.fee_bps"),
        ({"slippage_bps": 10_000.5}, "execution.slippage_bps"),
        ({"leverage": 125.5}, "execution.leverage"),
        ({"daily_momentum_limit": -1}, "execution.daily_momentum_limit"),
        ({"atr_multiplier": None}, "execution.atr_multiplier"),
        ({"maintenance_margin_rate": 0.5, "leverage": 2}, "execution.maintenance_margin_rate"),
    ],
)
async def test_v2_refuses_past_the_bound(
    server: ServerProcess, execution: dict[str, Any], field: str
) -> None:
    before = await run_count(server)
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=backtest(execution=execution))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert (err["code"], err["field"]) == ("validation_error", field) and err["message"]
    assert await run_count(server) == before


async def test_v2_runs_at_the_bound(server: ServerProcess) -> None:
    # 9999.99 bps was refused on the wire before (its cap was 1000); the engine always took it.
    execution = {"fee_bps": 9999.99, "slippage_bps": 0, "daily_momentum_limit": 0,
                 "weekly_momentum_limit": 0, "leverage": 125}  # fmt: skip
    body = backtest(execution=execution, end="2024-04-01T00:00:00Z")
    async with server.client() as c:
        created, _ = await completed_run(c, body)
    assert created["config"]["execution"]["fee_bps"] == 9999.99
    assert created["config"]["execution"]["daily_momentum_limit"] == 0


async def test_v1_and_saved_strategies_refuse_past_the_bound(server: ServerProcess) -> None:
    v1 = {"asset": "ETH", "interval": "1h", "initial_balance": 10_000.0,
          "start_date": "2024-03-01", "end_date": "2024-03-15",
          "strategy_json": json.dumps(SEED_STRATEGY), "fee_bps": 10_000}  # fmt: skip
    saved = {"name": "bounds", "strategy": SEED_STRATEGY,
             "execution_config": {"fee_bps": 10_000}}  # fmt: skip
    async with server.client() as c:
        r = await c.post("/api/v1/backtests", json=v1)
        assert r.status_code == 422, r.text
        assert (r.json()["error"]["code"], r.json()["error"]["field"]) == (
            "validation_error", "fee_bps",
        )  # fmt: skip
        r = await c.post("/api/v2/strategies", json=saved)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "execution_config.fee_bps"
        saved["execution_config"] = {"fee_bps": 9999.99}
        r = await c.post("/api/v2/strategies", json=saved)
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(("fee_bps", "status"), [("9999.99", 201), ("10000", 400)])
async def test_seed004_takes_the_same_fee_bound(
    server: ServerProcess, fee_bps: str, status: int
) -> None:
    job = {"template_id": "tpl_ma_cross", "params": {"window_fast": 10, "window_slow": 30},
           "symbols": ["BTCUSDT"], "timeframe": "1h", "start": "2025-01-01T00:00:00Z",
           "end": "2025-01-15T00:00:00Z", "capital": "10000", "fee_bps": fee_bps}  # fmt: skip
    async with SignedClient(server.url, *server.create_signed_key(f"bounds-{fee_bps}")) as c:
        r = await c.post("/v1/backtest/jobs", json=job)
    assert r.status_code == status, r.text
    if status == 400:
        err = r.json()["error"]
        assert (err["code"], err["field"]) == ("INVALID_PARAMETER", "fee_bps")
        assert "below 10000" in err["message"]
    else:
        assert r.json()["config"]["fee_bps"] == "9999.99"
