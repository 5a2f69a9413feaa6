"""The embedded PostgreSQL after a crash: a stale postmaster.pid never blocks a start, and the
process its pid now names is never signalled (issue 14, defect 2)."""

import asyncio
import subprocess
import time
from pathlib import Path

from tests.server.harness import ServerProcess


def fake_pid_file(pgdata: Path, pid: int) -> None:
    """A postmaster.pid as PostgreSQL writes it, naming `pid`."""
    lines = [
        str(pid),
        str(pgdata),
        str(int(time.time())),
        "5432",
        "/tmp",
        "",
        "  1234  5678",
        "ready",
    ]
    (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")


def test_a_stale_pid_file_naming_another_process(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={"BARSTREAM_WORKERS": "1"})
    srv.start()
    assert srv.stop() == 130
    pgdata = srv.data_dir / "pg"
    assert not (pgdata / "postmaster.pid").exists()  # a clean stop removes it
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        fake_pid_file(pgdata, bystander.pid)  # as after a machine crash: the pid was reused
        srv.start()  # starts (it used to fail with rc 3)
        assert "stale postmaster.pid" in srv.log()
        assert srv.stop() == 130
        assert bystander.poll() is None  # never signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_a_live_postmaster_is_never_doubled(tmp_path: Path) -> None:
    """Two servers on one data dir share its one PostgreSQL; neither starts a second one."""
    import psutil

    first = ServerProcess(tmp_path / "data", env={"BARSTREAM_WORKERS": "1"})
    first.start()
    second = ServerProcess(tmp_path / "data", env={"BARSTREAM_WORKERS": "1"})
    try:
        second.start()
        pgdata = str((tmp_path / "data" / "pg").resolve())
        postmasters = [
            p for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "postgres" and "-D" in (p.info["cmdline"] or [])
            and pgdata in (p.info["cmdline"] or [])
        ]  # fmt: skip
        assert len(postmasters) == 1
    finally:
        second.stop()
        first.stop()


async def test_a_database_outage_is_503_then_heals(tmp_path: Path) -> None:
    """Issue 14, defect 3: with PostgreSQL down, REST answered 500 and dropped the connection,
    streams were cut without a close frame, and the server logged a traceback per request; the
    embedded PostgreSQL was not restarted."""
    import psutil
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from tests.server.harness import backtest, eventually

    srv = ServerProcess(tmp_path / "data", env={"BARSTREAM_WORKERS": "1"})
    srv.start()
    try:
        pgdata = str((srv.data_dir / "pg").resolve())
        (postmaster,) = [
            p for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "postgres" and pgdata in (p.info["cmdline"] or [])
        ]  # fmt: skip
        async with srv.client() as c:
            assert (await c.get("/api/v2/backtests")).status_code == 200
            postmaster.kill()
            postmaster.wait(10)
            r = await c.get("/api/v2/backtests")
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "database_unavailable"
            assert int(r.headers["retry-after"]) >= 1
            health = await c.get("/healthz")
            assert health.status_code == 503 and health.json()["database"] is False
            try:
                async with connect(
                    f"{srv.ws_url}/api/v2/backtests/{'0' * 32}/stream?api_key={srv.key}"
                ) as ws:
                    await ws.recv()
            except ConnectionClosed as exc:
                assert exc.rcvd is not None and exc.rcvd.code in (1011, 1013), exc

            async def healed() -> bool:
                return (await c.get("/api/v2/backtests")).status_code == 200

            await eventually(healed, timeout=120, every=0.5)  # the server restarted PostgreSQL
            made = (await c.post("/api/v2/backtests", json=backtest())).json()

            async def done() -> bool:
                return (await c.get(f"/api/v2/backtests/{made['run_id']}")).json()[
                    "state"
                ] == "completed"

            await eventually(done, timeout=120)
        await eventually(lambda: asyncio.sleep(0, "database available again" in srv.log()))
        log = srv.log()
        assert "Traceback" not in log, log[-3000:]
        assert log.count("database unavailable") == 1 and log.count("database available again") == 1
    finally:
        srv.stop()
