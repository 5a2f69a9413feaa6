"""The seed 001 surface against a real server: its examples verbatim, every mode, route and error."""

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.server.api_helpers import HISTORICAL_LOOKBACK, v1_run, wait_state
from tests.server.harness import SEED_STRATEGY, ServerProcess, eventually
from tests.server.streaming import read_stream

SEED_METRICS = {
    "sharpe_ratio", "sortino_ratio", "calmar_ratio", "irr_annualized", "max_drawdown",
    "max_drawdown_duration", "win_rate",
}  # fmt: skip

# The "Example: Historical Lookback" body of seed 001, as the document gives it.
# The bulk example's shared settings (its strategy_ids are filled in by each test).
BULK = {k: v for k, v in HISTORICAL_LOOKBACK.items()
        if k not in ("asset", "interval", "lookback_months", "strategy_json")}  # fmt: skip
BULK.update(start_date="2024-01-01", end_date="2024-12-31")


def minute_strategy() -> str:
    strat = copy.deepcopy(SEED_STRATEGY)
    for sig in strat["entry"]:
        sig["timeframe"] = "1m"
    return orjson.dumps(strat).decode()


def slow_run() -> dict[str, Any]:
    """A v1 body whose run lasts seconds on the paced test server (a year of minute bars)."""
    return v1_run(interval="1m", start_date="2024-01-01", end_date="2024-12-31",
                  strategy_json=minute_strategy(), cooldown_config=None)  # fmt: skip


def assert_seed_shape(body: dict[str, Any]) -> None:
    assert body["success"] is True, body
    assert set(body["metrics"]) == SEED_METRICS
    assert isinstance(body["metrics"]["max_drawdown_duration"], int)
    assert isinstance(body["execution_time_seconds"], float)
    assert isinstance(body["trade_count"], int)
    assert body["trade_count"] == len(body["trades"])


