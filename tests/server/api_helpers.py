"""Small REST helpers shared by the API test modules."""

from typing import Any

import httpx

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
