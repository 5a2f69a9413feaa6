"""Several nodes on one machine: two `barstream serve` processes on loopback sharing the first
one's embedded PostgreSQL (DATABASE_URL = its socket) and its bar directory.

Runs spread over both nodes and a subscriber on either node sees every event of a run executing
on the other; a sweep larger than the shard size is split into shards run by both nodes and
ranks exactly as the unsharded run of the same sweep on a single server; a cancel cancels its
shards and a failed shard fails it; a node stopped (SIGTERM) mid-sweep gives its shards back at
once; a node killed (SIGKILL) mid-run and mid-sweep has its run and its shard claimed by the
survivor once their leases lapse and re-run from the start, and its sweep resumed, every stream
gap-free and progress never backwards."""

import asyncio
import contextlib
import copy
import os
import re
import shutil
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import psutil
import pytest

from engine.data.store import BarStore
from tests.server.api_helpers import completed_results, wait_state
from tests.server.harness import (
    SEED_STRATEGY,
    ServerProcess,
    Subscriber,
    backtest,
    embedded_dsn,
    eventually,
    minute_run,
    node_of,
    serving,
)
from tests.server.streaming import read_stream

RESTART = "restarting from the start"
SHARD = 3  # variants per shard on these nodes
# The lease is short so that a killed node's runs are taken over within seconds.
NODE = {"workers": "1", "chunk_bars": "2000", "pace_seconds": "0.02", "lease_seconds": "4",
        "sweep_shard_size": str(SHARD)}  # fmt: skip
GRID = {
    "entry[0].params.window_fast": [8, 12],
    "entry[0].params.window_slow": [26, 40],
    "entry[1].params.window": [20, 50, 100],
}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Node A (one worker, its embedded PostgreSQL, its bar directory) and node B (two
    workers: a run and a shard at once) sharing both."""
    base = tmp_path_factory.mktemp("nodes")
    for a in serving(base / "a", **NODE):
        b = node_of(a, base / "b", **{**NODE, "workers": "2"})
        b.start()
        try:
            yield [a, b]
        finally:
            b.stop()


@pytest.fixture
def live(nodes: list[ServerProcess]) -> list[ServerProcess]:
    """Both nodes, running: a test starts again a node an earlier test killed."""
    for node in nodes:
        assert node.proc is not None
        if node.proc.poll() is not None:
            node.start()
    return nodes


def paced(months: int) -> dict[str, Any]:
    """A paced 1-minute run over `months` months: a second or two on these nodes."""
    return minute_run(end=f"2024-{1 + months:02d}-01T00:00:00Z")


def sweep_body(months: int = 2) -> dict[str, Any]:
    """A 12-variant sweep on 1-minute bars: four shards on these nodes, one run elsewhere."""
    strategy = copy.deepcopy(SEED_STRATEGY)
    for sig in strategy["entry"]:
        sig["timeframe"] = "1m"
    return backtest(
        resolution="1m", start="2024-01-01T00:00:00Z", end=f"2024-{1 + months:02d}-01T00:00:00Z",
        strategy=strategy, sweep={"grid": GRID, "rank_by": "sharpe_ratio"},
    )  # fmt: skip


async def submit(srv: ServerProcess, *bodies: dict[str, Any]) -> list[str]:
    async with srv.client() as c:
        made = []
        for body in bodies:
            r = await c.post("/api/v2/backtests", json=body)
            assert r.status_code == 201, r.text
            made.append(r.json()["run_id"])
        return made


async def stored(srv: ServerProcess, run_id: str) -> list[dict[str, Any]]:
    """A run's whole stream, read from `srv` after the run ended."""
    events, code, _ = await read_stream(
        f"{srv.ws_url}/api/v2/backtests/{run_id}/stream", {"X-API-Key": srv.key or ""}
    )
    assert code == 1000, (run_id, code)
    return events


def check_stream(events: list[dict[str, Any]], run_id: str) -> None:
    """Gap-free ids, one terminal state (the last event), progress never backwards."""
    assert [e["id"] for e in events] == list(range(1, len(events) + 1)), run_id
    states = [e["data"]["state"] for e in events if e["type"] == "state"]
    assert states == ["queued", "running", "completed"], (run_id, states)
    assert events[-1]["type"] == "state", run_id
    progress = [e["data"]["progress"] for e in events if e["type"] == "progress"]
    assert progress == sorted(progress) and progress.count(1.0) == 1, (run_id, progress)


def workers_of(srv: ServerProcess) -> list[psutil.Process]:
    """The server's worker processes (its spawned children, not multiprocessing's tracker)."""
    assert srv.proc is not None
    children = psutil.Process(srv.proc.pid).children()
    return [p for p in children if any("spawn_main" in part for part in p.cmdline())]