async def test_historical_lookback_example_verbatim(server: ServerProcess) -> None:
    async with server.client() as c:
        r = await c.post("/api/v1/backtests", json=HISTORICAL_LOOKBACK, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        assert_seed_shape(body)
        assert "deprecation" not in r.headers and body["warnings"] == []
        # The same run through v2: same table, results and events.
        run_id = body["backtest_id"]
        status = (await c.get(f"/api/v2/backtests/{run_id}")).json()
        assert status["state"] == "completed" and status["config"]["surface"] == "v1"
        start = datetime.fromisoformat(status["config"]["start"])
        end = datetime.fromisoformat(status["config"]["end"])
        now = datetime.now(UTC)
        assert now - end < timedelta(days=2)  # recent history ends at the data's end (today)
        assert start.month == end.month and end.year - start.year == 1  # twelve months back
        results = (await c.get(f"/api/v2/backtests/{run_id}/results")).json()
        assert body["metrics"] == {k: results["metrics"][k] for k in SEED_METRICS}
        assert body["trades"] == results["round_trips"]
        assert body["trade_count"] == results["metrics"]["trade_count"]
        ex = status["config"]["execution"]
        assert ex["cooldown_config"]["1h"]["long_window_bars"] == 144
        assert ex["max_risk_per_trade"] == 0.01
    url = f"{server.ws_url}/api/v2/backtests/{run_id}/stream?api_key={server.key}"
    events, code, _ = await read_stream(url)
    assert code == 1000
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"]["state"] == "completed"


async def test_strategy_id_example_defaults_asset_and_execution(server: ServerProcess) -> None:
    async with server.client() as c:
        saved = await c.post(
            "/api/v1/strategies",
            json={"strategy": SEED_STRATEGY, "asset": "ETH",
                  "execution_config": {"max_hold_bars": 24, "atr_period": 10}},
        )  # fmt: skip
        sid = saved.json()["strategy_id"]
        example = {"strategy_id": sid, "interval": "1h", "lookback_months": 12,
                   "initial_balance": 10000.0}  # fmt: skip
        r = await c.post("/api/v1/backtests", json=example, timeout=120)
        assert r.status_code == 200, r.text
        body = r.json()
        assert_seed_shape(body)
        assert body["asset"] == "ETH-USD" and body["strategy_id"] == sid
        config = body["config"]
        assert (
            config["execution"]["max_hold_bars"] == 24 and config["execution"]["atr_period"] == 10
        )
        # Request fields override the saved defaults: execution_config, then top-level keys.
        over = {**example, "execution_config": {"max_hold_bars": 12}, "max_trades_per_day": 3}
        r = await c.post("/api/v1/backtests", json=over, timeout=120)
        ex = r.json()["config"]["execution"]
        assert (
            ex["max_hold_bars"] == 12 and ex["atr_period"] == 10 and ex["max_trades_per_day"] == 3
        )


@pytest.mark.parametrize(
    ("fields", "expect"),
    [
        ({"start_date": "2024-02-01", "end_date": "2024-02-29"},
         ("2024-02-01T00:00:00Z", "2024-02-29T23:59:59.999999Z")),
        ({"end_date": "2024-06-30", "lookback_months": 4},
         ("2024-02-29T23:59:59.999999Z", "2024-06-30T23:59:59.999999Z")),
        ({"start_date": "2024-03-01T12:00:00Z", "end_date": "2024-03-20T06:30:00+02:00"},
         ("2024-03-01T12:00:00Z", "2024-03-20T04:30:00Z")),
    ],
)  # fmt: skip
async def test_date_range_modes(
    server: ServerProcess, fields: dict[str, Any], expect: tuple[str, str]
) -> None:
    body = v1_run(**{"start_date": None, "end_date": None, **fields})
    async with server.client() as c:
        r = await c.post("/api/v1/backtests", json=body, timeout=120)
        assert r.status_code == 200, r.text
        config = r.json()["config"]
        assert (config["start"], config["end"]) == expect


async def test_modes_ending_now(server: ServerProcess) -> None:
    async with server.client() as c:
        symbols = {s["name"]: s for s in (await c.get("/api/v2/symbols")).json()["items"]}
        data_end = datetime.fromisoformat(symbols["ETH-USD"]["last_bar"])
        start = (datetime.now(UTC) - timedelta(days=20)).date().isoformat()
        r = await c.post("/api/v1/backtests", json=v1_run(start_date=start, end_date=None))
        assert r.status_code == 200, r.text
        config = r.json()["config"]
        assert config["start"] == f"{start}T00:00:00Z"
        assert config["date_range"]["mode"] == "from_date_to_now"
        end = datetime.fromisoformat(config["end"])
        assert data_end <= end < data_end + timedelta(minutes=1)  # now, clipped to the data
        r = await c.post("/api/v1/backtests",
                         json=v1_run(start_date=None, end_date=None, lookback_months=1))  # fmt: skip
        assert r.json()["config"]["date_range"]["mode"] == "recent_history"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"start_date": "2024-01-01", "lookback_months": 3}, {"start_date", "lookback_months"}),
        ({"start_date": "2024-01-01", "end_date": "2024-02-01", "lookback_months": 3},
         {"start_date", "end_date", "lookback_months"}),
        ({"end_date": "2024-02-01"}, {"end_date"}),
        ({}, {"start_date", "end_date", "lookback_months"}),
        ({"start_date": "2024-03-01", "end_date": "2024-02-01"}, {"start_date"}),
    ],
)  # fmt: skip
async def test_impossible_date_ranges_are_400(
    server: ServerProcess, fields: dict[str, Any], named: set[str]
) -> None:
    body = v1_run(**{"start_date": None, "end_date": None, **fields})
    async with server.client() as c:
        before = (await c.get("/api/v2/backtests?limit=1")).headers["x-total-count"]
        r = await c.post("/api/v1/backtests", json=body)
        assert r.status_code == 400, r.text
        err = r.json()
        assert err["success"] is False and err["error"]["code"] == "validation_error"
        assert {d["field"] for d in err["error"].get("details", [])} | {
            err["error"]["field"]
        } == named
        assert (await c.get("/api/v2/backtests?limit=1")).headers["x-total-count"] == before


