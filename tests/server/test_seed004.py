"""The seed 004 surface against a real server: signed requests, the example job, every error."""

import copy
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.server.api_helpers import job
from tests.server.harness import ServerProcess, eventually, serving
from tests.server.signed import SignedClient, signature

# The "Example" request of seed 004, as the document gives it.
EXAMPLE = orjson.loads("""{
"template_id": "tpl_grid",
"params": {
"grid_levels": 8,
"upper_price": "72000",
"lower_price": "60000"
},
"symbols": ["BTCUSDT"],
"timeframe": "1h",
"start": "2025-01-01T00:00:00Z",
"end": "2025-12-31T23:59:59Z",
"capital": "10000.00",
"leverage": 1,
"fee_model": "fixed_bps",
"fee_bps": "5"
}""")
# Its documented response, less the values a server chooses (id, timestamps).
EXAMPLE_RESPONSE = orjson.loads("""{
"status": "queued",
"config": {
"template_id": "tpl_grid",
"params": {"grid_levels": 8, "upper_price": "72000", "lower_price": "60000"},
"symbols": ["BTCUSDT"],
"timeframe": "1h",
"start": "2025-01-01T00:00:00Z",
"end": "2025-12-31T23:59:59Z",
"capital": "10000.00",
"leverage": 1,
"fee_model": "fixed_bps",
"fee_bps": "5"
},
"started_at": null,
"finished_at": null,
"progress": 0,
"result": null,
"error": null
}""")


def slow_job() -> dict[str, Any]:
    """A job lasting seconds on the paced test server (a year of 1-minute bars)."""
    return job(timeframe="1m", start="2024-01-01T00:00:00Z", end="2024-12-31T00:00:00Z")


@pytest.fixture(scope="module")
def signer(server: ServerProcess) -> tuple[str, str]:
    """A key of its own (so limits here touch no other test) and its signing secret."""
    return server.create_signed_key("jobs")


@pytest.fixture(scope="module")
def signer2(server: ServerProcess) -> tuple[str, str]:
    """A second key, for the many-request tests: each key has its own weight budget."""
    return server.create_signed_key("jobs-2")


def client(server: ServerProcess, signer: tuple[str, str], skew: float = 0.0) -> SignedClient:
    return SignedClient(server.url, *signer, skew=skew)


