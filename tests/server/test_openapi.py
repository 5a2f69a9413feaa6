"""The OpenAPI document: served without a key, lists every route, its schemas fit real traffic."""

from typing import Any

import jsonschema

from server.app import create_app
from tests.server.harness import ServerProcess, backtest


def validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


async def test_document_lists_every_route_and_validates_real_traffic(server: ServerProcess) -> None:
    async with server.client() as c:
        anon = await c.get("/openapi.json", headers={"Authorization": ""})
        assert anon.status_code == 200
        doc = anon.json()
        body = backtest()
        created = await c.post("/api/v2/backtests", json=body)
        assert created.status_code == 201
    assert doc["openapi"].startswith("3.1")
    paths = {route.path for route in create_app().routes}
    assert paths == set(doc["paths"])
    validator(doc, "BacktestCreate").validate(body)
    validator(doc, "RunStatus").validate(created.json())
    assert list(validator(doc, "BacktestCreate").iter_errors({**body, "capital": -1}))
    assert "ScoreStrategy" in doc["components"]["schemas"]


async def test_v1_and_strategy_schemas_fit_real_traffic(server: ServerProcess) -> None:
    from tests.server.api_helpers import HISTORICAL_LOOKBACK, v1_run
    from tests.server.harness import SEED_STRATEGY

    doc = await _doc(server)
    async with server.client() as c:
        saved = (await c.post("/api/v2/strategies", json={"strategy": SEED_STRATEGY})).json()
        result = (await c.post("/api/v1/backtests", json=v1_run(), timeout=120)).json()
        bulk = await c.post(
            "/api/v1/backtests/bulk",
            json={"strategy_ids": [saved["id"]], "start_date": "2024-03-01", "end_date": "2024-04-01",
                  "initial_balance": 1000},
            timeout=120,
        )  # fmt: skip
        history = (await c.get("/api/v1/users/me/backtests?limit=3")).json()
        trades = (await c.get(f"/api/v1/backtests/{result['backtest_id']}/trades")).json()
        archived = (await c.post(f"/api/v1/backtests/{result['backtest_id']}/unarchive")).json()
        error = (await c.post("/api/v1/backtests", json={"asset": "ETH"})).json()
    validator(doc, "V1RunRequest").validate(HISTORICAL_LOOKBACK)
    assert list(
        validator(doc, "V1RunRequest").iter_errors({**HISTORICAL_LOOKBACK, "max_risk_per_trade": 3})
    )
    for name, body in [("SavedStrategy", saved), ("V1Result", result), ("V1BulkResult", bulk.json()),
                       ("V1History", history), ("V1TradesPage", trades), ("V1Archived", archived),
                       ("V1Error", error)]:  # fmt: skip
        validator(doc, name).validate(body)


async def _doc(server: ServerProcess) -> dict[str, Any]:
    async with server.client() as c:
        return (await c.get("/openapi.json")).json()