@pytest.mark.parametrize(
    ("overrides", "status", "code", "field"),
    [
        ({"strategy_id": "550e8400-e29b-41d4-a716-446655440000"}, 400, "validation_error",
         "strategy_json"),
        ({"strategy_json": None}, 422, "validation_error", "strategy_json"),
        ({"strategy_json": None, "strategy_id": "550e8400-e29b-41d4-a716-446655440000"}, 404,
         "not_found", "strategy_id"),
        ({"strategy_json": None, "strategy_id": "nope"}, 404, "not_found", "strategy_id"),
        ({"asset": "NOPE"}, 400, "unsupported_asset", "asset"),
        ({"interval": "7m"}, 422, "validation_error", "interval"),
        ({"initial_balance": -5}, 422, "validation_error", "initial_balance"),
        ({"max_risk_per_trade": 2}, 422, "validation_error", "max_risk_per_trade"),
        ({"execution_config": {"atr_period": 0}}, 422, "validation_error",
         "execution_config.atr_period"),
        ({"colour": "red"}, 422, "validation_error", "colour"),
        ({"start_date": "2019-01-01"}, 400, "invalid_date_range", "start_date"),
        ({"start_date": "yesterday"}, 422, "validation_error", "start_date"),
        ({"strategy_json": "{not json"}, 400, "invalid_strategy", "strategy_json"),
    ],
)  # fmt: skip
async def test_rejected_requests_name_the_field(
    server: ServerProcess, overrides: dict[str, Any], status: int, code: str, field: str
) -> None:
    body = {**v1_run(), **overrides}
    body = {k: v for k, v in body.items() if v is not None}
    async with server.client() as c:
        r = await c.post("/api/v1/backtests", json=body)
        assert r.status_code == status, r.text
        err = r.json()
        assert err["success"] is False and err["detail"] == err["error"]["message"]
        assert err["error"]["code"] == code and err["error"]["field"] == field, err


async def test_seed_001_strategy_rules(server: ServerProcess, other_key: str) -> None:
    two_triggers = copy.deepcopy(SEED_STRATEGY)
    two_triggers["entry"][1]["signal_type"] = "TRIGGER"
    with_atr = {**SEED_STRATEGY, "atr_period": 14, "atr_multiplier": 2.0}
    async with server.client() as c, server.client(other_key) as theirs:
        r = await c.post("/api/v1/backtests",
                         json=v1_run(strategy_json=orjson.dumps(two_triggers).decode()))  # fmt: skip
        assert r.status_code == 400 and r.json()["error"]["field"] == "strategy_json.entry"
        assert "TRIGGER" in r.json()["detail"]
        r = await c.post("/api/v1/backtests",
                         json=v1_run(strategy_json=orjson.dumps(with_atr).decode()))  # fmt: skip
        assert r.status_code == 400 and r.json()["error"]["field"] == "strategy_json.atr_period"
        assert "execution_config" in r.json()["detail"]
        sid = (await c.post("/api/v1/strategies", json=SEED_STRATEGY)).json()["strategy_id"]
        body = v1_run(strategy_json=None, strategy_id=sid)
        r = await theirs.post("/api/v1/backtests", json=body)
        assert r.status_code == 404 and r.json()["error"]["field"] == "strategy_id"


