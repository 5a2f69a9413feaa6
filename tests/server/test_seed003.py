"""The seed 003 surface against real servers: its flow, its figures checked from the bars and the
round trips, every error of its table, credits and the per-key request rate."""

import itertools
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import numpy as np
import pytest

from engine.data.store import BarStore
from protocol.errors import ApiError, ErrorCode
from server.responses import render
from tests.server.api_helpers import full_results, wait_state
from tests.server.harness import ServerProcess, backtest, serving
from tests.server.streaming import read_stream

URL = "/api/public/v1/backtest"
SUBMIT_KEYS = {"id", "status", "assetPair", "initialDate", "finalDate", "createdAtUtc",
               "canViewResult"}  # fmt: skip
GET_KEYS = SUBMIT_KEYS | {"strategySnapshotJson", "errorMessage", "logsJson", "result"}
METRICS = {"pnlR", "grossProfitR", "grossLossR", "profitFactor", "expectancyR", "avgWinR",
           "avgLossR", "trades", "wins", "losses", "winRate", "bothHit"}  # fmt: skip
TRADE_KEYS = {"number", "entryPrice", "exitPrice", "pnlR", "pnlPct", "totalScoreAtEntry",
              "conditionsAtEntry", "scoreBreakdownAtEntry"}  # fmt: skip

# The README's worked example, without "type" (this surface only takes score strategies), with
# a percent stop so each trade's R can be recomputed from its prices alone.
STOP = 0.01
REWARD = 2.0
MOMENTUM = {
    "name": "momentum score",
    "variables": {"fast": "ema(12)", "slow": "ema(26)", "r": "rsi(14)"},
    "conditions": [
        {"name": "trend_up", "when": "fast > slow", "score": 2},
        {"name": "not_overbought", "when": "r < 70", "score": 1},
        {"name": "above_200", "when": "close > sma(200)", "score": 1, "timeframe": "4h"},
    ],
    "threshold": 3,
    "risk": {"stop": {"type": "percent", "value": STOP}, "reward_risk": REWARD},
}


