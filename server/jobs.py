"""The dispatcher: claims queued runs from PostgreSQL and drives them through the worker pool.

Claims use `FOR UPDATE SKIP LOCKED` and a lease, so several nodes can share one database; a
run whose lease lapsed (its node died) is claimed again, at most `max_attempts` times in all.
The runner of a run is the one writer of its events.
"""

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import asyncpg

from protocol.enums import RunState
from protocol.errors import ErrorCode
from protocol.events import LogData, StateData
from protocol.results import RunError
from server import events, runs, shards
from server.hub import WORK_CHANNEL
from server.outage import DB_ERRORS
from server.runner import LeaseLost, Runner
from server.settings import Settings
from server.workers import WorkerPool

log = logging.getLogger("barstream.jobs")


_CLAIM = """
WITH c AS (
    SELECT id, state AS prev_state, progress AS prev_progress, stopped_cleanly FROM runs
    WHERE {which}
    ORDER BY created_at, id
    FOR UPDATE SKIP LOCKED
    LIMIT 1
)
UPDATE runs r SET state = 'running', started_at = coalesce(r.started_at, now()),
    attempts = r.attempts + CASE WHEN c.stopped_cleanly THEN 0 ELSE 1 END,
    stopped_cleanly = false, node = $3,
    lease_owner = $1, lease_expires_at = now() + $2 * interval '1 second'
FROM c WHERE r.id = c.id
RETURNING r.id, r.config, r.attempts, r.cancel_requested, r.lease_owner, c.prev_state,
    c.prev_progress, c.stopped_cleanly,
    EXISTS (SELECT 1 FROM sweep_shards s WHERE s.run_id = r.id) AS sharded
"""
_ANY = "state = 'queued' OR (state = 'running' AND lease_expires_at < now())"
_ONE = "id = $4 AND state = 'queued'"


def _restart_message(n: int, most: int, row: asyncpg.Record) -> str:
    """The log line of a run claimed again: from the start, or a sharded sweep resumed."""
    what = "resuming" if row["sharded"] else "restarting from the start"
    if row["stopped_cleanly"]:
        why = f"after a server stop (attempt {n} of {most}; a planned stop is not counted as a failed attempt)"
    else:
        why = f"(attempt {n} of {most}): the previous attempt was interrupted"
    kept = "; shards of the sweep that are done are kept" if row["sharded"] else ""
    return f"{what} {why}{kept}"


class Busy(Exception):
    """No worker slot of this node is free for a synchronous run."""


