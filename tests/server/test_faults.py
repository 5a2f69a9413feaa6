"""The fault suite (issue 14): a batch of runs with subscribers attached, then one fault.

One server (two workers, paced minute runs) takes every fault in turn: a busy and an idle
worker killed together, PostgreSQL killed (the server restarts it), PostgreSQL killed and kept
down for a while, kill -9 of the server's whole process group, SIGTERM to the whole process
group. Each fault hits a fresh batch of paced minute runs and short runs while subscribers read
their streams live, reconnecting with `last_event_id` as a real client does. After each:

- every run ends exactly once: one terminal state event, the last one, and the table agrees;
- every stream read from 0 is gap-free (ids 1..N) and equals what the live subscribers saw
  (same ids, same payloads, each event once and in order);
- progress never goes backwards, in the events and in what REST showed meanwhile;
- no run is lost or duplicated, and the server logs hold no traceback.

What the PostgreSQL faults found is kept here too: a FATAL on an idle connection, reproduced with
a fake backend, and an open stream cut without a close frame (1006) because a database
connection error was taken for the client going away (now 1013).
"""

import asyncio
import contextlib
import os
import signal
import struct
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.server.harness import (
    ServerProcess,
    Subscriber,
    backtest,
    embedded_dsn,
    eventually,
    minute_run,
    serving,
)
from tests.server.streaming import read_stream

ORDER = {"queued": 0, "running": 1, "completed": 2, "failed": 2, "cancelled": 2}
RESTART = "restarting from the start"
NEVER = {1008, 1011}  # closes no fault may cause: a refused stream, a server error
_every_run: list[str] = []  # every run this module created


def paced(months: int) -> dict[str, Any]:
    """A paced 1-minute run over `months` months: a couple of seconds on this server."""
    return minute_run(end=f"2024-{1 + months:02d}-01T00:00:00Z")


def short() -> dict[str, Any]:
    """An hourly run: a few chunks, well under a second."""
    return backtest()


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server every fault hits. Its lease outlasts the suite: a run that resumes only once
    its lease lapses fails it (every fault must give its runs back at once)."""
    yield from serving(
        tmp_path_factory.mktemp("faults"),
        workers="2",
        chunk_bars="2000",
        pace_seconds="0.02",
        lease_seconds="300",
    )


@pytest.fixture
def srv(fault_server: ServerProcess) -> ServerProcess:
    """The server, running: each fault starts on one, whatever the previous fault left."""
    assert fault_server.proc is not None
    if fault_server.proc.poll() is not None:
        fault_server.start()
    return fault_server


# ---------------------------------------------------------------------------------------------
# What a client sees: subscribers that reconnect, a poller of the run list.


class Batch:
    """Runs submitted together, their subscribers, and a poller of their REST status."""

    def __init__(self, srv: ServerProcess) -> None:
        self.srv = srv
        self.ids: list[str] = []
        self.subs: list[Subscriber] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.seen_rest: dict[str, list[tuple[str, float]]] = {}
        self.logs = {p: p.stat().st_size for p in srv.data_dir.glob("server-*.log")}  # so far
        self._stop = asyncio.Event()
        self._poller = asyncio.create_task(self._poll())

    async def submit(self, *bodies: dict[str, Any]) -> list[str]:
        made = []
        async with self.srv.client() as c:
            for body in bodies:
                r = await c.post("/api/v2/backtests", json=body)
                assert r.status_code == 201, r.text
                made.append(r.json()["run_id"])
        self.ids += made
        _every_run.extend(made)
        for run_id in made:
            self.seen_rest[run_id] = []
            self.subscribe(run_id)
        return made

    def subscribe(self, run_id: str) -> None:
        sub = Subscriber(self.srv, run_id)
        self.subs.append(sub)
        self.tasks.append(asyncio.create_task(sub.follow()))

    async def _poll(self) -> None:
        async with httpx.AsyncClient(timeout=5) as c:
            while not self._stop.is_set():
                try:
                    r = await c.get(
                        f"{self.srv.url}/api/v2/backtests", params={"limit": 200},
                        headers={"X-API-Key": self.srv.key or ""},
                    )  # fmt: skip
                except httpx.HTTPError:
                    r = None
                if r is not None and r.status_code == 200:
                    for run in r.json():
                        if run["run_id"] in self.seen_rest:
                            self.seen_rest[run["run_id"]].append((run["state"], run["progress"]))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.05)

    async def status(self) -> dict[str, dict[str, Any]]:
        """The batch's runs as REST shows them now."""
        async with self.srv.client() as c:
            r = await c.get("/api/v2/backtests", params={"limit": 200})
            assert r.status_code == 200, r.text
            return {run["run_id"]: run for run in r.json() if run["run_id"] in self.seen_rest}

    async def mid(self, running: int, least: float = 0.15, most: float = 0.8) -> set[str]:
        """Wait until `running` runs are running between `least` and `most` progress (a fault
        now interrupts each of them mid-run); return their ids."""

        async def found() -> set[str]:
            runs = await self.status()
            ids = {
                i for i, r in runs.items()
                if r["state"] == "running" and least <= r["progress"] <= most
            }  # fmt: skip
            return ids if len(ids) >= running else set()

        return await eventually(found, timeout=60, every=0.02)

    async def settle(self, timeout: float = 60.0) -> None:
        """Wait until every subscriber has seen its run end; stop polling."""
        try:
            await asyncio.wait_for(asyncio.gather(*self.tasks), timeout)
        except TimeoutError:
            stuck = {s.run_id: (len(s.seen), s.closes[-5:]) for s in self.subs if not s.ended()}
            raise AssertionError(f"runs not ended within {timeout} s: {stuck}") from None
        finally:
            self._stop.set()
            await self._poller
            for task in self.tasks:
                task.cancel()