def submit_body(strategy: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    body = {
        "strategySnapshotJson": json.dumps(strategy or MOMENTUM),
        "assetPair": "BTC-USDC",
        "initialDate": "2024-03-01",
        "finalDate": "2024-05-31",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def public(srv: ServerProcess, key: str | None) -> httpx.AsyncClient:
    """A client that authenticates as seed 003 says: the x-api-key header."""
    headers = {"x-api-key": key} if key else {}
    return httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def flow_key(server: ServerProcess) -> str:
    """A key of its own, so this module's requests have their own per-minute budget."""
    return server.create_key("seed003-flow")


@pytest.fixture(scope="module")
def error_key(server: ServerProcess) -> str:
    return server.create_key("seed003-errors")


async def completed(srv: ServerProcess, key: str, body: dict[str, Any]) -> tuple[dict, dict]:
    """Submit through seed 003, wait (polling v2) until it ends; return (submit answer, v2
    results)."""
    async with public(srv, key) as c:
        r = await c.post(URL, json=body)
    assert r.status_code == 200, r.text
    async with srv.client(key) as v2:
        done = await wait_state(v2, r.json()["id"], {"completed", "failed", "cancelled"})
        assert done["state"] == "completed", done
        results = await full_results(v2, done["run_id"])
    return r.json(), results


# ---- the flow ---------------------------------------------------------------------------------


async def test_submit_then_fetch_as_the_seed_describes(
    server: ServerProcess, flow_key: str
) -> None:
    async with public(server, flow_key) as c:
        r = await c.post(URL, json=submit_body())
        assert r.status_code == 200, r.text
        sub = r.json()
        assert set(sub) == SUBMIT_KEYS
        assert sub["status"] == "Running" and sub["canViewResult"] is True
        assert (sub["assetPair"], sub["initialDate"], sub["finalDate"]) == (
            "BTC-USDC", "2024-03-01", "2024-05-31",
        )  # fmt: skip
        assert str(uuid.UUID(sub["id"])) == sub["id"]
        created = datetime.fromisoformat(sub["createdAtUtc"])
        assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)
        assert r.headers["location"] == f"{URL}/{sub['id']}"
        async with server.client(flow_key) as v2:
            await wait_state(v2, sub["id"], {"completed"})
            status = (await v2.get(f"/api/v2/backtests/{sub['id']}")).json()
            history = (await v2.get("/api/v1/users/me/backtests")).json()
        got = (await c.get(f"{URL}/{sub['id']}")).json()
        with_trades = (await c.get(f"{URL}/{sub['id']}", params={"includeTrades": "true"})).json()
    assert set(got) == GET_KEYS
    assert got["status"] == "Completed" and got["errorMessage"] is None
    assert json.loads(got["strategySnapshotJson"]) == MOMENTUM  # as sent
    assert got["strategySnapshotJson"] == submit_body()["strategySnapshotJson"]
    assert {k: got[k] for k in SUBMIT_KEYS - {"status"}} == {
        k: sub[k] for k in SUBMIT_KEYS - {"status"}
    }
    assert set(got["result"]) == METRICS | {"conditionsDistributionPct", "scoreDistributionPct"}
    assert with_trades["result"] == {
        **got["result"],
        "tradesDetail": with_trades["result"]["tradesDetail"],
    }
    assert got["result"]["trades"] > 0
    names = [c["name"] for c in MOMENTUM["conditions"]]
    assert list(got["result"]["conditionsDistributionPct"]) == names  # the strategy's order
    async with httpx.AsyncClient(base_url=server.url) as anon:
        doc = (await anon.get("/openapi.json")).json()
        error = (await anon.get(f"{URL}/{sub['id']}")).json()
    assert error["error"]["code"] == "unauthorized"
    for name, value in (("Seed003SubmitBody", submit_body()), ("Seed003SubmitResponse", sub),
                        ("Seed003Backtest", got), ("Seed003Backtest", with_trades),
                        ("Seed003Error", error)):  # fmt: skip
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(value)
    ops = [doc["paths"][p][m] for p, m in ((URL, "post"), (f"{URL}/{{id}}", "get"))]
    assert all(op["tags"] == ["seed003"] for op in ops)
    logs = json.loads(got["logsJson"])
    assert any("loaded" in line["message"] and "BTC-USDC" in line["message"] for line in logs)
    # An ordinary run: v2 shows it, v1's history lists it, the stream replays it.
    assert status["config"]["surface"] == "seed003" and status["config"]["symbols"] == ["BTC-USDC"]
    assert status["config"]["resolution"] == "4h"  # the finest timeframe the strategy names
    assert status["config"]["execution"]["fill"] == "close"
    assert sub["id"] in {item["backtest_id"] for item in history["items"]}
    events, code, _ = await read_stream(
        f"{server.ws_url}/api/v2/backtests/{sub['id']}/stream", {"X-API-Key": flow_key}
    )
    assert code == 1000 and [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"]["state"] == "completed"


def readme_example() -> dict[str, Any]:
    """The body of the README's seed 003 curl example, as written there."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("## The score-strategy dialect (seed 003)") :]
    found = re.search(r"/api/public/v1/backtest -H .*? -d '(\{.*?\})'\n", section, re.DOTALL)
    assert found is not None
    return json.loads(found.group(1))


async def test_the_readme_example_runs_as_written(server: ServerProcess, flow_key: str) -> None:
    body = readme_example()
    assert json.loads(body["strategySnapshotJson"])["risk"]["stop"]["type"] == "atr"
    sub, res = await completed(server, flow_key, body)
    async with public(server, flow_key) as c:
        got = (await c.get(f"{URL}/{sub['id']}")).json()
    assert got["status"] == "Completed" and got["result"]["trades"] == len(res["round_trips"])
    # An ATR stop is 1R: a stop exit loses 1R (more after a gap), a target exit wins 3R or more.
    for t in res["round_trips"]:
        if t["exit_reason"] == "stop":
            assert t["r_multiple"] <= -1.0 + 1e-9
        if t["exit_reason"] == "take_profit":
            assert t["r_multiple"] >= 3.0 - 1e-9


async def test_metrics_match_the_round_trips(server: ServerProcess, flow_key: str) -> None:
    sub, res = await completed(server, flow_key, submit_body(timeframe="1h"))
    async with public(server, flow_key) as c:
        got = (await c.get(f"{URL}/{sub['id']}?includeTrades=true")).json()
    result, trips = got["result"], res["round_trips"]
    assert len(trips) == result["trades"] > 10
    # One position at a time: each trade starts after the previous one ended.
    assert all(b["entry_time"] >= a["exit_time"] for a, b in itertools.pairwise(trips))
    # Each trade's R from its prices: the stop sits STOP below the entry, so 1R = entry * STOP.
    r = np.array([(t["exit_price"] - t["entry_price"]) / (t["entry_price"] * STOP) for t in trips])
    wins, losses = r[r > 0], r[r < 0]
    n = len(r)
    assert result["wins"] == len(wins) == sum(t["pnl"] > 0 for t in trips)
    assert result["losses"] == len(losses)
    assert result["winRate"] == pytest.approx(len(wins) / n)
    assert result["pnlR"] == pytest.approx(r.sum(), abs=1e-9)
    assert result["grossProfitR"] == pytest.approx(wins.sum(), abs=1e-9)
    assert result["grossLossR"] == pytest.approx(losses.sum(), abs=1e-9)
    assert result["profitFactor"] == pytest.approx(wins.sum() / abs(losses.sum()))
    assert result["avgWinR"] == pytest.approx(wins.mean())
    assert result["avgLossR"] == pytest.approx(losses.mean())
    win_rate, loss_rate = len(wins) / n, len(losses) / n
    assert result["expectancyR"] == pytest.approx(
        win_rate * wins.mean() + loss_rate * losses.mean()
    )
    assert result["bothHit"] == sum(bool(t["both_hit"]) for t in trips)
    # The fixed model: a stop loses 1R, a target wins REWARD R (no fees; a gap could differ).
    for t, x in zip(trips, r, strict=True):
        if t["exit_reason"] == "stop":
            assert x == pytest.approx(-1.0) or t["exit_price"] < t["entry_price"] * (1 - STOP)
        if t["exit_reason"] == "take_profit":
            assert x == pytest.approx(REWARD) or t["exit_price"] > t["entry_price"] * (
                1 + STOP * REWARD
            )
    detail = result["tradesDetail"]
    assert [d["number"] for d in detail] == list(range(1, n + 1))
    names = [c["name"] for c in MOMENTUM["conditions"]]
    scores = {c["name"]: c["score"] for c in MOMENTUM["conditions"]}
    for d, t, x in zip(detail, trips, r, strict=True):
        assert set(d) >= TRADE_KEYS
        assert (d["entryPrice"], d["exitPrice"]) == (t["entry_price"], t["exit_price"])
        assert d["pnlR"] == pytest.approx(x)
        assert d["pnlPct"] == pytest.approx(t["exit_price"] / t["entry_price"] - 1)
        assert set(d["conditionsAtEntry"]) == set(names)
        assert d["scoreBreakdownAtEntry"] == {k: scores[k] if d["conditionsAtEntry"][k] else 0
                                              for k in names}  # fmt: skip
        assert d["totalScoreAtEntry"] == sum(d["scoreBreakdownAtEntry"].values()) >= 3
        assert (d["entryTimeUtc"], d["bothHit"]) == (t["entry_time"], t["both_hit"])
    shares = result["scoreDistributionPct"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert set(shares) <= {"0", "1", "2", "3", "4"}


def _bars(srv: ServerProcess, symbol: str, start: str, end: str) -> Any:
    """The stored 1-minute bars with open time in [start, end] (read straight from the store)."""
    ns = [int(datetime.fromisoformat(x).timestamp()) * 1_000_000_000 for x in (start, end)]
    bars = BarStore(srv.data_dir / "bars").load(symbol, "1m", ns[0] - 10**12, ns[1] + 10**12)
    keep = (bars.ts >= ns[0]) & (bars.ts <= ns[1])
    return {c: np.asarray(getattr(bars, c))[keep] for c in ("ts", "open", "high", "low", "close")}


async def test_distributions_and_same_candle_stop_and_target_from_the_bars(
    server: ServerProcess, flow_key: str
) -> None:
    # A tight stop and target on 1-minute candles: many candles reach both.
    pct = 0.0005
    strategy = {
        "name": "tight",
        "conditions": [
            {"name": "up", "when": "close > open", "score": 1},
            {"name": "wide", "when": "high - low > close * 0.001", "score": 2},
        ],
        "threshold": 3,
        "risk": {"stop": {"type": "percent", "value": pct}, "reward_risk": 1},
    }
    body = submit_body(strategy, assetPair="ETH-USDC", initialDate="2024-03-01",
                       finalDate="2024-03-02", timeframe="1m")  # fmt: skip
    sub, res = await completed(server, flow_key, body)
    async with public(server, flow_key) as c:
        result = (await c.get(f"{URL}/{sub['id']}", params={"includeTrades": "1"})).json()["result"]
    b = _bars(server, "ETH-USDC", "2024-03-01T00:00:00+00:00", "2024-03-02T23:59:59+00:00")
    up = b["close"] > b["open"]
    wide = b["high"] - b["low"] > b["close"] * 0.001
    assert len(b["ts"]) == 2 * 1440
    assert result["conditionsDistributionPct"] == pytest.approx(
        {"up": up.mean(), "wide": wide.mean()}
    )
    total = up * 1 + wide * 2
    assert result["scoreDistributionPct"] == pytest.approx(
        {str(s): (total == s).mean() for s in range(4) if (total == s).any()}
    )
    # Simulate the dialect's rules on the bars: enter at the close of a candle scoring 3 while
    # flat; from the next candle, exit at the first one reaching the stop or the target (both in
    # one candle: the stop, counted in bothHit); a candle opening beyond one fills at its open.
    expected, i, n = [], 0, len(b["ts"])
    while i < n - 1:
        if total[i] < 3:
            i += 1
            continue
        entry = b["close"][i]
        stop, target = entry * (1 - pct), entry * (1 + pct)
        for j in range(i + 1, n):
            o, h, lo = b["open"][j], b["high"][j], b["low"][j]
            if o <= stop or o >= target:
                expected.append((i, j, o, False))
            elif lo <= stop or h >= target:
                both = lo <= stop and h >= target
                expected.append((i, j, stop if lo <= stop else target, both))
            else:
                continue
            break
        else:
            break  # still open at the end
        i = j  # flat again after the exit: this candle's close may enter anew
    trips = res["round_trips"]
    iso = [
        np.datetime_as_string(b["ts"][k].astype("datetime64[ns]"), unit="ms") + "Z"
        for k in range(n)
    ]
    assert [(t["entry_time"], t["exit_time"]) for t in trips] == [
        (iso[i], iso[j]) for i, j, _, _ in expected
    ]
    assert [t["exit_price"] for t in trips] == pytest.approx([p for _, _, p, _ in expected])
    assert [t["both_hit"] for t in trips] == [x for *_, x in expected]
    assert result["bothHit"] == sum(x for *_, x in expected) > 0
    both = [d for d in result["tradesDetail"] if d["bothHit"]]
    assert all(d["pnlR"] == pytest.approx(-1.0) and d["exitReason"] == "stop" for d in both)


async def test_a_final_date_after_the_data_ends_at_the_data(
    server: ServerProcess, flow_key: str
) -> None:
    today = datetime.now(UTC).date()
    body = submit_body(initialDate=str(today - timedelta(days=3)), finalDate="2099-12-31",
                       timeframe="15m")  # fmt: skip
    async with public(server, flow_key) as c:
        r = await c.post(URL, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["finalDate"] == "2099-12-31"  # echoed as sent
    async with server.client(flow_key) as v2:
        config = (await v2.get(f"/api/v2/backtests/{r.json()['id']}")).json()["config"]
    assert datetime.fromisoformat(config["end"]) <= datetime.now(UTC)
    assert config["resolution"] == "15m"


# ---- errors -----------------------------------------------------------------------------------

UNDEFINED = {**MOMENTUM, "conditions": [{"name": "x", "when": "fst > slow", "score": 3}]}
FINER = {**MOMENTUM, "conditions": [{"name": "x", "when": "close > open", "score": 3,
                                     "timeframe": "1h"}]}  # fmt: skip

ERRORS = [
    # (body, status, code, field)
    (submit_body(assetPair=None), 400, "invalid_payload", "assetPair"),
    (submit_body(strategySnapshotJson=None), 400, "invalid_payload", "strategySnapshotJson"),
    ({**submit_body(), "capital": 1000}, 400, "invalid_payload", "capital"),
    (submit_body(initialDate=20240301), 400, "invalid_payload", "initialDate"),
    (submit_body(initialDate="2024/03/01"), 400, "invalid_payload", "initialDate"),
    (submit_body(finalDate="2024-02-30"), 400, "invalid_payload", "finalDate"),
    (submit_body(finalDate="2024-05-31T00:00:00Z"), 400, "invalid_payload", "finalDate"),
    (submit_body(timeframe="2h"), 400, "invalid_payload", "timeframe"),
    (submit_body(strategySnapshotJson=MOMENTUM), 400, "invalid_payload", "strategySnapshotJson"),
    (submit_body(strategySnapshotJson="{not json"), 400, "invalid_strategy", "strategySnapshotJson"),
    (submit_body(strategySnapshotJson="[1, 2]"), 400, "invalid_strategy", "strategySnapshotJson"),
    (submit_body(UNDEFINED), 400, "invalid_strategy", "strategySnapshotJson.conditions[0].when"),
    (submit_body({**MOMENTUM, "type": "rule"}), 400, "invalid_strategy", "strategySnapshotJson.type"),
    (submit_body({**MOMENTUM, "threshold": 9}), 400, "invalid_strategy", "strategySnapshotJson.threshold"),
    (submit_body(FINER, timeframe="4h"), 400, "invalid_strategy",
     "strategySnapshotJson.conditions[0].timeframe"),
    (submit_body(assetPair="BTC\u0000"), 400, "invalid_payload", "assetPair"),
    (submit_body(assetPair="DOGE-USDC"), 400, "unsupported_asset", "assetPair"),
    (submit_body(initialDate="2023-06-01"), 400, "invalid_date_range", "initialDate"),
    (submit_body(finalDate="2024-02-01"), 400, "invalid_date_range", "finalDate"),
    (submit_body(initialDate="2099-01-01", finalDate="2099-02-01"), 400, "invalid_date_range",
     "initialDate"),
    # Out-of-range indicator params used to pass, fail in the worker and keep the credit.
    (submit_body({**MOMENTUM, "conditions": [{"name": "x", "when": "ema(-1) > close", "score": 3}]}),
     400, "invalid_strategy", "strategySnapshotJson.conditions[0].when"),
    (submit_body({**MOMENTUM, "variables": {"fast": "ema(1e308)", "slow": "ema(26)"}}),
     400, "invalid_strategy", "strategySnapshotJson.variables.fast"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "code", "field"), ERRORS)
async def test_each_fault_is_its_seed_error_and_stores_nothing(
    server: ServerProcess, error_key: str, body: Any, status: int, code: str, field: str
) -> None:
    async with server.client(error_key) as v2:
        before = (await v2.get("/api/v2/backtests")).headers["x-total-count"]
        async with public(server, error_key) as c:
            r = await c.post(URL, json=body)
        after = (await v2.get("/api/v2/backtests")).headers["x-total-count"]
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["code"], err.get("field")) == (code, field), err
    assert err["message"] and before == after
    if body is ERRORS[-2][0]:
        assert "ema.window must be between" in err["message"]
    elif field == "strategySnapshotJson.conditions[0].when":
        assert "undefined variable 'fst'" in err["message"]


async def test_malformed_and_oversized_bodies(server: ServerProcess, error_key: str) -> None:
    async with public(server, error_key) as c:
        bad = await c.post(
            URL, content=b'{"assetPair": ', headers={"content-type": "application/json"}
        )
        array = await c.post(URL, json=[submit_body()])
        huge = await c.post(URL, json=submit_body(strategySnapshotJson="x" * (2 << 20)))
        flag = await c.get(f"{URL}/{uuid.uuid4()}", params={"includeTrades": "maybe"})
    for r, status in ((bad, 400), (array, 400), (huge, 413), (flag, 400)):
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == "invalid_payload"
    assert flag.json()["error"]["field"] == "includeTrades"


async def test_keys_and_ownership(server: ServerProcess, flow_key: str, other_key: str) -> None:
    async with server.client(flow_key) as v2:
        rule_run = (await v2.post("/api/v2/backtests", json=backtest())).json()["run_id"]
        mine = (await v2.get("/api/v2/backtests")).json()
    score_run = next(r["run_id"] for r in mine if r["config"].get("surface") == "seed003")
    for key in (None, "bs_not-a-key", "nonsense"):
        async with public(server, key) as c:
            for r in (await c.post(URL, json=submit_body()), await c.get(f"{URL}/{score_run}")):
                assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    async with public(server, other_key) as c:
        theirs = await c.get(f"{URL}/{score_run}")
        unknown = await c.get(f"{URL}/{uuid.uuid4()}")
        garbage = await c.get(f"{URL}/not-a-uuid")
    for r in (theirs, unknown, garbage):  # another user's run looks like one that does not exist
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found" and r.json()["error"]["field"] == "id"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:  # Bearer works as well
        bearer = await c.get(f"{URL}/{score_run}", headers={"Authorization": f"Bearer {flow_key}"})
        rule = await c.get(f"{URL}/{rule_run}", headers={"x-api-key": flow_key})
    assert bearer.status_code == 200
    assert (
        rule.status_code == 404
        and f"/api/v2/backtests/{rule_run}" in rule.json()["error"]["message"]
    )


def test_a_server_side_failure_while_submitting_is_execution_failed() -> None:
    # What the app's catch-all handler renders for an unexpected exception on this surface.
    response = render(f"{URL}", ApiError(500, ErrorCode.INTERNAL_ERROR, "internal server error"))
    assert response.status_code == 500
    assert json.loads(response.body)["error"]["code"] == "execution_failed"


# ---- credits, the request rate, and a run that fails after submission -------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Five requests per key per minute, runs cost 2 credits, three active runs per user; every
    run fails with `timeout` (each chunk pauses 30 s, runs may last 1 s)."""
    yield from serving(
        tmp_path_factory.mktemp("seed003"),
        public_rate_per_minute="5",
        run_credits="2",
        max_active_runs="3",
        workers="1",
        chunk_bars="500",
        pace_seconds="30",
        max_run_seconds="1",
        cancel_grace_seconds="1",
    )


def credits_cli(srv: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "credits", *args, "--data-dir", str(srv.data_dir)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def _count(srv: ServerProcess, key: str) -> int:
    async with srv.client(key) as v2:
        return int((await v2.get("/api/v2/backtests")).headers["x-total-count"])


async def test_the_request_rate_is_per_key(limited: ServerProcess) -> None:
    key, other = limited.create_key("rate-a"), limited.create_key("rate-b")
    async with public(limited, key) as c:
        for _ in range(5):
            assert (await c.get(f"{URL}/{uuid.uuid4()}")).status_code == 404
        refused = [await c.get(f"{URL}/{uuid.uuid4()}"), await c.post(URL, json=submit_body())]
    for r in refused:
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited", r.text
        assert 1 <= int(r.headers["retry-after"]) <= 60
    assert await _count(limited, key) == 0  # the refused submit stored nothing
    async with public(limited, other) as c:
        assert (await c.get(f"{URL}/{uuid.uuid4()}")).status_code == 404


async def test_credits_pay_for_runs_and_a_short_balance_is_402(limited: ServerProcess) -> None:
    key = limited.create_key("payer")
    assert credits_cli(limited, "show", "--user", "payer").stdout.startswith("payer: unlimited")
    assert credits_cli(limited, "set", "--user", "payer", "--amount", "3").returncode == 0
    async with public(limited, key) as c:
        paid = await c.post(URL, json=submit_body())
        short = await c.post(URL, json=submit_body())
        bad = await c.post(URL, json=submit_body(assetPair="DOGE-USDC"))  # checked before paying
    assert paid.status_code == 200 and paid.json()["canViewResult"] is True, paid.text
    assert short.status_code == 402, short.text
    assert short.json()["error"]["code"] == "insufficient_credits"
    assert short.json()["canViewResult"] is False
    assert "costs 2 credits and your balance is 1" in short.json()["error"]["message"]
    assert bad.status_code == 400
    assert await _count(limited, key) == 1
    shown = credits_cli(limited, "show", "--user", "payer").stdout
    assert shown.strip() == "payer: 1 credits (1 runs charged, 2 credits spent)"
    assert credits_cli(limited, "grant", "--user", "payer", "--amount", "1.5").stdout.strip() == (
        "payer: 2.5 credits"
    )
    async with public(limited, key) as c:
        assert (await c.post(URL, json=submit_body())).status_code == 200
    assert credits_cli(limited, "show", "--user", "payer").stdout.startswith("payer: 0.5 credits")
    assert credits_cli(limited, "set", "--user", "payer", "--unlimited").returncode == 0
    async with public(limited, key) as c:
        free = await c.post(URL, json=submit_body())
    assert free.status_code == 200 and free.json()["canViewResult"] is True
    assert credits_cli(limited, "show", "--user", "payer").stdout.startswith(
        "payer: unlimited credits (2 runs charged, 4 credits spent)"
    )
    nobody = credits_cli(limited, "grant", "--user", "nobody", "--amount", "1")
    assert nobody.returncode == 1 and "no user named 'nobody'" in nobody.stderr
    for args in (("--amount", "-1"), ("--amount", "x"), ("--amount", "0")):
        assert credits_cli(limited, "grant", "--user", "payer", *args).returncode != 0


async def test_a_run_that_fails_after_submission_is_failed_with_its_message(
    limited: ServerProcess,
) -> None:
    key, reader = limited.create_key("failing"), limited.create_key("failing")  # two budgets
    async with public(limited, key) as c:
        made = [await c.post(URL, json=submit_body(timeframe="1h")) for _ in range(4)]
    assert [r.status_code for r in made] == [200, 200, 200, 429]  # three active runs at most
    assert made[3].json()["error"]["code"] == "rate_limited"
    assert made[3].headers["retry-after"] == "5"
    run_id = made[0].json()["id"]
    async with public(limited, reader) as c:
        early = (await c.get(f"{URL}/{run_id}")).json()  # queued behind others, or running
        async with limited.client(key) as v2:
            await wait_state(v2, run_id, {"failed"})
        got = (await c.get(f"{URL}/{run_id}")).json()
    assert (early["status"], early["result"], early["errorMessage"]) == ("Running", None, None)
    assert got["status"] == "Failed" and got["result"] is None
    assert "timeout" in got["errorMessage"] and "1 s" in got["errorMessage"]


async def test_credits_can_be_granted_while_the_server_is_down(limited: ServerProcess) -> None:
    key = limited.create_key("offline")
    limited.stop()
    try:
        done = credits_cli(limited, "grant", "--user", "offline", "--amount", "2")
        assert done.returncode == 0 and done.stdout.strip() == "offline: 2 credits", done.stderr
    finally:
        limited.start()
    async with public(limited, key) as c:
        assert (await c.post(URL, json=submit_body())).status_code == 200
        assert (await c.post(URL, json=submit_body())).status_code == 402
    shown = credits_cli(limited, "show", "--user", "offline").stdout.strip()
    assert shown == "offline: 0 credits (1 runs charged, 2 credits spent)"


async def test_credits_are_charged_on_every_surface(limited: ServerProcess) -> None:
    """A metered user cannot run for free through v2, v1 or the jobs API (found in review)."""
    from tests.server.api_helpers import job, v1_run
    from tests.server.harness import backtest
    from tests.server.signed import SignedClient

    key, secret = limited.create_signed_key("metered")
    assert credits_cli(limited, "set", "--user", "metered", "--amount", "3").returncode == 0
    async with limited.client(key) as c, SignedClient(limited.url, key, secret) as signed:
        paid = await c.post("/api/v2/backtests", json=backtest())
        assert paid.status_code == 201 and paid.json()["config"]["credits"]["charged"] == 2.0
        short = [
            await c.post("/api/v2/backtests", json=backtest()),
            await c.post("/api/v1/backtests", json=v1_run()),
            await signed.post("/v1/backtest/jobs", json=job()),
        ]
    assert [r.status_code for r in short] == [402, 402, 402], [r.text for r in short]
    assert short[0].json()["error"]["code"] == "insufficient_credits"
    assert (
        short[1].json()["success"] is False
        and short[1].json()["error"]["code"] == "insufficient_credits"
    )
    assert short[2].json()["error"]["code"] == "INSUFFICIENT_CREDITS"
    assert await _count(limited, key) == 1  # nothing stored for the refused three
    assert credits_cli(limited, "show", "--user", "metered").stdout.startswith("metered: 1 credits")
