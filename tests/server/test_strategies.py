"""Saved strategies through /api/v2/strategies and /api/v1/strategies, and strategy_id in v2 runs."""

import copy
from typing import Any

from tests.server.api_helpers import completed_run
from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest


def saved_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "saved ETH",
        "strategy": SEED_STRATEGY,
        "asset": "ETH",
        "execution_config": {"max_hold_bars": 48, "atr_multiplier": 3.0, "fee_bps": 5},
    }
    body.update(overrides)
    return body


async def test_create_get_update_delete(server: ServerProcess) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/strategies", json=saved_body(description="d"))
        assert r.status_code == 201, r.text
        made = r.json()
        sid = made["strategy_id"]
        assert r.headers["location"] == f"/api/v2/strategies/{sid}"
        assert made["strategy"] == SEED_STRATEGY and made["asset"] == "ETH"
        assert made["execution_config"] == {
            "max_hold_bars": 48,
            "atr_multiplier": 3.0,
            "fee_bps": 5,
        }
        assert made["dialect"] == "v2" and made["deleted"] is False
        assert (await c.get(f"/api/v2/strategies/{sid}")).json() == made

        r = await c.patch(f"/api/v2/strategies/{sid}", json={"name": "renamed"})
        assert r.status_code == 200, r.text
        changed = r.json()
        assert changed["name"] == "renamed" and changed["strategy"] == SEED_STRATEGY
        assert changed["execution_config"] == made["execution_config"]
        assert changed["description"] == "d"

        other = copy.deepcopy(SEED_STRATEGY)
        other["entry"][1]["params"]["window"] = 20
        r = await c.put(f"/api/v2/strategies/{sid}", json={"strategy": other})
        assert r.status_code == 200, r.text
        replaced = r.json()
        assert replaced["strategy"] == other
        assert replaced["execution_config"] == {} and replaced["description"] is None
        assert replaced["asset"] == "ETH"  # the object's own asset

        assert (await c.delete(f"/api/v2/strategies/{sid}")).status_code == 204
        gone = (await c.get(f"/api/v2/strategies/{sid}")).json()
        assert gone["deleted"] is True and gone["deleted_at"] is not None
        assert gone["strategy"] == other  # kept for the runs that used it
        r = await c.patch(f"/api/v2/strategies/{sid}", json={"name": "x"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "strategy_deleted"
        r = await c.post("/api/v2/backtests", json=backtest(strategy=None, strategy_id=sid))
        assert r.status_code == 404 and r.json()["error"]["field"] == "strategy_id"
        assert "deleted" in r.json()["error"]["message"]


async def test_bare_seed_object_and_strategy_json_bodies(server: ServerProcess) -> None:
    import orjson

    async with server.client() as c:
        r = await c.post("/api/v1/strategies", json=SEED_STRATEGY)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["strategy"] == SEED_STRATEGY and body["name"] == "ETH Strategy"
        assert body["asset"] == "ETH" and body["dialect"] == "seed001"
        r = await c.post(
            "/api/v2/strategies", json={"strategy_json": orjson.dumps(SEED_STRATEGY).decode()}
        )
        assert r.status_code == 201 and r.json()["strategy"] == SEED_STRATEGY


async def test_rejected_bodies_store_nothing(server: ServerProcess) -> None:
    two_triggers = copy.deepcopy(SEED_STRATEGY)
    two_triggers["entry"][1]["signal_type"] = "TRIGGER"
    with_atr = copy.deepcopy(SEED_STRATEGY)
    with_atr["atr_period"] = 14
    unknown_signal = copy.deepcopy(SEED_STRATEGY)
    unknown_signal["entry"][0]["name"] = "no_such_signal"
    async with server.client() as c:
        before = int((await c.get("/api/v2/strategies")).headers["x-total-count"])
        cases = [
            ("/api/v1/strategies", two_triggers, 400, "invalid_strategy", "strategy.entry"),
            ("/api/v1/strategies", with_atr, 400, "invalid_strategy", "strategy.atr_period"),
            ("/api/v2/strategies", {"strategy": unknown_signal}, 400, "invalid_strategy",
             "strategy.entry[0].name"),
            ("/api/v2/strategies", {"name": "no object"}, 422, "validation_error", "strategy"),
            ("/api/v2/strategies", {"strategy": SEED_STRATEGY, "colour": 1}, 422,
             "validation_error", "colour"),
            ("/api/v2/strategies", saved_body(execution_config={"max_risk_per_trade": 5}), 422,
             "validation_error", "execution_config.max_risk_per_trade"),
        ]  # fmt: skip
        for path, body, status, code, field in cases:
            r = await c.post(path, json=body)
            assert r.status_code == status, (body, r.text)
            err = r.json()["error"]
            assert err["code"] == code and err["field"] == field, err
        with_atr_message = (await c.post("/api/v1/strategies", json=with_atr)).json()
        assert "execution_config" in with_atr_message["detail"]
        assert with_atr_message["success"] is False
        r = await c.post("/api/v2/strategies", content=b"{nope")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        after = int((await c.get("/api/v2/strategies")).headers["x-total-count"])
        assert after == before


async def test_another_users_strategy_is_404(server: ServerProcess, other_key: str) -> None:
    async with server.client() as mine, server.client(other_key) as theirs:
        sid = (await mine.post("/api/v2/strategies", json=saved_body())).json()["strategy_id"]
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            kw = {"json": {"name": "x"}} if method in ("PATCH", "PUT") else {}
            r = await theirs.request(method, f"/api/v2/strategies/{sid}", **kw)
            assert r.status_code == 404, (method, r.text)
        r = await theirs.post("/api/v2/backtests", json=backtest(strategy=None, strategy_id=sid))
        assert r.status_code == 404 and r.json()["error"]["field"] == "strategy_id"
        ids = [s["id"] for s in (await theirs.get("/api/v2/strategies?limit=200")).json()]
        assert sid not in ids
        assert (await mine.get(f"/api/v2/strategies/{sid}")).status_code == 200


async def test_listing_pages_by_link_and_hides_deleted(server: ServerProcess) -> None:
    async with server.client("bs_not_a_key") as anon:
        assert (await anon.get("/api/v2/strategies")).status_code == 401
    key = server.create_key("lister")
    async with server.client(key) as c:
        ids = [
            (await c.post("/api/v2/strategies", json=saved_body(name=f"s{i}"))).json()["id"]
            for i in range(3)
        ]
        await c.delete(f"/api/v2/strategies/{ids[1]}")
        seen, url = [], "/api/v2/strategies?limit=1"
        while url:
            r = await c.get(url)
            assert r.status_code == 200 and r.headers["x-total-count"] == "2"
            seen += [s["id"] for s in r.json()]
            link = r.headers.get("link")
            url = link[1 : link.index(">")] if link else ""
        assert seen == [ids[2], ids[0]]  # newest first, the deleted one left out
        r = await c.get("/api/v2/strategies?include_deleted=true")
        assert [s["id"] for s in r.json()] == ids[::-1] and r.headers["x-total-count"] == "3"
        v1 = (await c.get("/api/v1/strategies?limit=1")).json()
        assert v1["total"] == 2 and len(v1["items"]) == 1 and v1["next_cursor"]
        r = await c.get("/api/v2/strategies?limit=0")
        assert r.status_code == 422 and r.json()["error"]["field"] == "limit"


async def test_v2_run_by_strategy_id_merges_defaults(server: ServerProcess) -> None:
    async with server.client() as c:
        sid = (await c.post("/api/v2/strategies", json=saved_body())).json()["strategy_id"]
        body = backtest(strategy=None, strategy_id=sid, execution={"fee_bps": 10})
        del body["symbols"]
        created, results = await completed_run(c, body)
        config = created["config"]
        assert config["symbols"] == ["ETH-USD"]  # the saved asset, resolved
        assert config["strategy_id"] == sid and config["strategy"] == SEED_STRATEGY
        ex = config["execution"]
        assert ex["fee_bps"] == 10  # the request wins
        assert ex["max_hold_bars"] == 48 and ex["atr_multiplier"] == 3.0  # saved defaults
        inline = backtest(execution={"fee_bps": 10, "max_hold_bars": 48, "atr_multiplier": 3.0})
        _, same = await completed_run(c, inline)
        assert results["metrics"] == same["metrics"]
        assert results["round_trips"] == same["round_trips"]
        r = await c.post("/api/v2/backtests", json={**body, "symbols": None})
        assert r.status_code == 201  # null symbols: the saved asset again
        bare = (
            await c.post("/api/v2/strategies", json={"strategy": {**SEED_STRATEGY, "asset": None}})
        ).json()
        body = {
            k: v
            for k, v in backtest(strategy=None, strategy_id=bare["id"]).items()
            if k != "symbols"
        }
        r = await c.post("/api/v2/backtests", json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == "symbols"
