"""Small REST helpers shared by the API test modules."""

from typing import Any

import httpx

from tests.server.harness import eventually


async def wait_state(client: httpx.AsyncClient, run_id: str, states: set[str]) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = (await client.get(f"/api/v2/backtests/{run_id}")).json()
        return body if body["state"] in states else None

    return await eventually(check, timeout=120)