class Dispatcher:
    """Runs queued runs, as many at once as there are workers."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, workers: WorkerPool) -> None:
        self.settings = settings
        self.pool = pool
        self.workers = workers
        self._wake = asyncio.Event()
        self._cancels: dict[uuid.UUID, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(workers.size)
        self._claim_failing = False
        self._runners: dict[uuid.UUID, Runner] = {}
        # Runs this node dropped in a database outage, with their lease tokens: given back once
        # the database answers again, so they resume then rather than when the lease lapses.
        self._dropped: dict[uuid.UUID, tuple[str, str]] = {}  # id: (table, lease token)
        self._shard_of: dict[uuid.UUID, uuid.UUID] = {}  # a running shard's id: its sweep's run
        self.sync_running = 0  # slots held by synchronous requests on this node
        self.sync_slots = min(settings.sync_slots or workers.size, workers.size)

    async def reserve(self, count: int = 1, wait: float = 0.25) -> int:
        """Take up to `count` worker slots for synchronous runs; at least one, or raise Busy.

        The first slot may be waited for `wait` seconds (a claim probe holds one briefly); the
        others are taken only if free at once. Give them back with `release`.
        """
        if self.sync_running >= self.sync_slots:
            raise Busy
        self.sync_running += 1  # counted before waiting, so requests arriving together see it
        try:
            await asyncio.wait_for(self._slots.acquire(), wait)
        except TimeoutError:
            self.sync_running -= 1
            raise Busy from None
        except BaseException:
            self.sync_running -= 1
            raise
        taken = 1
        while taken < count and self.sync_running < self.sync_slots and not self._slots.locked():
            await self._slots.acquire()  # free: returns without suspending
            taken += 1
            self.sync_running += 1
        return taken

    def release(self, count: int) -> None:
        """Give back slots taken with `reserve`."""
        self.sync_running -= count
        for _ in range(count):
            self._slots.release()
        self._wake.set()

    async def start_reserved(
        self, user_id: uuid.UUID, config: dict[str, Any]
    ) -> tuple[uuid.UUID, asyncio.Task[None]]:
        """Create a run and start it at once on a slot taken with `reserve` (kept after it).

        The run is created and claimed in one transaction, so no other claimer can take it
        and a failure leaves nothing behind. The task ends when the run has ended.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            row = await runs.create(
                conn, user_id, config, max_active=self.settings.max_active_runs,
                cost=self.settings.run_credits,
            )  # fmt: skip
            claimed = await self._claim_in(conn, row["id"])
        assert claimed is not None
        task = asyncio.create_task(self._drive(claimed, release=False), name=f"run-{row['id']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return row["id"], task

    def adopt(self, task: "asyncio.Task[Any]") -> None:
        """Keep a task that drives runs (a bulk request) until it ends or the server stops."""
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    def start(self) -> None:
        """Start claiming runs."""
        self._loop_task = asyncio.create_task(self._claim_forever(), name="dispatcher")

    def wake(self) -> None:
        """Look for queued runs now rather than at the next poll; with no worker free here,
        wake the other nodes too, so a new run starts at once on a node that has one."""
        self._wake.set()
        if self._slots.locked():
            task = asyncio.get_running_loop().create_task(self._announce())
            self._tasks.add(task)  # type: ignore[arg-type]
            task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    def woken(self) -> None:
        """Another node made work any node may claim: look for it now (never announced on)."""
        self._wake.set()

    async def _announce(self) -> None:
        with contextlib.suppress(*DB_ERRORS, asyncpg.PostgresError):
            await self.pool.execute("SELECT pg_notify($1, '')", WORK_CHANNEL)

    def cancel(self, run_id: uuid.UUID) -> None:
        """Ask the local runner of `run_id`, and of its sweep's shards, if any, to stop."""
        if run_id in self._cancels:
            self._cancels[run_id].set()
        for shard, parent in list(self._shard_of.items()):
            if parent == run_id and shard in self._cancels:
                self._cancels[shard].set()

    async def stop(self) -> None:
        """Stop claiming and give back running runs (marked as stopped cleanly, so the restart
        costs no attempt, and with a lapsed lease, so any node may resume them at once)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
        await self._give_back()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(
            *self._tasks, *([self._loop_task] if self._loop_task else []), return_exceptions=True
        )

    async def _give_back(self) -> None:
        runners = list(self._runners.values())
        if not runners:
            return
        try:
            async with self.pool.acquire() as conn:
                for runner in runners:
                    await runner.give_back(conn)
        except Exception as exc:  # the database is gone too: the leases lapse on their own
            log.warning("could not give back running runs at shutdown: %s", exc)

    async def _claim_forever(self) -> None:
        while True:
            await self._slots.acquire()
            claimed = None
            # Cleared before the claim, so a wake-up arriving during it (new work committed
            # after the claim's snapshot) makes the next claim come at once, not after a poll.
            self._wake.clear()
            try:
                claimed = await self._claim()
                self._claim_failing = False
            except Exception as exc:
                if not self._claim_failing:  # once per outage, not once a poll
                    log.warning("claiming runs failed: %s; retrying every poll", exc)
                self._claim_failing = True
            if claimed is None:
                self._slots.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
                continue
            task = asyncio.create_task(self._drive(claimed), name=f"run-{claimed['id']}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _claim(self) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn:
            for run_id, (table, token) in list(self._dropped.items()):
                await conn.execute(
                    f"UPDATE {table} SET lease_expires_at = now()"
                    " WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                    run_id,
                    token,
                )
                del self._dropped[run_id]
            async with conn.transaction():
                s = self.settings
                shard = await shards.claim(
                    conn, self._token(), s.lease_seconds, s.node_id, s.max_attempts
                )
                return shard or await self._claim_in(conn)

    def _token(self) -> str:
        """A new lease token: this node's id and a random part, one per claim."""
        return f"{self.settings.node_id}:{uuid.uuid4().hex[:12]}"

    async def _claim_in(
        self, conn: asyncpg.Connection, run_id: uuid.UUID | None = None
    ) -> dict[str, Any] | None:
        """Claim the oldest claimable run, or the queued run `run_id`, in conn's transaction."""
        token, s = self._token(), self.settings
        if run_id is None:
            row = await conn.fetchrow(_CLAIM.format(which=_ANY), token, s.lease_seconds, s.node_id)
        else:
            sql = _CLAIM.format(which=_ONE)
            row = await conn.fetchrow(sql, token, s.lease_seconds, s.node_id, run_id)
        if row is None:
            return None
        claimed = dict(row)
        if row["cancel_requested"]:
            previous = RunState(row["prev_state"])
            await runs.finish(conn, row["id"], RunState.CANCELLED, previous=previous)
            return None
        if row["prev_state"] == RunState.QUEUED:
            started = StateData(state=RunState.RUNNING, previous_state=RunState.QUEUED)
            await events.append(conn, row["id"], [started])
            return claimed
        if row["attempts"] > self.settings.max_attempts:
            err = RunError(
                code=ErrorCode.WORKER_LOST,
                message=f"the run was interrupted {row['attempts'] - 1} times",
            )
            await runs.finish(
                conn, row["id"], RunState.FAILED, previous=RunState.RUNNING, error=err
            )
            return None
        msg = _restart_message(row["attempts"], self.settings.max_attempts, row)
        await events.append(conn, row["id"], [LogData(message=msg, level="warning")])
        return claimed

    def _runner(self, claimed: dict[str, Any], cancel: asyncio.Event, pooled: bool) -> Runner:
        """The runner of a claim: a shard, a large sweep's coordinator, or a whole run.

        A run started on a slot its request reserved (`pooled` False) always runs whole: a
        coordinator there would hold that slot while its shards wait for one.
        """
        if claimed.get("shard"):
            self._shard_of[claimed["id"]] = claimed["run_id"]
            return shards.ShardRunner(self, claimed, cancel)
        large = shards.is_large(claimed["config"], self.settings.sweep_shard_size)
        if pooled and (claimed.get("sharded") or large):
            return shards.SweepCoordinator(self, claimed, cancel)
        return Runner(self, claimed, cancel)

    async def _drive(self, claimed: dict[str, Any], release: bool = True) -> None:
        run_id = claimed["id"]
        cancel = asyncio.Event()
        self._cancels[run_id] = cancel
        runner = self._runner(claimed, cancel, pooled=release)
        self._runners[run_id] = runner
        if release and isinstance(runner, shards.SweepCoordinator):
            release = False  # it holds no worker: its shards take the slots
            self._slots.release()
            self._wake.set()
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            log.warning("run %s was taken over; this runner stops", run_id)
        except DB_ERRORS as exc:  # an outage: the run is given back once the database is back
            self._dropped[run_id] = (runner.table, runner.token)
            log.warning("run %s stopped: the database went away (%s); it restarts when the"
                        " database is back", run_id, type(exc).__name__)  # fmt: skip
        except Exception:
            log.exception("run %s failed in the server", run_id)
            with contextlib.suppress(Exception):
                message = "the server failed while running this backtest"
                await runner.fail(ErrorCode.INTERNAL_ERROR, message)
        finally:
            self._cancels.pop(run_id, None)
            self._runners.pop(run_id, None)
            self._shard_of.pop(run_id, None)
            if release:
                self._slots.release()
            self._wake.set()
