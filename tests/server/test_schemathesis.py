"""schemathesis against the server's own OpenAPI document (issue 14), and what it found.

A short seeded run of scripts/fuzz_api.py — every operation, every check, every phase (but the
boundary values of body fields, left to the longer run) — against a server of this module's own
(its many requests and the runs and strategies they create stay away from the shared server),
then one test per finding it led to, each against the same real server.
"""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest, serving
from tests.server.signed import SignedClient

ROOT = Path(__file__).resolve().parents[2]
# Every operation but the WebSocket stream (not HTTP) and /openapi.json itself (schemathesis
# leaves out the document it reads); seed 004's routes signed by the script. Each field's
# boundary values in bodies (the coverage phase on bodies: ~10,000 requests) are left to the
# longer run (scripts/fuzz_api.py with no options); here ~1,400 requests in ~20 s.
EXAMPLES, SEED = 10, 14


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with no per-key request budgets, so every operation is really exercised."""
    yield from serving(
        tmp_path_factory.mktemp("fuzz"), public_rate_per_minute="0", job_weight_per_minute="0"
    )


@pytest.fixture(scope="module")
def doc(fuzzed: ServerProcess) -> dict[str, Any]:
    return httpx.get(f"{fuzzed.url}/openapi.json").json()


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    fuzzed: ServerProcess, doc: dict[str, Any]
) -> None:
    assert fuzzed.key and fuzzed.secret
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "fuzz_api.py"), "--url", fuzzed.url,
         "--key", fuzzed.key, "--secret", fuzzed.secret, "--examples", str(EXAMPLES),
         "--seed", str(SEED), "--workers", "2", "--no-body-coverage", "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.stdout, done.stderr
    summary = json.loads(done.stdout)
    assert summary["failures"] == [] and summary["errors"] == [], done.stderr
    assert summary["stop_reason"] == "completed", done.stderr
    wanted = {
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        if not path.endswith("/stream") and path != "/openapi.json"
        for method in ops
    }
    tested = {name for name, op in summary["operations"].items() if op["requests"] > 0}
    assert wanted == tested, f"never requested: {sorted(wanted - tested)}"
    assert done.returncode == 0, done.stderr
    print(f"schemathesis: {summary['requests']} requests in {took:.1f} s")


# ---- what it found, one test each ---------------------------------------------------------


async def test_a_wrong_method_is_405_with_allow_naming_every_method_of_the_path(
    fuzzed: ServerProcess,
) -> None:
    cases = {
        "/api/v2/backtests": {"GET", "HEAD", "POST"},
        "/api/v2/backtests/x/cancel": {"POST"},
        "/api/v2/strategies/x": {"GET", "HEAD", "PUT", "PATCH", "DELETE"},
        "/api/v1/backtests/x": {"GET", "HEAD"},
        "/api/v1/backtests/bulk": {"POST"},  # not GET, though …/{backtest_id} matches it
        "/api/public/v1/backtest": {"POST"},
        "/v1/backtest/jobs": {"GET", "HEAD", "POST"},
        "/healthz": {"GET", "HEAD"},
        "/": {"GET", "HEAD"},
    }
    async with fuzzed.client() as c:
        for path, methods in cases.items():
            for method in ("TRACE", "OPTIONS"):
                r = await c.request(method, path)
                assert r.status_code == 405, (method, path, r.text)
                allowed = {m.strip() for m in r.headers.get("allow", "").split(",")}
                assert allowed == methods, (method, path, r.headers.get("allow"))
                assert r.headers["content-type"] == "application/json"


async def test_boolean_query_parameters_take_only_boolean_spellings(fuzzed: ServerProcess) -> None:
    flags = {
        "/api/v2/backtests": "include_archived",
        "/api/v1/users/me/backtests": "include_archived",
        "/api/v2/strategies": "include_deleted",
        "/api/v1/strategies": "include_deleted",
    }
    async with fuzzed.client() as c:
        for path, name in flags.items():
            for value in ("true", "TRUE", "1", "yes", "false", "0", "No"):
                r = await c.get(path, params={name: value})
                assert r.status_code == 200, (path, value, r.text)
            for value in ("null", "", "-73076", "2", "maybe", "tru", "[]"):
                r = await c.get(path, params={name: value})
                assert r.status_code == 422, (path, value, r.text)
                assert r.json()["error"]["field"] == name, r.text
        for value in ("null", "", "yes please"):
            r = await c.get("/api/public/v1/backtest/x", params={"includeTrades": value})
            assert r.status_code == 400 and r.json()["error"]["field"] == "includeTrades"


def _canonical(path: str) -> str:
    """A deprecated v1 alias path as its canonical path."""
    for alias in ("/api/v1/backtesting/backtests", "/api/v1/backtesting/backtest"):
        if path.startswith(alias):
            return "/api/v1/backtests" + path[len(alias) :]
    return path


async def test_limit_is_documented_with_the_bounds_it_is_held_to(
    fuzzed: ServerProcess, doc: dict[str, Any]
) -> None:
    most = {
        "/api/v2/backtests": 200,
        "/api/v2/strategies": 200,
        "/api/v1/strategies": 200,
        "/api/v1/users/me/backtests": 200,
        "/api/v1/backtests/{backtest_id}/trades": 1000,
        "/api/v2/backtests/{run_id}/results": 1000,
        "/api/v2/backtests/{run_id}/round_trips": 1000,
        "/api/v2/backtests/{run_id}/trades": 1000,
        "/v1/backtest/jobs": 200,
    }
    documented = {
        _canonical(path): (p["schema"]["minimum"], p["schema"]["maximum"])
        for path, ops in doc["paths"].items()
        for op in ops.values()
        for p in op.get("parameters", [])
        if p["name"] == "limit"
    }
    assert documented == {path: (1, n) for path, n in most.items()}
    async with fuzzed.client() as c:
        for path in ("/api/v2/backtests", "/api/v2/strategies", "/api/v1/users/me/backtests"):
            assert (await c.get(path, params={"limit": 200})).status_code == 200
            for bad in ("0", "201", "-1", " 5", "+5", "1_0", "\u0665", ""):
                r = await c.get(path, params={"limit": bad})
                assert r.status_code == 422 and r.json()["error"]["field"] == "limit", (path, bad)
    assert fuzzed.key and fuzzed.secret
    async with SignedClient(fuzzed.url, fuzzed.key, fuzzed.secret) as s:
        assert (await s.get("/v1/backtest/jobs?limit=200")).status_code == 200
        r = await s.get("/v1/backtest/jobs?limit=0")
        assert r.status_code == 400 and r.json()["error"]["field"] == "limit"


async def test_list_filters_take_only_their_documented_values(
    fuzzed: ServerProcess, doc: dict[str, Any]
) -> None:
    states = ["cancelled", "completed", "failed", "queued", "running"]
    for path in ("/api/v2/backtests", "/api/v1/users/me/backtests"):
        (state,) = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "state"]
        assert sorted(state["schema"]["enum"]) == states
    async with fuzzed.client() as c:
        for bad in ("", "done", "QUEUED"):
            r = await c.get("/api/v2/backtests", params={"state": bad})
            assert r.status_code == 422 and r.json()["error"]["field"] == "state", bad


async def test_a_v1_alias_path_with_any_characters_is_a_404(fuzzed: ServerProcess) -> None:
    async with fuzzed.client() as c:
        for path in ("/api/v1/backtesting/backtest/%C3%A9t%C3%A9", "/api/v1/backtesting/backtests/%F0%9F%98%80/trades",
                     "/api/v1/backtesting/backtest/%C2%A0/archive"):  # fmt: skip
            r = await c.request("POST" if path.endswith("archive") else "GET", path)
            assert r.status_code == 404, (path, r.text)
            assert r.headers["deprecation"] == "true"
            assert r.headers["link"].isascii() and "%" in r.headers["link"]


async def test_a_body_value_must_have_its_documented_json_type(fuzzed: ServerProcess) -> None:
    body = backtest()
    wrong = {
        "capital": ({"capital": True}, "capital"),
        "start": ({"start": 1709251200}, "start"),
        "max_open_positions": ({"execution": {"max_open_positions": "5"}}, "execution.max_open_positions"),
        "allow_short": ({"execution": {"allow_short": 1}}, "execution.allow_short"),
    }  # fmt: skip
    async with fuzzed.client() as c:
        for change, field in wrong.values():
            r = await c.post("/api/v2/backtests", json={**body, **change})
            assert r.status_code == 422 and r.json()["error"]["field"] == field, (change, r.text)
        v1 = {"asset": "ETH", "interval": "1h", "initial_balance": "1000"}
        r = await c.post("/api/v1/backtests", json=v1)
        assert r.status_code == 422 and r.json()["error"]["field"] == "initial_balance", r.text
        made = await c.post("/api/v2/strategies", json={"strategy": SEED_STRATEGY})
        assert made.status_code == 201, made.text
        sid = made.json()["id"]
        bad = {"execution_config": {"maintenance_margin_rate": False}}
        r = await c.patch(f"/api/v2/strategies/{sid}", json=bad)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "execution_config.maintenance_margin_rate"
        r = await c.patch(f"/api/v2/strategies/{sid}")  # no body: documented as changing nothing
        assert r.status_code == 200 and r.json()["updated_at"] >= made.json()["updated_at"]


async def test_a_seed_004_body_that_is_not_json_is_a_415(fuzzed: ServerProcess) -> None:
    assert fuzzed.key and fuzzed.secret
    async with SignedClient(fuzzed.url, fuzzed.key, fuzzed.secret) as s:
        r = await s.post("/v1/backtest/jobs", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_every_operation_documents_the_errors_it_can_answer(doc: dict[str, Any]) -> None:
    shapes = {"/api/v1/": "V1Error", "/api/public/v1/": "Seed003Error", "/v1/": "JobError"}
    for path, ops in doc["paths"].items():
        if path.endswith("/stream") or path == "/healthz":
            continue
        error = next((s for prefix, s in shapes.items() if path.startswith(prefix)), "Error")
        invalid = "400" if error in ("Seed003Error", "JobError") else "422"
        for method, op in ops.items():
            where, answers = f"{method.upper()} {path}", op["responses"]
            expected = set()
            if op.get("security", doc["security"]):
                expected |= {"401", "503"}
            if "requestBody" in op:
                expected |= {"400", "413", "415", invalid}
            if any(p["in"] == "query" for p in op.get("parameters", [])):
                expected.add(invalid)
            assert expected <= set(answers), f"{where}: {sorted(expected - set(answers))}"
            for status, answer in answers.items():
                if status >= "400":
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith(f"/{error}"), (where, status, ref)
            if "503" in answers:
                assert "Retry-After" in answers["503"]["headers"], where
