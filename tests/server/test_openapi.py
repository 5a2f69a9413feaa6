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