def thaw(procs: list[psutil.Process]) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.resume()


async def follow_all(subs: list[Subscriber], timeout: float = 120) -> None:
    await asyncio.wait_for(asyncio.gather(*(s.follow() for s in subs)), timeout)


async def test_runs_spread_over_the_nodes_and_stream_from_either(
    live: list[ServerProcess],
) -> None:
    a, b = live
    ids = await submit(a, *(paced(1) for _ in range(4)))
    # Subscribers on the node that did not take the run: here, every run's stream from B.
    subs = [Subscriber(b, run_id) for run_id in ids]
    await follow_all(subs)
    conn = await asyncpg.connect(embedded_dsn(a))
    try:
        ran_on = {
            r["id"]: r["node"]
            for r in await conn.fetch(
                "SELECT id::text, node FROM runs WHERE id = any($1::uuid[])", ids
            )
        }
    finally:
        await conn.close()
    assert set(ran_on.values()) == {a.node_id, b.node_id}, ran_on
    for sub in subs:
        events = await stored(a, sub.run_id)
        check_stream(events, sub.run_id)
        assert sub.seen == events, sub.run_id  # every event, live, on the other node


async def test_a_sweep_sharded_over_two_nodes_ranks_as_on_one(
    live: list[ServerProcess], server: ServerProcess
) -> None:
    a, b = live
    (run_id,) = await submit(a, sweep_body())
    sub = Subscriber(b, run_id)
    await follow_all([sub])
    async with a.client() as c:
        sharded = (await c.get(f"/api/v2/backtests/{run_id}/results")).json()
    async with server.client() as c:  # a single server with the default shard size
        alone = await completed_results(c, sweep_body())
    assert alone["sweep"]["variant_count"] == 12
    assert sharded["sweep"] == alone["sweep"]
    assert sharded["metrics"] == alone["metrics"] and sharded["trades"] == alone["trades"]

    events = await stored(b, run_id)
    check_stream(events, run_id)
    assert sub.seen == events
    # One progress stream for the whole sweep, never backwards, ending whole. (How many steps
    # it shows between depends on how the shards' runs fall against the coordinator's polls:
    # on a fast machine all four may end between two of them.)
    moving = [e["data"]["progress"] for e in events if e["type"] == "progress"]
    assert moving == sorted(moving) and moving[-1] == 1.0, moving
    logs = [e["data"]["message"] for e in events if e["type"] == "log"]
    assert any("in 4 shards of at most 3 variants" in m for m in logs), logs
    assert sum(" done on " in m for m in logs) == 4, logs
    conn = await asyncpg.connect(embedded_dsn(a))
    try:
        shards = await conn.fetch(
            "SELECT number, lo, hi, state, node, body FROM sweep_shards WHERE run_id = $1"
            " ORDER BY number",
            uuid.UUID(run_id),
        )
    finally:
        await conn.close()
    assert [(s["lo"], s["hi"], s["state"]) for s in shards] == [
        (0, 3, "completed"), (3, 6, "completed"), (6, 9, "completed"), (9, 12, "completed")
    ]  # fmt: skip
    assert {s["node"] for s in shards} == {a.node_id, b.node_id}, "both nodes ran shards"
    assert all(s["body"] is None for s in shards), "merged bodies are not kept twice"


async def test_cancelling_a_sharded_sweep_cancels_its_shards(live: list[ServerProcess]) -> None:
    a, b = live
    (run_id,) = await submit(a, sweep_body())
    async with b.client() as c:
        await wait_state(c, run_id, {"running"})
        r = await c.post(f"/api/v2/backtests/{run_id}/cancel")
        assert r.status_code in (200, 202), r.text
        assert (await wait_state(c, run_id, {"cancelled"}))["state"] == "cancelled"
    conn = await asyncpg.connect(embedded_dsn(a))
    try:

        async def shards_ended() -> list[str]:
            states = await conn.fetch(
                "SELECT state FROM sweep_shards WHERE run_id = $1", uuid.UUID(run_id)
            )
            found = [s["state"] for s in states]
            assert found and all(s in ("cancelled", "completed") for s in found), found
            return found

        found = await eventually(shards_ended, timeout=30)
        assert "cancelled" in found
    finally:
        await conn.close()
    events = await stored(a, run_id)
    assert [e["data"]["state"] for e in events if e["type"] == "state"] == [
        "queued", "running", "cancelled",
    ]  # fmt: skip