async def wait_done(c: SignedClient, job_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = (await c.get(f"/v1/backtest/jobs/{job_id}")).json()
        return body if body["status"] in ("done", "failed", "cancelled") else None

    return await eventually(check, timeout=120, every=0.25)  # each poll spends weight 1


async def test_the_example_job_as_documented(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    async with client(server, signer) as c:
        r = await c.post("/v1/backtest/jobs", json=EXAMPLE)
        assert r.status_code == 201, r.text
        body = r.json()
        assert re.fullmatch(r"bt_[0-9a-f]{6,8}", body["id"])
        assert {k: body[k] for k in EXAMPLE_RESPONSE} == EXAMPLE_RESPONSE
        submitted = datetime.fromisoformat(body["submitted_at"])
        assert abs(submitted - datetime.now(UTC)) < timedelta(minutes=1)
        done = await wait_done(c, body["id"])
        assert done["status"] == "done" and done["progress"] == 1.0 and done["error"] is None
        assert done["started_at"] and done["finished_at"] and done["config"] == body["config"]
        full = (await c.get(f"/v1/backtest/jobs/{body['id']}/result")).json()
        assert full["metrics"] == done["result"]["metrics"]
    # The same run through the canonical API: one pipeline, same figures as a v2 template run.
    async with server.client(signer[0]) as v2:
        status = (await v2.get(f"/api/v2/backtests/{body['run_id']}")).json()
        assert status["state"] == "completed" and status["config"]["surface"] == "jobs"
        assert status["config"]["symbols"] == ["BTC-USDT"]
        assert status["config"]["execution"]["fee_bps"] == 5.0
        same = {"symbols": ["BTCUSDT"], "resolution": "1h", "start": "2025-01-01T00:00:00Z",
                "end": "2025-12-31T23:59:59Z", "capital": 10000, "template": "tpl_grid",
                "template_params": EXAMPLE["params"], "execution": {"fee_bps": 5}}  # fmt: skip
        from tests.server.api_helpers import completed_results

        alone = await completed_results(v2, same)
        assert alone["metrics"] == full["metrics"] and alone["trades"] == full["trades"]


@pytest.mark.parametrize(
    ("drop", "change", "why"),
    [
        ("X-PipAI-Signature", {}, "missing header"),
        ("X-PipAI-API-Key", {}, "missing header"),
        ("X-PipAI-Timestamp", {}, "missing header"),
        (None, {"X-PipAI-Signature": "0" * 64}, "does not match"),
        (None, {"X-PipAI-API-Key": "bs_not_a_real_key"}, "invalid API key"),
        (None, {"X-PipAI-Timestamp": "yesterday"}, "Unix time"),
    ],
)  # fmt: skip
async def test_unsigned_or_badly_signed_is_401(
    server: ServerProcess, signer: tuple[str, str], drop: str | None, change: dict, why: str
) -> None:
    async with client(server, signer) as c:
        body = orjson.dumps(job())
        headers = {**c.headers("POST", "/v1/backtest/jobs", body), **change}
        headers.pop(drop or "", None)
        r = await c.http.post("/v1/backtest/jobs", content=body, headers=headers)
        assert r.status_code == 401, r.text
        assert (
            r.json()["error"]["code"] == "UNAUTHENTICATED" and why in r.json()["error"]["message"]
        )


async def test_tampering_stale_and_replayed_requests_are_refused(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    async with client(server, signer) as c:
        body = orjson.dumps(job())
        headers = c.headers("POST", "/v1/backtest/jobs", body)
        tampered = body.replace(b'"10000"', b'"90000"')
        r = await c.http.post("/v1/backtest/jobs", content=tampered, headers=headers)
        assert r.status_code == 401  # the body is signed
        r = await c.http.post("/v1/backtest/jobs?x=1", content=body, headers=headers)
        assert r.status_code == 401  # so are the path and query
        r = await c.http.post("/v1/backtest/jobs", content=body, headers=headers)
        assert r.status_code == 201, r.text
        r = await c.http.post("/v1/backtest/jobs", content=body, headers=headers)
        assert r.status_code == 401 and "replay" in r.json()["error"]["message"]
    for skew in (-400, 400):
        async with client(server, signer, skew=skew) as late:
            r = await late.post("/v1/backtest/jobs", json=job())
            assert r.status_code == 401 and "clock" in r.json()["error"]["message"]
    async with client(server, signer, skew=-250) as ok:  # inside the 300 s window
        assert (await ok.get("/v1/backtest/jobs?limit=1")).status_code == 200
        seconds = str(int(time.time()))  # whole seconds are fine too
        headers = ok.headers("GET", "/v1/backtest/jobs", b"", ts=seconds)
        assert (await ok.http.get("/v1/backtest/jobs", headers=headers)).status_code == 200


def _future() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (job(template_id=None), "template_id"),
        (job(params=None), "params"),
        (job(symbols=None), "symbols"),
        (job(timeframe=None), "timeframe"),
        (job(start=None), "start"),
        (job(end=None), "end"),
        (job(capital=None), "capital"),
        (job(template_id="tpl_nope"), "template_id"),
        (job(end="2024-12-01T00:00:00Z"), "end"),  # end <= start
        (job(end="2025-01-01T00:00:00Z"), "end"),  # end == start
        (job(start="2019-01-01T00:00:00Z", end="2024-06-01T00:00:00Z"), "end"),  # > 5 years
        (job(end=_future()), "end"),
        (job(timeframe="2h"), "timeframe"),
        (job(capital="ten thousand"), "capital"),
        (job(capital="-5"), "capital"),
        (job(symbols=["btcusdt"]), "symbols"),
        (job(symbols=["NOPEUSDT"]), "symbols[0]"),
        (job(params={"window_fast": 30, "window_slow": 10}), "params.window_fast"),
        (job(leverage=0), "leverage"),
        (job(fee_model="cheap"), "fee_model"),
        (job(colour="red"), "colour"),
        (job(start="2020-01-01T00:00:00Z", end="2020-06-01T00:00:00Z"), "start"),  # no data
    ],
)  # fmt: skip
async def test_invalid_parameters_are_400(
    server: ServerProcess, signer: tuple[str, str], body: dict[str, Any], field: str
) -> None:
    async with client(server, signer) as c:
        before = (await c.get("/v1/backtest/jobs?limit=1")).json()["total"]
        r = await c.post("/v1/backtest/jobs", json=body)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "INVALID_PARAMETER" and err["field"] == field, err
        assert (await c.get("/v1/backtest/jobs?limit=1")).json()["total"] == before


async def test_strategy_id_merges_and_unusable_ones_are_409(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    key, _ = signer
    base = {"template_id": "tpl_ma_cross", "params": {"window_fast": 5, "window_slow": 20},
            "symbols": ["BTCUSDT"], "timeframe": "1h", "capital": "5000", "fee_bps": "2"}  # fmt: skip
    async with server.client(key) as rest, client(server, signer) as c:
        saved = await rest.post("/api/v2/strategies", json={"name": "ma", "job": base})
        assert saved.status_code == 201, saved.text
        sid = saved.json()["id"]
        window = {"start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}
        r = await c.post(
            "/v1/backtest/jobs", json={"strategy_id": sid, **window, "capital": "7000"}
        )
        assert r.status_code == 201, r.text
        config = r.json()["config"]
        assert config == {**base, **window, "capital": "7000", "leverage": 1,
                          "fee_model": "fixed_bps", "strategy_id": sid}  # fmt: skip
        rule = (await rest.post("/api/v2/strategies", json={"strategy": {
            "entry": [{"condition": "close > sma(20)"}]}})).json()["id"]  # fmt: skip
        r = await c.post("/v1/backtest/jobs", json={"strategy_id": rule, **window})
        assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
        await rest.delete(f"/api/v2/strategies/{sid}")
        r = await c.post("/v1/backtest/jobs", json={"strategy_id": sid, **window})
        assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
        r = await c.post(
            "/v1/backtest/jobs",
            json={"strategy_id": "00000000-0000-0000-0000-000000000000", **window},
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = await rest.post("/api/v2/backtests", json={"strategy_id": sid, **window})
        assert r.status_code == 404  # deleted
        job_id = (await rest.post("/api/v2/strategies", json=base)).json()["id"]  # bare job config
        r = await rest.post("/api/v2/backtests", json={"strategy_id": job_id, **window})
        assert r.status_code == 400 and "/v1/backtest/jobs" in r.json()["error"]["message"]


@pytest.mark.parametrize("template", ["tpl_grid", "tpl_dca", "tpl_ma_cross", "tpl_rsi_reversion",
                                      "tpl_breakout"])  # fmt: skip
@pytest.mark.parametrize("fee_model", ["none", "fixed_bps", "tiered_maker_taker", "match_exchange"])
async def test_every_template_with_every_fee_model_and_leverage(
    server: ServerProcess, signer2: tuple[str, str], template: str, fee_model: str
) -> None:
    signer = signer2
    async with server.client() as rest:
        catalog = {t["name"]: t for t in (await rest.get("/api/v2/templates")).json()["items"]}
    params = copy.deepcopy(catalog[template]["example"])
    body = job(template_id=template, params=params, fee_model=fee_model, leverage=2,
               symbols=["BTC-USDC"] if fee_model == "match_exchange" else ["BTCUSDT"])  # fmt: skip
    async with client(server, signer) as c:
        r = await c.post("/v1/backtest/jobs", json=body)
        assert r.status_code == 201, r.text
        done = await wait_done(c, r.json()["id"])
        assert done["status"] == "done", done
        assert done["config"]["leverage"] == 2 and done["config"]["fee_model"] == fee_model
    async with server.client(signer[0]) as rest:
        ex = (await rest.get(f"/api/v2/backtests/{done['run_id']}")).json()["config"]["execution"]
    assert ex["leverage"] == 2 and ex["fee_model"] == fee_model
    assert ex.get("venue") == ("coinbase" if fee_model == "match_exchange" else None)


async def test_listing_cancel_and_the_active_job_limit(server: ServerProcess) -> None:
    signer = server.create_signed_key("jobs-limit")
    async with client(server, signer) as c:
        made = []
        for _ in range(5):
            r = await c.post("/v1/backtest/jobs", json=slow_job())
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        r = await c.post("/v1/backtest/jobs", json=slow_job())
        assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
        assert "retry-after" in r.headers
        listed = (await c.get("/v1/backtest/jobs?limit=2")).json()
        assert listed["total"] == 5 and len(listed["items"]) == 2 and listed["next_cursor"]
        seen, url = [], "/v1/backtest/jobs?limit=2"
        while url:
            r = await c.get(url)
            seen += [j["id"] for j in r.json()["items"]]
            nxt = r.json()["next_cursor"]
            url = f"/v1/backtest/jobs?limit=2&cursor={nxt}" if nxt else ""
        assert seen == made[::-1]
        for job_id in made:
            r = await c.post(f"/v1/backtest/jobs/{job_id}/cancel")
            assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
        r = await c.post(f"/v1/backtest/jobs/{made[0]}/cancel")
        assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
        r = await c.get(f"/v1/backtest/jobs/{made[0]}/result")
        assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
        assert (await c.get("/v1/backtest/jobs?status=cancelled")).json()["total"] == 5
        assert (await c.get("/v1/backtest/jobs?status=done")).json()["total"] == 0
        assert (await c.get("/v1/backtest/jobs?status=nope")).status_code == 400
        r = await c.post("/v1/backtest/jobs", json=job())  # room again
        assert r.status_code == 201


async def test_another_users_job_is_404(server: ServerProcess, signer: tuple[str, str]) -> None:
    other = server.create_signed_key("jobs-other")
    async with client(server, signer) as mine, client(server, other) as theirs:
        made = (await mine.post("/v1/backtest/jobs", json=job())).json()
        for path in ("", "/result"):
            r = await theirs.get(f"/v1/backtest/jobs/{made['id']}{path}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = await theirs.post(f"/v1/backtest/jobs/{made['run_id']}/cancel")
        assert r.status_code == 404
        assert (await mine.get(f"/v1/backtest/jobs/{made['run_id']}")).json()["id"] == made["id"]


@pytest.fixture(scope="module")
def light(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose keys may spend a request weight of 45 a minute (two jobs and five reads)."""
    yield from serving(tmp_path_factory.mktemp("weights"), job_weight_per_minute="45", workers="1")


async def test_request_weights_per_key_per_minute(light: ServerProcess) -> None:
    first = (light.key, light.secret)
    assert light.secret and light.secret.startswith("bss_")  # printed once at first start
    async with SignedClient(light.url, *first) as c:
        assert (await c.post("/v1/backtest/jobs", json=job())).status_code == 201  # 20
        assert (await c.post("/v1/backtest/jobs", json=job())).status_code == 201  # 40
        for _ in range(5):
            assert (await c.get("/v1/backtest/jobs")).status_code == 200  # 41 … 45
        r = await c.get("/v1/backtest/jobs")
        assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
        assert 1 <= int(r.headers["retry-after"]) <= 60
    other = light.create_signed_key("second")
    async with SignedClient(light.url, *other) as c:  # budgets are per key
        assert (await c.post("/v1/backtest/jobs", json=job())).status_code == 201


def test_readme_worked_example_signature() -> None:
    """The README's worked example, recomputed by the recipe written out in tests/server/signed.py."""
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    example = re.search(r"<!-- signing-example -->(.*?)<!-- /signing-example -->", readme, re.S)
    assert example, "README has no signing worked example"
    fields = dict(re.findall(r"^(\w+): (.+)$", example.group(1), re.M))
    body = fields["body"].encode()
    got = signature(fields["secret"], fields["timestamp"], fields["method"], fields["path"], body)
    assert got == fields["signature"]
    import hashlib

    assert hashlib.sha256(body).hexdigest() == fields["body_sha256"]
    from server.signing import sign

    assert (
        sign(fields["secret"], fields["timestamp"], fields["method"], fields["path"], body) == got
    )


async def test_signed_get_of_unknown_path_is_404_in_this_shape(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    async with client(server, signer) as c:
        r = await c.get("/v1/backtest/jobs/bt_00000000")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    async with httpx.AsyncClient(base_url=server.url) as anon:
        r = await anon.get("/v1/backtest/jobs")
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_openapi_covers_jobs_with_a_tag(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    import jsonschema

    async with server.client() as c:
        doc = (await c.get("/openapi.json")).json()
    async with client(server, signer) as c:
        made = (await c.post("/v1/backtest/jobs", json=EXAMPLE)).json()
    for name, body in (("JobRequest", EXAMPLE), ("Job", made)):
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(body)
    ops = [op for path, item in doc["paths"].items() if path.startswith("/v1/backtest/jobs")
           for op in item.values()]  # fmt: skip
    assert len(ops) == 5 and all(op["tags"] == ["seed004"] for op in ops)
    assert {"pipaiKey", "pipaiTimestamp", "pipaiSignature"} <= doc["components"][
        "securitySchemes"
    ].keys()


async def test_leverage_applies_to_grid_positions(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    """Slot quantity is capital x leverage / slots / (1 + fee) / buy line: twice as large at 2x."""
    params = {"grid_levels": 6, "upper_price": "200000", "lower_price": "1000"}
    fills = {}
    async with client(server, signer) as c:
        for lev in (1, 2):
            body = job(template_id="tpl_grid", params=params, leverage=lev, fee_model="none")
            made = (await c.post("/v1/backtest/jobs", json=body)).json()
            assert (await wait_done(c, made["id"]))["status"] == "done"
            full = (await c.get(f"/v1/backtest/jobs/{made['id']}/result")).json()
            fills[lev] = [t["quantity"] for t in full["trades"] if t["side"] == "buy"][:3]
    assert fills[1] and fills[2] == pytest.approx([2 * q for q in fills[1]], rel=1e-12)


# ---- defects found in review, each reproduced against a real server --------------------------


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"X-PipAI-Timestamp": "\u00b2\u00b2\u00b2".encode("latin-1")}, "Unix time"),
        ({"X-PipAI-Signature": ("\u00e9" * 64).encode("latin-1")}, "signature"),
        ({"X-PipAI-Signature": "ABC"}, "signature"),
    ],
)  # fmt: skip
async def test_odd_signing_headers_are_401_not_500(
    server: ServerProcess, signer: tuple[str, str], change: dict, why: str
) -> None:
    async with client(server, signer) as c:
        headers = {**c.headers("GET", "/v1/backtest/jobs", b""), **change}
        r = await c.http.get("/v1/backtest/jobs", headers=headers)
        assert r.status_code == 401, r.text
        assert why in r.json()["error"]["message"]


async def test_unknown_key_and_bad_signature_read_the_same(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    async with client(server, signer) as c:
        bad_sig = {**c.headers("GET", "/v1/backtest/jobs", b""), "X-PipAI-Signature": "0" * 64}
        bad_key = {
            **c.headers("GET", "/v1/backtest/jobs", b""),
            "X-PipAI-API-Key": "bs_" + "x" * 43,
        }
        one = (await c.http.get("/v1/backtest/jobs", headers=bad_sig)).json()
        two = (await c.http.get("/v1/backtest/jobs", headers=bad_key)).json()
        assert one == two  # whether a key exists does not leak


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (job(start="0001-01-01T00:00:00+01:00", end="0001-01-02T00:00:00+01:00"), "start"),
        (job(start="0001-01-01T00:30:00+01:00", end="0001-01-01T05:00:00Z"), "start"),
        (job(leverage="2"), "leverage"),
        (job(leverage=True), "leverage"),
        (job(capital=" 100 "), "capital"),
        (job(capital="1_000"), "capital"),
        (job(start="2020-01-01T00:00:00Z", end="2025-01-03T00:00:00Z"), "end"),  # > 5 years
    ],
)  # fmt: skip
async def test_more_invalid_parameters(
    server: ServerProcess, signer2: tuple[str, str], body: dict[str, Any], field: str
) -> None:
    signer = signer2
    async with client(server, signer) as c:
        r = await c.post("/v1/backtest/jobs", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == field, r.text


async def test_wrong_method_is_405(server: ServerProcess, signer: tuple[str, str]) -> None:
    async with client(server, signer) as c:
        r = await c.request("PUT", "/v1/backtest/jobs", json={})
        assert r.status_code == 405, r.text


async def test_config_echo_keeps_the_order_sent(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    async with client(server, signer) as c:
        made = await c.post("/v1/backtest/jobs", json=EXAMPLE)
        raw = (await c.get(f"/v1/backtest/jobs/{made.json()['id']}")).content
    config = orjson.loads(raw)["config"]
    assert list(config) == list(EXAMPLE) and list(config["params"]) == list(EXAMPLE["params"])


async def test_done_jobs_report_counts_as_integers(
    server: ServerProcess, signer: tuple[str, str]
) -> None:
    async with client(server, signer) as c:
        made = (await c.post("/v1/backtest/jobs", json=job())).json()
        done = await wait_done(c, made["id"])
    metrics = done["result"]["metrics"]
    assert isinstance(metrics["trade_count"], int) and isinstance(
        metrics["max_drawdown_duration"], int
    )


async def test_a_signed_only_key_authenticates_nothing_by_itself(server: ServerProcess) -> None:
    """A leaked key of a signing client must not open the other surfaces (found in review)."""
    key, secret = server.create_signed_key("signed-only", signed_only=True)
    async with SignedClient(server.url, key, secret) as c:
        made = await c.post("/v1/backtest/jobs", json=job())
        assert made.status_code == 201, made.text
    async with server.client(key) as bearer:
        for r in (
            await bearer.get("/api/v2/backtests"),
            await bearer.post(f"/api/v2/backtests/{made.json()['run_id']}/cancel"),
            await bearer.get(f"/api/v1/backtests/{made.json()['run_id']}"),
        ):
            assert r.status_code == 401, r.text
    async with httpx.AsyncClient(base_url=server.url) as anon:
        r = await anon.get(
            "/api/public/v1/backtest/" + made.json()["run_id"], headers={"x-api-key": key}
        )
        assert r.status_code == 401