async def test_deprecated_flat_keys_act_and_are_flagged(server: ServerProcess) -> None:
    async with server.client() as c:
        # Without a cooldown_config entry for the interval, the flat keys govern cooldowns.
        r = await c.post("/api/v1/backtests", json=v1_run(cooldown_config=None), timeout=120)
        assert "deprecation" not in r.headers
        plain = r.json()
        sent = v1_run(cooldown_config=None, cooldown_bars=24, daily_momentum_limit=3,
                      weekly_momentum_limit=3)  # fmt: skip
        r = await c.post("/api/v1/backtests", json=sent, timeout=120)
        assert r.status_code == 200 and r.headers["deprecation"] == "true"
        assert len(r.json()["warnings"]) == 3
        assert r.json()["metrics"] == plain["metrics"]  # the defaults are 24, 3, 3
        strict = v1_run(cooldown_config=None, daily_momentum_limit=1, cooldown_bars=500)
        r = await c.post("/api/v1/backtests", json=strict, timeout=120)
        assert r.status_code == 200 and r.headers["deprecation"] == "true"
        assert r.json()["trade_count"] < plain["trade_count"]  # they still act


async def test_bulk_example_with_saved_ids(server: ServerProcess) -> None:
    async with server.client() as c:
        btc = {**SEED_STRATEGY, "name": "BTC Strategy", "asset": "BTC"}
        slow = copy.deepcopy(SEED_STRATEGY)
        slow["entry"][1]["params"]["window"] = 100
        ids = [
            (await c.post("/api/v1/strategies", json=s)).json()["strategy_id"]
            for s in (SEED_STRATEGY, slow, btc)
        ]
        before = int((await c.get("/api/v2/backtests?limit=1")).headers["x-total-count"])
        r = await c.post("/api/v1/backtests/bulk", json={**BULK, "strategy_ids": ids}, timeout=180)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True and body["total"] == 3 and body["succeeded"] == 3
        assert body["data_fetches"] == 2  # (ETH-USD, 1h) and (BTC-USD, 1h)
        assert [x["strategy_id"] for x in body["results"]] == ids
        assert [x["asset"] for x in body["results"]] == ["ETH-USD", "ETH-USD", "BTC-USD"]
        after = int((await c.get("/api/v2/backtests?limit=1")).headers["x-total-count"])
        assert after == before + 3  # each strategy is a run of its own
        for item in body["results"]:
            assert set(item["metrics"]) == SEED_METRICS
            one = (await c.get(f"/api/v1/backtests/{item['backtest_id']}")).json()
            assert one["metrics"] == item["metrics"] and one["trade_count"] == item["trade_count"]
            assert one["start_date"] == "2024-01-01T00:00:00Z"


async def test_bulk_captures_one_failure_and_runs_the_rest(server: ServerProcess) -> None:
    bad = copy.deepcopy(SEED_STRATEGY)
    bad["entry"][0]["name"] = "no_such_signal"
    configs = [SEED_STRATEGY, bad, {**SEED_STRATEGY, "asset": "NOPE"}, "not an object"]
    async with server.client() as c:
        r = await c.post(
            "/api/v1/backtests/bulk",
            json={**BULK, "end_date": "2024-03-31", "strategy_configs": configs},
            timeout=180,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["succeeded"], body["failed"]) == (1, 3)
        ok, unknown_signal, unknown_asset, not_object = body["results"]
        assert ok["success"] and ok["backtest_id"]
        assert unknown_signal["error"]["code"] == "invalid_strategy"
        assert unknown_signal["error"]["field"] == "strategy_configs[1].entry[0].name"
        assert unknown_asset["error"]["code"] == "unsupported_asset"
        assert not_object["error"]["field"] == "strategy_configs[3]"
        assert all(x["backtest_id"] is None for x in body["results"][1:])
        too_many = {**BULK, "strategy_configs": [SEED_STRATEGY] * 51}
        r = await c.post("/api/v1/backtests/bulk", json=too_many)
        assert r.status_code == 422 and r.json()["error"]["field"] == "strategy_configs"
        r = await c.post("/api/v1/backtests/bulk", json={**BULK, "strategy_ids": ["a"],
                                                         "strategy_configs": [SEED_STRATEGY]})  # fmt: skip
        assert r.status_code == 400  # both sources, as for a single run