async def test_a_failed_shard_fails_the_sweep(live: list[ServerProcess]) -> None:
    """A symbol taken out of the shared bar store once its sweep is queued: the shards that load
    it fail, and the sweep fails naming a shard and what went wrong; the other shards end."""
    a, b = live
    bars = a.data_dir / "bars"
    store = BarStore(bars)
    eth = store.load("ETH-USD", "1m", 1_704_067_200 * 10**9, 1_709_251_200 * 10**9)  # Jan, Feb
    store.write("GONE-USD", eth)
    body = {**sweep_body(), "symbols": ["GONE-USD"]}
    try:
        (run_id,) = await submit(a, body)
        (bars / "GONE-USD").rename(bars / ".gone")  # the shards' workers find no such symbol
        async with b.client() as c:
            ended = await wait_state(c, run_id, {"completed", "failed", "cancelled"})
    finally:
        shutil.rmtree(bars / ".gone", ignore_errors=True)
    assert ended["state"] == "failed", ended
    assert ended["error"]["code"] == "engine_error", ended
    assert re.fullmatch(
        r"shard \d of 4 \(variants \d+ to \d+\) failed: the engine failed .*",
        ended["error"]["message"],
    ), ended["error"]
    events = await stored(a, run_id)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    states = [e["data"]["state"] for e in events if e["type"] == "state"]
    assert states == ["queued", "running", "failed"]
    conn = await asyncpg.connect(embedded_dsn(a))
    try:

        async def shards_ended() -> list[str]:
            found = [
                r["state"]
                for r in await conn.fetch(
                    "SELECT state FROM sweep_shards WHERE run_id = $1", uuid.UUID(run_id)
                )
            ]
            assert len(found) == 4 and "failed" in found, found
            assert not {"queued", "running"} & set(found), found
            return found

        await eventually(shards_ended, timeout=30)
    finally:
        await conn.close()


async def test_a_node_stopped_mid_sweep_gives_its_shards_back(live: list[ServerProcess]) -> None:
    """SIGTERM to node B while it coordinates a sharded sweep and runs one of its shards: B gives
    both back at once (no attempt counted) and A finishes the sweep without waiting for a lease.

    B's workers are frozen (SIGSTOP) before the sweep is submitted, so the shards B claims cannot
    end before the stop reaches them (a shard takes a fraction of a second; a stop, more). They
    are thawed once B has given the shard back, and die of the stop's SIGTERM."""
    a, b = live
    frozen = workers_of(b)
    assert len(frozen) == 2, frozen
    conn = await asyncpg.connect(embedded_dsn(a))
    try:
        for proc in frozen:
            proc.suspend()
        (run_id,) = await submit(b, sweep_body(months=4))
        sub = Subscriber(a, run_id)
        following = asyncio.create_task(sub.follow())

        async def b_runs_a_shard() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT s.number, r.lease_owner LIKE $2 || ':%' AS coordinating"
                " FROM sweep_shards s JOIN runs r ON r.id = s.run_id"
                " WHERE s.run_id = $1 AND s.state = 'running' AND s.lease_owner LIKE $2 || ':%'",
                uuid.UUID(run_id),
                b.node_id,
            )

        async def given_back() -> bool:
            return await conn.fetchval(
                "SELECT NOT (lease_owner LIKE $3 || ':%' AND lease_expires_at > now())"
                " FROM sweep_shards WHERE run_id = $1 AND number = $2",
                uuid.UUID(run_id),
                victim,
                b.node_id,
            )

        victim, coordinating = await eventually(b_runs_a_shard, timeout=60, every=0.02)
        stopping = asyncio.create_task(asyncio.to_thread(b.stop, signal.SIGTERM))
        await eventually(given_back, timeout=30, every=0.02)
        thaw(frozen)  # B is stopping them: they die of the SIGTERM pending since
        assert await stopping in (0, -signal.SIGTERM)
        await asyncio.wait_for(following, 120)
        shards = await conn.fetch(
            "SELECT number, state, attempts, node FROM sweep_shards WHERE run_id = $1",
            uuid.UUID(run_id),
        )
        attempts = await conn.fetchval("SELECT attempts FROM runs WHERE id = $1", uuid.UUID(run_id))
    finally:
        thaw(frozen)
        await conn.close()
    assert attempts == 1, "a planned stop costs no attempt"
    by_number = {s["number"]: s for s in shards}
    assert by_number[victim]["attempts"] == 1 and by_number[victim]["node"] == a.node_id
    assert all(s["state"] == "completed" for s in shards)
    events = await stored(a, run_id)
    check_stream(events, run_id)
    assert sub.seen == events
    logs = [e["data"]["message"] for e in events if e["type"] == "log"]
    resumed = [m for m in logs if m.startswith("resuming after a server stop")]
    assert len(resumed) == int(coordinating), logs
    stopping = [m for m in logs if "another node (or the next start) resumes the sweep" in m]
    assert len(stopping) == int(coordinating), logs


