"""Restarts: queued and running runs survive, streams close 1001, keys work offline, 1011, logs."""

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.server.harness import ServerProcess, backtest, eventually, minute_run, serving
from tests.server.streaming import read_stream


def long_run() -> dict[str, Any]:
    """Two years of paced 1-minute bars: long enough to be interrupted."""
    return minute_run(end="2025-12-31T00:00:00Z")


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own with one worker, so a second run waits in the queue."""
    yield from serving(
        tmp_path_factory.mktemp("restart"), workers="1", chunk_bars="5000", pace_seconds="0.03"
    )


async def state_of(srv: ServerProcess, run_id: str) -> dict[str, Any]:
    async with srv.client() as c:
        return (await c.get(f"/api/v2/backtests/{run_id}")).json()


async def test_runs_survive_a_restart(solo: ServerProcess) -> None:
    async with solo.client() as c:
        running = (await c.post("/api/v2/backtests", json=long_run())).json()["run_id"]
        queued = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]

    async def progressed() -> bool:
        return (await state_of(solo, running))["progress"] >= 0.2

    await eventually(progressed, timeout=60)
    before = await state_of(solo, running)
    assert (await state_of(solo, queued))["state"] == "queued"
    url = f"{solo.ws_url}/api/v2/backtests/{queued}/stream"
    async with connect(url, additional_headers={"X-API-Key": solo.key}) as ws:
        partial = [orjson.loads(await ws.recv())]  # the backlog has started: it is subscribed
        # uvicorn re-raises the signal it handled once it has shut down cleanly.
        assert await asyncio.to_thread(solo.stop, signal.SIGTERM) in (0, -signal.SIGTERM)
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                partial.append(orjson.loads(raw))
    assert ws.close_code == 1001, "a shutdown closes open streams with 1001"
    assert not (solo.data_dir / "pg" / "postmaster.pid").exists(), "PostgreSQL stopped cleanly"

    await asyncio.to_thread(solo.start)
    async with solo.client() as c:
        for run_id in (running, queued):

            async def done(rid: str = run_id) -> bool:
                return (await c.get(f"/api/v2/backtests/{rid}")).json()["state"] == "completed"

            await eventually(done, timeout=120)
    events, code, _ = await read_stream(
        f"{solo.ws_url}/api/v2/backtests/{running}/stream", {"X-API-Key": solo.key}
    )
    assert code == 1000
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    restarts = [e for e in events if e["type"] == "log" and "restarting" in e["data"]["message"]]
    # Issue 14, defect 8: a graceful stop used one of the three attempts ("attempt 2 of 3").
    assert len(restarts) == 1 and "not counted" in restarts[0]["data"]["message"], restarts
    progress = [e["data"]["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress), "progress never goes backwards across a restart"
    assert max(p for p in progress if p < 1) >= before["progress"]
    states = [e["data"]["state"] for e in events if e["type"] == "state"]
    assert states == ["queued", "running", "completed"]
    rest, code, _ = await read_stream(
        f"{solo.ws_url}/api/v2/backtests/{queued}/stream?last_event_id={partial[-1]['id']}",
        {"X-API-Key": solo.key},
    )
    assert code == 1000
    assert [e["id"] for e in partial + rest] == list(range(1, len(partial) + len(rest) + 1))


async def test_keys_made_while_stopped_work_after_start(solo: ServerProcess) -> None:
    await asyncio.to_thread(solo.stop)
    key = await asyncio.to_thread(solo.create_key, "offline")
    assert key.startswith("bs_") and "\n" not in key
    await asyncio.to_thread(solo.start)
    async with solo.client(key) as c:
        assert (await c.get("/api/v2/backtests")).status_code == 200


async def test_server_error_closes_1011(solo: ServerProcess) -> None:
    async with solo.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]
    dsn = f"postgresql://postgres@/postgres?host={solo.data_dir.resolve() / 'pg'}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ALTER TABLE events RENAME TO events_hidden")
        events, code, _ = await read_stream(
            f"{solo.ws_url}/api/v2/backtests/{run_id}/stream", {"X-API-Key": solo.key}
        )
        assert (events, code) == ([], 1011)
    finally:
        await conn.execute("ALTER TABLE events_hidden RENAME TO events")
        await conn.close()


async def test_query_key_never_reaches_the_log(solo: ServerProcess) -> None:
    async with solo.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]
    _, code, _ = await read_stream(
        f"{solo.ws_url}/api/v2/backtests/{run_id}/stream?api_key={solo.key}&last_event_id=0"
    )
    assert code == 1000
    log = solo.log()
    assert "api_key=***" in log
    assert solo.key not in log.replace(f"API key (shown once): {solo.key}", "")


async def test_encoded_query_keys_never_reach_the_log(solo: ServerProcess) -> None:
    """Issue 14, defect 6: `?%61pi_key=%62%73%5F…` authenticated and was logged in clear."""
    from urllib.parse import quote

    async with solo.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]
    assert solo.key
    every = "".join(f"%{b:02X}" for b in solo.key.encode())  # each character encoded
    for name, value in (("%61pi_key", every), ("API%5FKEY", quote(solo.key, safe="")),
                        ("api_key", every), ("%61%70%69%5f%6b%65%79", solo.key)):  # fmt: skip
        _, code, _ = await read_stream(
            f"{solo.ws_url}/api/v2/backtests/{run_id}/stream?{name}={value}"
        )
        assert code in (1000, 1008)
    log = solo.log().replace(f"API key (shown once): {solo.key}", "")
    assert solo.key not in log and every not in log and quote(solo.key, safe="") not in log
    assert every[:30] not in log


@pytest.mark.parametrize(
    "value", ["+5", " 5", "1_000", "\u0665", "99999999999999999999", "-1", "5.0"]
)
async def test_last_event_id_is_plain_ascii_digits_within_int64(
    solo: ServerProcess, value: str
) -> None:
    """Issue 14, defect 7: `+5`, ` 5`, `1_000` and non-ASCII digits were taken as ids, and one
    beyond int64 closed with 1011."""
    from urllib.parse import quote

    async with solo.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]
    url = f"{solo.ws_url}/api/v2/backtests/{run_id}/stream?last_event_id={quote(value)}"
    events, code, reason = await read_stream(url, {"X-API-Key": solo.key})
    assert (events, code) == ([], 1008) and "last_event_id" in reason


async def test_a_nul_in_the_query_key_closes_1008(solo: ServerProcess) -> None:
    async with solo.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]
    _, code, _ = await read_stream(
        f"{solo.ws_url}/api/v2/backtests/{run_id}/stream?api_key=bs_%00x"
    )
    assert code == 1008


async def test_killed_worker_restarts_the_run(solo: ServerProcess) -> None:
    import psutil

    async with solo.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=long_run())).json()["run_id"]

        async def running() -> bool:
            return (await c.get(f"/api/v2/backtests/{run_id}")).json()["progress"] >= 0.1

        await eventually(running, timeout=60)
        assert solo.proc is not None
        workers = [
            p
            for p in psutil.Process(solo.proc.pid).children()
            if "spawn_main" in " ".join(p.cmdline())
        ]
        assert len(workers) == 1
        workers[0].kill()

        async def done() -> bool:
            return (await c.get(f"/api/v2/backtests/{run_id}")).json()["state"] == "completed"

        await eventually(done, timeout=120)
    events, code, _ = await read_stream(
        f"{solo.ws_url}/api/v2/backtests/{run_id}/stream", {"X-API-Key": solo.key}
    )
    assert code == 1000
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert sum("attempt 2 of 3" in e["data"].get("message", "") for e in events) == 1
    progress = [e["data"]["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress)


def _workers(srv: ServerProcess) -> list[Any]:
    import psutil

    assert srv.proc is not None
    found = []
    for p in psutil.Process(srv.proc.pid).children():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue  # gone meanwhile
    return found


async def test_an_idle_worker_that_dies_is_replaced(solo: ServerProcess) -> None:
    """Issue 14, defect 1: kill -9 of an idle worker left /healthz 503 for good and the next
    run failed with internal_error."""
    async with solo.client() as c:

        async def healthy() -> bool:
            return (await c.get("/healthz")).status_code == 200

        await eventually(healthy, timeout=60)
        (dead,) = _workers(solo)
        dead.kill()

        async def unhealthy() -> bool:
            return (await c.get("/healthz")).json()["workers"] is False

        await eventually(unhealthy, timeout=30)  # reported honestly while it is replaced

        async def replaced() -> bool:
            fresh = [p.pid for p in _workers(solo)]
            return fresh not in ([], [dead.pid]) and await healthy()

        await eventually(replaced, timeout=120)
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]

        async def ended() -> dict[str, Any] | None:
            body = (await c.get(f"/api/v2/backtests/{run_id}")).json()
            return body if body["state"] in ("completed", "failed") else None

        assert (await eventually(ended, timeout=120))["state"] == "completed"


async def test_ctrl_c_to_the_process_group_stops_cleanly(solo: ServerProcess) -> None:
    assert await asyncio.to_thread(solo.stop, signal.SIGINT, group=True) == 130
    shutdown = solo.log().split("Shutting down", 1)[1]
    assert "barstream: stopped" in shutdown
    assert "Traceback" not in shutdown
    assert not (solo.data_dir / "pg" / "postmaster.pid").exists()
    await asyncio.to_thread(solo.start)


async def test_one_symbol_under_several_aliases_is_refused(solo: ServerProcess) -> None:
    """Issue 14, defect 7: ETH, eth-usd, ETHUSD and ETH-USD ran as four symbols."""
    async with solo.client() as c:
        r = await c.post("/api/v2/backtests", json=backtest(symbols=["ETH", "eth-usd", "ETHUSD"]))
        assert r.status_code == 422, r.text
        assert (
            r.json()["error"]["field"] == "symbols.1" and "ETH-USD" in r.json()["error"]["message"]
        )


async def test_a_body_must_be_json(solo: ServerProcess) -> None:
    """Issue 14, defect 7: a form-encoded or text body was parsed as JSON."""
    body = orjson.dumps(backtest())
    async with solo.client() as c:
        for ctype in ("application/x-www-form-urlencoded", "text/plain"):
            r = await c.post("/api/v2/backtests", content=body, headers={"Content-Type": ctype})
            assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
        ok = await c.post("/api/v2/backtests", content=body,
                          headers={"Content-Type": "application/json; charset=utf-8"})  # fmt: skip
        assert ok.status_code == 201


def keys_cli(srv: ServerProcess, *args: str) -> str:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "keys", *args, "--data-dir", str(srv.data_dir)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return out.stdout


async def test_a_revoked_key_stops_at_once_rest_and_open_streams(solo: ServerProcess) -> None:
    """Issue 14, defect 5: no way to revoke a key, and a revoked key's streams kept going."""
    key = solo.create_key("revoked")
    async with solo.client(key) as c:
        run_id = (await c.post("/api/v2/backtests", json=long_run())).json()["run_id"]
        url = f"{solo.ws_url}/api/v2/backtests/{run_id}/stream"
        async with connect(url, additional_headers={"X-API-Key": key}) as ws:
            await ws.recv()  # the stream is live
            listed = keys_cli(solo, "list", "--user", "revoked")
            prefix = key[3:15]
            assert prefix in listed and key not in listed and "active" in listed
            keys_cli(solo, "revoke", f"--prefix={prefix}")  # a prefix may start with -
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert "revoked" in closed.value.rcvd.reason
        assert (await c.get(f"/api/v2/backtests/{run_id}")).status_code == 401
        assert "revoked" in keys_cli(solo, "list", "--user", "revoked")
    async with solo.client() as c:
        await c.post(f"/api/v2/backtests/{run_id}/cancel")


async def test_rotation_keeps_the_old_key_for_its_grace(solo: ServerProcess) -> None:
    old = solo.create_key("rotating")
    new = keys_cli(solo, "rotate", "--key", old, "--grace", "3").strip()
    assert new.startswith("bs_") and new != old
    async with solo.client(old) as a, solo.client(new) as b:
        assert (await a.get("/api/v2/backtests")).status_code == 200  # still in its grace
        assert (await b.get("/api/v2/backtests")).status_code == 200

        async def expired() -> bool:
            return (await a.get("/api/v2/backtests")).status_code == 401

        await eventually(expired, timeout=30)
        assert (await b.get("/api/v2/backtests")).status_code == 200