async def test_result_trades_archive_and_history(server: ServerProcess, other_key: str) -> None:
    async with server.client() as c, server.client(other_key) as theirs:
        body = (await c.post("/api/v1/backtests", json=v1_run(), timeout=120)).json()
        bid = body["backtest_id"]
        got = (await c.get(f"/api/v1/backtests/{bid}")).json()
        assert got["trades"] == body["trades"] and got["metrics"] == body["metrics"]
        assert body["trade_count"] >= 3
        pages, url = [], f"/api/v1/backtests/{bid}/trades?limit=2"
        while url:
            r = await c.get(url)
            assert r.status_code == 200 and int(r.headers["x-total-count"]) == body["trade_count"]
            pages += r.json()["trades"]
            link = r.headers.get("link")
            url = link[1 : link.index(">")] if link else ""
        assert pages == body["trades"]

        r = await c.post(f"/api/v1/backtests/{bid}/archive")
        assert r.status_code == 200
        assert {k: r.json()[k] for k in ("success", "backtest_id", "archived")} == {
            "success": True, "backtest_id": bid, "archived": True}  # fmt: skip
        history = (await c.get("/api/v1/users/me/backtests?limit=200")).json()
        assert bid not in [x["backtest_id"] for x in history["items"]]
        history = (await c.get("/api/v1/users/me/backtests?include_archived=true&limit=200")).json()
        item = next(x for x in history["items"] if x["backtest_id"] == bid)
        assert item["archived"] is True and item["archived_at"] is not None
        assert item["metrics"] == body["metrics"]
        assert all(x["archived_at"] is None for x in history["items"] if not x["archived"])
        # v2 sees the same archive flag, and can clear it.
        assert (await c.get(f"/api/v2/backtests/{bid}")).json()["archived"] is True
        r = await c.post(f"/api/v1/backtests/{bid}/unarchive")
        assert r.json()["archived"] is False
        history = (await c.get("/api/v1/users/me/backtests?limit=200")).json()
        assert bid in [x["backtest_id"] for x in history["items"]]

        for method, path in [("GET", ""), ("GET", "/trades"), ("POST", "/archive"),
                             ("POST", "/unarchive")]:  # fmt: skip
            r = await theirs.request(method, f"/api/v1/backtests/{bid}{path}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
        assert (await c.delete(f"/api/v1/backtests/{bid}")).status_code == 405  # never deleted
        assert (await c.get("/api/v1/backtests/not-a-uuid")).status_code == 404


async def test_v2_runs_are_readable_through_v1(server: ServerProcess) -> None:
    from tests.server.api_helpers import completed_run
    from tests.server.harness import backtest

    async with server.client() as c:
        created, results = await completed_run(c, backtest())
        got = (await c.get(f"/api/v1/backtests/{created['run_id']}")).json()
        assert got["success"] is True and got["trades"] == results["round_trips"]
        assert got["metrics"] == {k: results["metrics"][k] for k in SEED_METRICS}


async def test_deprecated_paths_dispatch_with_headers(server: ServerProcess) -> None:
    async with server.client() as c:
        r = await c.post("/api/v1/backtesting/backtest", json=v1_run(), timeout=120)
        assert r.status_code == 200, r.text
        assert_seed_shape(r.json())
        assert r.headers["deprecation"] == "true"
        assert r.headers["link"] == '</api/v1/backtests>; rel="successor-version"'
        bid = r.json()["backtest_id"]
        r = await c.get(f"/api/v1/backtesting/backtest/{bid}/trades")
        assert r.status_code == 200 and r.headers["deprecation"] == "true"
        assert f'</api/v1/backtests/{bid}/trades>; rel="successor-version"' in r.headers["link"]
        r = await c.post(f"/api/v1/backtesting/backtests/{bid}/archive")
        assert r.json()["archived"] is True
        r = await c.get("/api/v1/backtesting/backtest/00000000-0000-0000-0000-000000000000")
        assert r.status_code == 404 and r.headers["deprecation"] == "true"


async def test_unauthorized_in_the_v1_shape(server: ServerProcess) -> None:
    async with server.client("bs_not_a_key") as c:
        r = await c.post("/api/v1/backtests", json=v1_run())
        assert r.status_code == 401
        assert r.json()["success"] is False and r.json()["error"]["code"] == "unauthorized"


async def _running(c: httpx.AsyncClient, n: int) -> bool:
    runs = (await c.get("/api/v2/backtests?state=running")).json()
    return len(runs) >= n


async def test_busy_workers_answer_503_at_once(server: ServerProcess) -> None:
    async with server.client() as c:
        slow = [asyncio.create_task(c.post("/api/v1/backtests", json=slow_run(), timeout=300))
                for _ in range(2)]  # fmt: skip
        await eventually(lambda: _running(c, 2), timeout=60)
        started = asyncio.get_running_loop().time()
        r = await c.post("/api/v1/backtests", json=v1_run())
        assert r.status_code == 503, r.text
        assert asyncio.get_running_loop().time() - started < 5  # not held until a gateway gives up
        assert r.headers["retry-after"] == "2" and r.json()["error"]["code"] == "busy"
        r = await c.post(
            "/api/v1/backtests/bulk", json={**BULK, "strategy_configs": [SEED_STRATEGY]}
        )
        assert r.status_code == 503 and "retry-after" in r.headers
        done = await asyncio.gather(*slow)
        assert [x.status_code for x in done] == [200, 200]
        r = await c.post("/api/v1/backtests", json=v1_run(), timeout=120)
        assert r.status_code == 200  # the slots came back


async def test_client_that_disconnects_leaves_a_finished_run(server: ServerProcess) -> None:
    async with server.client() as c:
        before = {x["run_id"] for x in (await c.get("/api/v2/backtests?limit=200")).json()}
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/api/v1/backtests", json=slow_run(), timeout=1.0)

        async def new_run() -> str | None:
            now = {x["run_id"] for x in (await c.get("/api/v2/backtests?limit=200")).json()}
            return next(iter(now - before), None)

        run_id = await eventually(new_run, timeout=30)
        done = await wait_state(c, run_id, {"completed", "failed", "cancelled"})
        assert done["state"] == "completed"  # the rule: it runs to the end, kept in history
        r = await c.post("/api/v1/backtests", json=v1_run(), timeout=120)
        assert r.status_code == 200  # and its slot was given back


# ---- defects found in review, each reproduced against a real server --------------------------


async def test_nul_characters_are_422_naming_the_field(server: ServerProcess) -> None:
    nul_json = orjson.dumps({**SEED_STRATEGY, "name": "bad\u0000"}).decode()
    cases = [
        ("/api/v2/strategies", {"name": "a\u0000b", "strategy": SEED_STRATEGY}, "name"),
        ("/api/v1/strategies", {**SEED_STRATEGY, "name": "x\u0000"}, "name"),
        ("/api/v1/backtests", v1_run(name="n\u0000"), "name"),
        ("/api/v1/backtests", v1_run(strategy_json=nul_json), "strategy_json"),
    ]
    async with server.client() as c:
        for path, body, field in cases:
            r = await c.post(path, json=body)
            assert r.status_code == 422, (path, r.text)
            assert r.json()["error"]["field"] == field, r.text
        from tests.server.harness import backtest

        r = await c.post("/api/v2/backtests", json=backtest(name="v2\u0000"))
        assert r.status_code == 422 and r.json()["error"]["field"] == "name"


async def test_bulk_item_faults_never_sink_the_batch(server: ServerProcess) -> None:
    configs = [
        {**SEED_STRATEGY, "name": "bad\u0000"},
        {"name": "x", "asset": "ETH", "entry": 5, "exit": []},
        {"name": "y", "asset": "ETH", "entry": [], "exit": True},
        SEED_STRATEGY,
    ]
    async with server.client() as c:
        sid = "00000000-0000-0000-0000-000000000000"
        body = {**BULK, "end_date": "2024-02-15", "strategy_configs": configs}
        r = await c.post("/api/v1/backtests/bulk", json=body, timeout=120)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["success"] for x in results] == [False, False, False, True]
        assert [x["error"]["field"] for x in results[:3]] == [
            "strategy_configs[0].name", "strategy_configs[1].entry", "strategy_configs[2].entry",
        ]  # fmt: skip
        r = await c.post("/api/v1/backtests/bulk", json={**BULK, "strategy_ids": [sid]})
        assert r.json()["results"][0]["error"]["field"] == "strategy_ids[0]"