async def test_a_node_killed_mid_run_and_mid_sweep(
    live: list[ServerProcess], server: ServerProcess
) -> None:
    """SIGKILL to node B's process group (server and workers) while it runs a run and a shard of
    a sweep it coordinates: once B's leases lapse, A re-runs the run and the shard from the start
    and resumes the sweep keeping the shards done; subscribers on A see every event, the run's
    stream and the sweep's are gap-free, and the ranking is still that of the sweep run whole."""
    a, b = live
    (run_id,) = await submit(b, paced(3))  # on B's first worker
    conn = await asyncpg.connect(embedded_dsn(a))
    try:

        async def run_under_way() -> bool:
            row = await conn.fetchrow(
                "SELECT progress FROM runs WHERE id = $1 AND state = 'running'"
                " AND lease_owner LIKE $2 || ':%'",
                uuid.UUID(run_id),
                b.node_id,
            )
            return row is not None and row["progress"] >= 0.1

        # Once the run is under way B's workers are frozen (SIGSTOP), so that B's run and the
        # shard B claims are both still running when it is killed (a shard takes a fraction of
        # a second); SIGKILL ends stopped processes too.
        await eventually(run_under_way, timeout=60, every=0.02)
        frozen = workers_of(b)
        assert len(frozen) == 2, frozen
        for proc in frozen:
            proc.suspend()
        (sweep_id,) = await submit(b, sweep_body())  # B coordinates; its second worker
        subs = [Subscriber(a, run_id), Subscriber(a, sweep_id)]  # and A's take the shards
        following = asyncio.gather(*(s.follow() for s in subs))

        async def b_mid_both() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT s.number, p.lease_owner LIKE $3 || ':%' AS coordinating"
                " FROM runs r, sweep_shards s JOIN runs p ON p.id = s.run_id"
                " WHERE r.id = $1 AND r.state = 'running' AND r.lease_owner LIKE $3 || ':%'"
                " AND r.progress < 0.9 AND s.run_id = $2 AND s.state = 'running'"
                " AND s.lease_owner LIKE $3 || ':%'",
                uuid.UUID(run_id),
                uuid.UUID(sweep_id),
                b.node_id,
            )

        victim, coordinating = await eventually(b_mid_both, timeout=60, every=0.02)
        assert b.proc is not None
        os.killpg(b.proc.pid, signal.SIGKILL)
        await asyncio.to_thread(b.proc.wait, 10)
        await asyncio.wait_for(following, 120)
        shards = await conn.fetch(
            "SELECT number, state, attempts, node FROM sweep_shards WHERE run_id = $1",
            uuid.UUID(sweep_id),
        )
        ran = await conn.fetch(
            "SELECT id::text, node, attempts FROM runs WHERE id = any($1::uuid[])",
            [run_id, sweep_id],
        )
    finally:
        await conn.close()
    by_id = {r["id"]: (r["node"], r["attempts"]) for r in ran}
    # B usually coordinates too (it claimed the sweep at once); if A's poll came first, A does.
    assert by_id == {run_id: (a.node_id, 2), sweep_id: (a.node_id, 2 if coordinating else 1)}
    by_number = {s["number"]: s for s in shards}
    assert by_number[victim]["attempts"] == 2 and by_number[victim]["node"] == a.node_id
    assert all(s["state"] == "completed" for s in shards)
    for sub in subs:
        events = await stored(a, sub.run_id)
        check_stream(events, sub.run_id)
        assert sub.seen == events, sub.run_id
    logs = {
        sub.run_id: [e["data"]["message"] for e in sub.seen if e["type"] == "log"] for sub in subs
    }
    restarts = [m for m in logs[run_id] if RESTART in m]
    assert len(restarts) == 1 and "attempt 2 of 3" in restarts[0], logs[run_id]
    swept = logs[sweep_id]
    assert sum("resuming (attempt 2 of 3)" in m for m in swept) == int(coordinating), swept
    assert any(f"shard {victim} of 4" in m and "attempt 2 of 3" in m for m in swept), swept
    async with a.client() as c:
        sharded = (await c.get(f"/api/v2/backtests/{sweep_id}/results")).json()
    async with server.client() as c:
        alone = await completed_results(c, sweep_body())
    assert sharded["sweep"] == alone["sweep"] and sharded["metrics"] == alone["metrics"]
