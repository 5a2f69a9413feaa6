"""The v2 run list as seed 002 has it (a JSON array, paged by `Link` and `X-Total-Count`)."""

import uuid
from typing import Any

import httpx
import jsonschema

from tests.server.harness import ServerProcess, backtest


def fresh_client(server: ServerProcess) -> httpx.AsyncClient:
    """A client of a new user, so the counts below see only this test's runs."""
    return server.client(server.create_key(f"lister-{uuid.uuid4().hex[:8]}"))


async def walk(c: httpx.AsyncClient, **params: Any) -> tuple[list[str], list[str]]:
    """Follow `Link: rel="next"` from the first page; return the run ids and each page's total."""
    ids: list[str] = []
    totals: list[str] = []
    r = await c.get("/api/v2/backtests", params=params)
    while True:
        assert r.status_code == 200, r.text
        page = r.json()
        assert isinstance(page, list) and len(page) <= params.get("limit", 50)
        ids += [s["run_id"] for s in page]
        totals.append(r.headers["x-total-count"])
        if "next" not in r.links:
            assert "link" not in r.headers
            return ids, totals
        nxt = httpx.URL(r.links["next"]["url"])
        for key, value in params.items():
            assert nxt.params[key] == str(value), "the next page keeps the query"
        r = await c.get(nxt)


async def test_list_is_an_array_paged_by_link_headers(server: ServerProcess) -> None:
    async with fresh_client(server) as c:
        created = [(await c.post("/api/v2/backtests", json=backtest())).json() for _ in range(4)]
        newest_first = [s["run_id"] for s in reversed(created)]
        for archived in ("false", "true"):
            ids, totals = await walk(c, limit=1, include_archived=archived)
            assert ids == newest_first, "each run once, newest first"
            assert totals == ["4"] * 4
        ids, totals = await walk(c, limit=3)
        assert ids == newest_first and totals == ["4", "4"]
        whole = await c.get("/api/v2/backtests")
        assert [s["run_id"] for s in whole.json()] == newest_first
        assert whole.headers["x-total-count"] == "4" and "link" not in whole.headers
        doc = (await c.get("/openapi.json")).json()
    listing = doc["paths"]["/api/v2/backtests"]["get"]["responses"]["200"]
    assert set(listing["headers"]) == {"Link", "X-Total-Count"}
    schema = {**listing["content"]["application/json"]["schema"], "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(whole.json())


async def test_list_of_a_user_without_runs_is_empty(server: ServerProcess) -> None:
    async with fresh_client(server) as c:
        r = await c.get("/api/v2/backtests")
    assert r.status_code == 200 and r.json() == []
    assert r.headers["x-total-count"] == "0" and "link" not in r.headers


async def test_bad_cursor_is_422(server: ServerProcess) -> None:
    async with server.client() as c:
        for cursor in ("!!", "bm90LWEtY3Vyc29y"):
            r = await c.get("/api/v2/backtests", params={"limit": 1, "cursor": cursor})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["field"] == "cursor"