@pytest.mark.parametrize(
    ("fields", "status", "named"),
    [
        ({"start_date": None, "end_date": None}, 400, "start_date"),
        ({"start_date": "2024-05-01", "end_date": "2024-01-01"}, 400, "start_date"),
        ({"asset": "DOGE"}, 400, "asset"),
        ({"strategy_configs": None}, 422, "strategy_ids"),
        ({"strategy_ids": ["a"]}, 400, "strategy_ids"),
    ],
)  # fmt: skip
async def test_bulk_request_faults_are_the_requests(
    server: ServerProcess, fields: dict[str, Any], status: int, named: str
) -> None:
    body = {**BULK, "strategy_configs": [SEED_STRATEGY, SEED_STRATEGY], **fields}
    body = {k: v for k, v in body.items() if v is not None}
    async with server.client() as c:
        r = await c.post("/api/v1/backtests/bulk", json=body)
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert named in {err["field"], *(d["field"] for d in err.get("details", []))}, err


@pytest.mark.parametrize(
    ("overrides", "status", "field"),
    [
        ({"end_date": "0001-06-01", "start_date": None, "lookback_months": 12}, 400, "end_date"),
        ({"strategy_json": "", "strategy_id": "550e8400-e29b-41d4-a716-446655440000"}, 400,
         "strategy_json"),
        ({"strategy_json": ""}, 400, "strategy_json"),
    ],
)  # fmt: skip
async def test_more_rejections_name_the_field(
    server: ServerProcess, overrides: dict[str, Any], status: int, field: str
) -> None:
    body = {k: v for k, v in {**v1_run(), **overrides}.items() if v is not None}
    async with server.client() as c:
        r = await c.post("/api/v1/backtests", json=body)
        assert r.status_code == status, r.text
        fields = {
            r.json()["error"]["field"],
            *(d["field"] for d in r.json()["error"].get("details", [])),
        }
        assert field in fields, r.text


