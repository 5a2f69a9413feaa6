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


async def test_archive_hides_a_run_until_unarchived(server: ServerProcess) -> None:
    async with fresh_client(server) as c:
        ids = [
            (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"] for _ in range(3)
        ]
        newest_first, hidden = ids[::-1], ids[1]
        first = await c.post(f"/api/v2/backtests/{hidden}/archive")
        assert first.status_code == 200, first.text
        assert first.json()["run_id"] == hidden and first.json()["archived"] is True
        assert first.json()["archived_at"].endswith("Z")
        again = await c.post(f"/api/v2/backtests/{hidden}/archive")
        assert (
            again.status_code == 200 and again.json()["archived_at"] == first.json()["archived_at"]
        )
        assert (await c.get(f"/api/v2/backtests/{hidden}")).json()["archived"] is True

        ids_shown, totals = await walk(c, limit=1)
        assert ids_shown == [i for i in newest_first if i != hidden] and totals == ["2"] * 2
        ids_all, totals = await walk(c, limit=1, include_archived="true")
        assert ids_all == newest_first and totals == ["3"] * 3
        listed = (await c.get("/api/v2/backtests", params={"include_archived": "true"})).json()
        assert [s["archived"] for s in listed] == [False, True, False]

        for _ in range(2):
            back = await c.post(f"/api/v2/backtests/{hidden}/unarchive")
            assert back.status_code == 200, back.text
            assert back.json()["archived"] is False and back.json()["archived_at"] is None
        ids_shown, totals = await walk(c, limit=2)
        assert ids_shown == newest_first and totals == ["3", "3"]
        doc = (await c.get("/openapi.json")).json()
    status = {"$ref": "#/components/schemas/RunStatus", "components": doc["components"]}
    jsonschema.Draft202012Validator(status).validate(first.json())


async def test_archive_of_another_users_or_a_missing_run_is_404(
    server: ServerProcess, other_key: str
) -> None:
    async with server.client(other_key) as theirs:
        run_id = (await theirs.post("/api/v2/backtests", json=backtest())).json()["run_id"]
    async with server.client() as c:
        for target in (run_id, str(uuid.uuid4()), "not-a-run"):
            for action in ("archive", "unarchive"):
                r = await c.post(f"/api/v2/backtests/{target}/{action}")
                assert r.status_code == 404, r.text
                assert r.json()["error"]["code"] == "not_found"
    async with httpx.AsyncClient(base_url=server.url) as anon:
        assert (await anon.post(f"/api/v2/backtests/{run_id}/archive")).status_code == 401
    async with server.client(other_key) as theirs:
        assert (await theirs.get(f"/api/v2/backtests/{run_id}")).json()["archived"] is False
