"""Small REST helpers shared by the API test modules."""

from typing import Any

import httpx
import orjson

from tests.server.harness import eventually


async def wait_state(client: httpx.AsyncClient, run_id: str, states: set[str]) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = (await client.get(f"/api/v2/backtests/{run_id}")).json()
        return body if body["state"] in states else None

    return await eventually(check, timeout=120)


async def completed_run(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create a run, wait until it completes (failing the test otherwise); return (created, results)."""
    r = await client.post("/api/v2/backtests", json=body)
    assert r.status_code == 201, r.text
    done = await wait_state(client, r.json()["run_id"], {"completed", "failed", "cancelled"})
    assert done["state"] == "completed", done
    return r.json(), await full_results(client, done["run_id"])


async def full_results(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """A run's results with every round trip and fill: the first page, then each `next`."""
    r = await client.get(f"/api/v2/backtests/{run_id}/results")
    assert r.status_code == 200, r.text
    body = r.json()
    for kind, listing in body["paging"].items():
        url = listing["next"]
        while url is not None:
            page = await client.get(url)
            assert page.status_code == 200, page.text
            body[kind] += page.json()
            url = _next_link(page.headers.get("link"))
        assert len(body[kind]) == listing["total"]
    return body


def _next_link(header: str | None) -> str | None:
    """The URL of a `Link: <…>; rel="next"` header, or None."""
    if not header:
        return None
    url, _, rel = header.partition(";")
    return url.strip()[1:-1] if 'rel="next"' in rel else None


async def completed_results(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """The results of a run created from `body`, once it has completed."""
    return (await completed_run(client, body))[1]


# seed 001's "historical lookback" example, as its document shows it
HISTORICAL_LOOKBACK = orjson.loads(r"""{
    "asset": "ETH",
    "interval": "1h",
    "lookback_months": 12,
    "initial_balance": 10000.0,
    "min_balance_threshold": 0.1,
    "min_trade_amount": 25.0,
    "max_open_positions": 5,
    "max_trades_per_day": 50,
    "max_risk_per_trade": 0.01,
    "max_units_per_trade": 100.0,
    "max_trade_amount": 10000.0,
    "volatility_window": 24,
    "target_volatility": 0.02,
    "volatility_mode": "stddev",
    "enable_volatility_adjustment": false,
    "cooldown_config": {
      "1h": {"short_loss_limit": 4, "long_loss_limit": 6, "short_window_bars": 48, "long_window_bars": 144}
    },
    "strategy_json": "{\"name\": \"ETH Strategy\", \"asset\": \"ETH\", \"entry\": [{\"name\": \"macd_bullish_cross\", \"timeframe\": \"1h\", \"signal_type\": \"TRIGGER\", \"params\": {\"window_fast\": 12, \"window_slow\": 26, \"window_sign\": 9}}, {\"name\": \"is_above_sma\", \"timeframe\": \"1h\", \"params\": {\"window\": 50}, \"signal_type\": \"FILTER\"}], \"exit\": []}"
}""")


def v1_run(**overrides: Any) -> dict[str, Any]:
    """A short explicit-range v1 body (the seed strategy on ETH, 1h, three months)."""
    body = {
        **HISTORICAL_LOOKBACK,
        "start_date": "2024-03-01",
        "end_date": "2024-05-31",
    }
    del body["lookback_months"]
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def job(**overrides: Any) -> dict[str, Any]:
    """A short ma-cross job (two months of 1h bars)."""
    body = {
        "template_id": "tpl_ma_cross", "params": {"window_fast": 10, "window_slow": 30},
        "symbols": ["BTCUSDT"], "timeframe": "1h", "start": "2025-01-01T00:00:00Z",
        "end": "2025-03-01T00:00:00Z", "capital": "10000",
    }  # fmt: skip
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