async def test_an_end_date_of_today_ends_at_the_data(server: ServerProcess) -> None:
    today = datetime.now(UTC).date()
    async with server.client() as c:
        r = await c.post("/api/v1/backtests", json=v1_run(start_date=None, end_date=today.isoformat(),
                                                           lookback_months=2), timeout=120)  # fmt: skip
        assert r.status_code == 200, r.text
        assert datetime.fromisoformat(r.json()["config"]["end"]) <= datetime.now(UTC)


async def test_malformed_cursors_are_422(server: ServerProcess) -> None:
    import base64

    async with server.client() as c:
        for raw in (b"1e300|00000000-0000-0000-0000-000000000000", b"inf|x", b"nan|y"):
            cursor = base64.urlsafe_b64encode(raw).decode()
            for path in ("/api/v2/strategies", "/api/v1/users/me/backtests", "/api/v2/backtests"):
                r = await c.get(f"{path}?cursor={cursor}")
                assert r.status_code == 422 and r.json()["error"]["field"] == "cursor", (
                    path,
                    r.text,
                )


async def test_v1_body_over_the_limit_is_413_in_the_v1_shape(server: ServerProcess) -> None:
    async with server.client() as c:
        r = await c.post("/api/v1/backtests", content=b"x" * (2 << 20))
        assert r.status_code == 413
        assert r.json()["success"] is False and r.json()["error"]["code"] == "payload_too_large"


async def test_saved_strategy_asset_is_checked(server: ServerProcess) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/strategies", json={"strategy": SEED_STRATEGY, "asset": "NOPE"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_asset"
        assert r.json()["error"]["field"] == "asset"