# ---------------------------------------------------------------------------------------------
# The checks made after every fault.


def tracebacks(batch: Batch) -> list[str]:
    """Lines that report a traceback or an error, logged by any start of the server since the
    batch began."""
    found = []
    for path in sorted(batch.srv.data_dir.glob("server-*.log")):
        with path.open("rb") as f:
            f.seek(batch.logs.get(path, 0))
            for line in f.read().decode(errors="replace").splitlines():
                if "Traceback" in line or " ERROR " in line or " CRITICAL " in line:
                    found.append(f"{path.name}: {line}")
    return found


async def check(batch: Batch, interrupted: set[str], *, bad_closes: set[int | str]) -> None:
    """Everything the module docstring promises, for every run of `batch`."""
    await batch.settle()
    srv = batch.srv
    await eventually(lambda: healthy(srv), timeout=60)  # the pool is whole, the database up
    conn = await asyncpg.connect(embedded_dsn(srv))
    try:
        for run_id in batch.ids:
            events, code, _ = await read_stream(
                f"{srv.ws_url}/api/v2/backtests/{run_id}/stream", {"X-API-Key": srv.key}
            )
            assert code == 1000, (run_id, code)
            n = len(events)
            assert [e["id"] for e in events] == list(range(1, n + 1)), run_id
            # Ends exactly once: one terminal state event, the last event of all.
            states = [e["data"]["state"] for e in events if e["type"] == "state"]
            assert states == ["queued", "running", "completed"], (run_id, states)
            assert events[-1]["type"] == "state", run_id
            row = await conn.fetchrow(
                "SELECT state, progress, last_event_id, lease_owner,"
                " (SELECT count(*) FROM events WHERE run_id = runs.id) AS stored,"
                " (SELECT count(*) FROM results WHERE run_id = runs.id) AS results"
                " FROM runs WHERE id = $1",
                uuid.UUID(run_id),
            )
            assert dict(row) == {"state": "completed", "progress": 1.0, "last_event_id": n,
                                 "lease_owner": None, "stored": n, "results": 1}, run_id  # fmt: skip
            # What the subscribers saw live is the stream: each event once, in order, the same.
            subs = [s for s in batch.subs if s.run_id == run_id]
            for sub in subs:
                assert sub.seen == events, (run_id, [e["id"] for e in sub.seen], n)
                assert not bad_closes & set(sub.closes), (run_id, sub.closes)
            # Progress never goes backwards, in the events or as REST showed it.
            progress = [e["data"]["progress"] for e in events if e["type"] == "progress"]
            assert progress == sorted(progress) and progress[-1] == 1.0, (run_id, progress)
            assert progress.count(1.0) == 1, run_id
            polled = batch.seen_rest[run_id]
            assert [p for _, p in polled] == sorted(p for _, p in polled), (run_id, polled)
            ranks = [ORDER[s] for s, _ in polled]
            assert ranks == sorted(ranks), (run_id, polled)
            # A run the fault interrupted restarted once, noted by a log event; no other did.
            restarts = [
                e["data"]["message"] for e in events
                if e["type"] == "log" and RESTART in e["data"]["message"]
            ]  # fmt: skip
            if run_id in interrupted:
                assert len(restarts) == 1, (run_id, restarts)
            else:
                assert len(restarts) <= 1, (run_id, restarts)
        # No run lost or duplicated: the server holds exactly the runs made, each once.
        ids = [r["id"] for r in await conn.fetch("SELECT id::text FROM runs")]
        assert len(ids) == len(set(ids)) and set(ids) == set(_every_run)
    finally:
        await conn.close()
    assert not tracebacks(batch), "\n".join(tracebacks(batch))


# ---------------------------------------------------------------------------------------------
# The processes a fault hits.


def workers(srv: ServerProcess) -> list[psutil.Process]:
    """The server's live worker processes."""
    assert srv.proc is not None
    found = []
    for p in psutil.Process(srv.proc.pid).children():
        with contextlib.suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline()):
                found.append(p)
    return found


def postgres(srv: ServerProcess) -> list[psutil.Process]:
    """The embedded PostgreSQL: its postmaster first, then the postmaster's children."""
    pgdata = str((srv.data_dir / "pg").resolve())
    masters = [
        p for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and pgdata in (p.info["cmdline"] or [])
    ]  # fmt: skip
    assert len(masters) == 1, masters
    return [masters[0], *masters[0].children(recursive=True)]


async def kill_postgres(srv: ServerProcess) -> None:
    """kill -9 the postmaster and every backend at once, as a crash would."""
    procs = postgres(srv)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    await asyncio.to_thread(psutil.wait_procs, procs, 10)  # the subscribers read on meanwhile


async def healthy(srv: ServerProcess) -> bool:
    async with httpx.AsyncClient(timeout=5) as c:
        try:
            return (await c.get(f"{srv.url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False


# ---------------------------------------------------------------------------------------------
# The faults.


async def test_a_busy_and_an_idle_worker_killed(srv: ServerProcess) -> None:
    batch = Batch(srv)
    (long,) = await batch.submit(paced(4))
    batch.subscribe(long)  # a second subscriber on it
    await batch.mid(running=1)  # it runs on one worker; the other is idle
    dead = workers(srv)
    assert len(dead) == 2
    for p in dead:
        p.kill()
    # Sent while both are being replaced: never handed to a dead worker, they run on the new ones.
    await batch.submit(paced(1), short(), short(), short())

    async def replaced() -> bool:
        now = {p.pid for p in workers(srv)}
        return len(now) == 2 and not now & {p.pid for p in dead} and await healthy(srv)

    await eventually(replaced, timeout=60)
    await check(batch, {long}, bad_closes=NEVER | {1006, 1013, 1001})
    assert sum("attempt 2 of 3" in e["data"].get("message", "") for e in batch.subs[0].seen) == 1


async def test_postgres_killed_and_restarted_by_the_server(srv: ServerProcess) -> None:
    batch = Batch(srv)
    await batch.submit(paced(3), short(), paced(3), short(), paced(2), short())
    interrupted = await batch.mid(running=2)
    await kill_postgres(srv)
    await check(batch, interrupted, bad_closes=NEVER | {1001, 1006})
    assert any(1013 in s.closes for s in batch.subs), "open streams were told to try again"


async def test_postgres_killed_and_kept_down_for_a_while(srv: ServerProcess) -> None:
    """The server cannot restart it (its data dir lacks PG_VERSION) until the test puts it back."""
    batch = Batch(srv)
    await batch.submit(paced(3), short(), paced(3), short(), paced(2), short())
    interrupted = await batch.mid(running=2)
    version = srv.data_dir / "pg" / "PG_VERSION"
    hidden = version.with_name("PG_VERSION.hidden")
    failed = "could not restart the embedded PostgreSQL"
    before = srv.log().count(failed)
    version.rename(hidden)
    try:
        await kill_postgres(srv)

        async def kept_down() -> bool:  # two restarts failed: it has been down a while
            return srv.log().count(failed) >= before + 2

        await eventually(kept_down, timeout=30)
        async with srv.client() as c:
            r = await c.get("/api/v2/backtests")
            assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
            assert (await c.get("/healthz")).status_code == 503
        events, code, _ = await read_stream(
            f"{srv.ws_url}/api/v2/backtests/{batch.ids[0]}/stream", {"X-API-Key": srv.key}
        )
        assert (events, code) == ([], 1013)
    finally:
        hidden.rename(version)
    await eventually(lambda: healthy(srv), timeout=60)
    await check(batch, interrupted, bad_closes=NEVER | {1001, 1006})
    assert any(1013 in s.closes for s in batch.subs)


class CutWithoutCloseFrame(AssertionError):
    """An open stream ended without the close code an outage should give it."""


async def test_open_streams_close_1013_when_postgres_dies(srv: ServerProcess) -> None:
    """Issue 14, defect 3 (open streams): open streams ended without a close frame (1006) in an
    outage, the database's refused reconnect taken for the client going away; now 1013."""
    batch = Batch(srv)
    (run_id,) = await batch.submit(paced(3))
    await batch.mid(running=1)
    url = f"{srv.ws_url}/api/v2/backtests/{run_id}/stream"
    async with connect(url, additional_headers={"X-API-Key": srv.key}) as ws:
        await ws.recv()  # open and live
        await kill_postgres(srv)
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 30)
    await check(batch, {run_id}, bad_closes=NEVER | {1001})
    if ws.close_code != 1013:
        raise CutWithoutCloseFrame(ws.close_code)


async def test_kill_9_of_the_server_process_group(srv: ServerProcess) -> None:
    batch = Batch(srv)
    await batch.submit(paced(3), short(), paced(3), short(), paced(2), short())
    interrupted = await batch.mid(running=2)
    for run_id in interrupted:
        batch.subscribe(run_id)  # joins mid-run, reads the backlog, then lives through the kill
    assert srv.proc is not None
    os.killpg(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(30)
    await asyncio.to_thread(srv.start)  # the embedded PostgreSQL died with it or survived
    await check(batch, interrupted, bad_closes=NEVER)
    for sub in batch.subs:
        if sub.run_id in interrupted:
            assert sum("attempt 2 of 3" in e["data"].get("message", "") for e in sub.seen) == 1


async def test_sigterm_to_the_process_group(srv: ServerProcess) -> None:
    batch = Batch(srv)
    await batch.submit(paced(3), short(), paced(3), short(), paced(2), short())
    interrupted = await batch.mid(running=2)
    assert srv.proc is not None
    group = srv.proc.pid
    pids = {p.pid for p in workers(srv)}
    rc = await asyncio.to_thread(srv.stop, signal.SIGTERM, group=True)
    assert rc in (0, -signal.SIGTERM), rc
    shutdown = srv.log().split("Shutting down", 1)[1]
    assert "barstream: stopped" in shutdown
    assert not (srv.data_dir / "pg" / "postmaster.pid").exists(), "PostgreSQL stopped cleanly"

    async def group_gone() -> bool:  # no worker, replacement or otherwise, outlives the server
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        return False

    await eventually(group_gone, timeout=30)
    assert not any(psutil.pid_exists(p) for p in pids)
    await asyncio.to_thread(srv.start)
    await check(batch, interrupted, bad_closes=NEVER | {1006})
    assert any(1001 in s.closes for s in batch.subs), "open streams were closed 1001"
    for sub in batch.subs:
        if sub.run_id in interrupted:
            restarts = [e for e in sub.seen if RESTART in e["data"].get("message", "")]
            assert "not counted" in restarts[0]["data"]["message"], restarts


async def test_a_fatal_on_an_idle_connection_is_an_outage() -> None:
    """Found by the PostgreSQL faults about one run in three: a backend that sees its postmaster
    die sends FATAL to its idle connection, then closes it. A pool that hands the connection out
    in between gets asyncpg's InternalClientError from it, which the server took for a bug of its
    own: a traceback, and a run left running under its lease instead of resuming when the
    database was back. Here a fake backend sends that FATAL right after the connection is ready
    and holds the socket open."""
    from server.outage import DB_ERRORS

    def message(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("!i", len(body) + 4) + body

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (size,) = struct.unpack("!i", await reader.readexactly(4))
        await reader.readexactly(size - 4)  # the startup message: trust it
        ready = message(b"R", struct.pack("!i", 0)) + message(b"S", b"server_version\x0016.0\x00")
        ready += message(b"K", struct.pack("!ii", 1, 2)) + message(b"Z", b"I")
        fatal = b"SFATAL\x00VFATAL\x00C57P01\x00Mterminating connection due to unexpected"
        writer.write(ready + message(b"E", fatal + b" postmaster exit\x00\x00"))
        with contextlib.suppress(ConnectionError):
            await reader.read()  # held open until the client lets go
        writer.close()

    fake = await asyncio.start_server(backend, "127.0.0.1", 0)
    port = fake.sockets[0].getsockname()[1]
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="u", database="d", ssl=False)
    try:
        assert not conn.is_closed()  # the window: the FATAL is in, the socket still open
        with pytest.raises(DB_ERRORS):
            await asyncio.wait_for(conn.execute("SELECT 1"), 10)
    finally:
        conn.terminate()
        fake.close()
