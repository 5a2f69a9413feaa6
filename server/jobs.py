"""The dispatcher: claims queued runs from PostgreSQL and drives them through the worker pool.

Claims use `FOR UPDATE SKIP LOCKED` and a lease, so several nodes can share one database; a
run whose lease lapsed (its node died) is claimed again, at most `max_attempts` times in all.
The runner of a run is the one writer of its events.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import asyncpg

from protocol.enums import RunState
from server import events, runs
from server.settings import Settings
from server.translate import job_from_config
from server.workers import WorkerLost, WorkerPool

log = logging.getLogger("barstream.jobs")

_PHASE_SPAN = {
    "load": (0.0, 0.02),
    "prepare": (0.02, 0.05),
    "simulate": (0.05, 0.95),
    "metrics": (0.95, 0.99),
}

_CLAIM = """
WITH c AS (
    SELECT id, state AS prev_state, progress AS prev_progress FROM runs
    WHERE state = 'queued' OR (state = 'running' AND lease_expires_at < now())
    ORDER BY created_at, id
    FOR UPDATE SKIP LOCKED
    LIMIT 1
)
UPDATE runs r SET state = 'running', started_at = coalesce(r.started_at, now()),
    attempts = r.attempts + 1, lease_owner = $1, lease_expires_at = now() + $2 * interval '1 second'
FROM c WHERE r.id = c.id
RETURNING r.id, r.config, r.attempts, r.cancel_requested, c.prev_state, c.prev_progress
"""


class LeaseLost(Exception):
    """Another node took the run over: this runner must stop writing."""


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

    def start(self) -> None:
        """Start claiming runs."""
        self._loop_task = asyncio.create_task(self._claim_forever(), name="dispatcher")

    def wake(self) -> None:
        """Look for queued runs now rather than at the next poll."""
        self._wake.set()

    def cancel(self, run_id: uuid.UUID) -> None:
        """Ask the local runner of `run_id`, if any, to stop."""
        if run_id in self._cancels:
            self._cancels[run_id].set()

    async def stop(self) -> None:
        """Stop claiming and abandon running runs: their leases lapse and a later start resumes them."""
        if self._loop_task is not None:
            self._loop_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(
            *self._tasks, *([self._loop_task] if self._loop_task else []), return_exceptions=True
        )

    async def _claim_forever(self) -> None:
        while True:
            await self._slots.acquire()
            claimed = None
            try:
                claimed = await self._claim()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("claim failed: %s", exc)
            if claimed is None:
                self._slots.release()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
                continue
            task = asyncio.create_task(self._drive(claimed), name=f"run-{claimed['id']}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _claim(self) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_CLAIM, self.settings.node_id, self.settings.lease_seconds)
            if row is None:
                return None
            claimed = dict(row)
            if row["prev_state"] == RunState.QUEUED:
                await events.append(
                    conn, row["id"], [("state", {"state": "running", "previous_state": "queued"})]
                )
                return claimed
            if row["attempts"] > self.settings.max_attempts:
                err = {
                    "code": "worker_lost",
                    "message": f"the run's worker was lost {row['attempts'] - 1} times",
                }
                await runs.finish(
                    conn, row["id"], RunState.FAILED, previous=RunState.RUNNING, error=err
                )
                return None
            msg = f"restarting from the start after its server stopped (attempt {row['attempts']} of {self.settings.max_attempts})"
            await events.append(conn, row["id"], [("log", {"message": msg, "level": "warning"})])
            return claimed

    async def _drive(self, claimed: dict[str, Any]) -> None:
        run_id = claimed["id"]
        cancel = asyncio.Event()
        self._cancels[run_id] = cancel
        runner = Runner(self, claimed, cancel)
        try:
            await runner.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run %s failed in the server", run_id)
            with contextlib.suppress(Exception):
                await runner.fail("internal_error", "the server failed while running this backtest")
        finally:
            self._cancels.pop(run_id, None)
            self._slots.release()
            self._wake.set()


class Runner:
    """Drives one claimed run: sends the job, turns worker messages into events, writes the end."""

    def __init__(
        self, dispatcher: Dispatcher, claimed: dict[str, Any], cancel: asyncio.Event
    ) -> None:
        self.d = dispatcher
        self.run_id: uuid.UUID = claimed["id"]
        self.config: dict[str, Any] = claimed["config"]
        self.cancel = cancel
        self.reported = float(claimed["prev_progress"] or 0.0)  # never report below this
        self.last_emit = 0.0
        self.last_metric_emit = 0.0
        self.sim_started: float | None = None
        self.reason = "cancelled"
        if claimed["cancel_requested"]:
            cancel.set()

    async def run(self) -> None:
        s = self.d.settings
        job = {
            **job_from_config(self.config),
            "bars_dir": str(s.bars_dir),
            "chunk_bars": s.chunk_bars,
            "pace_seconds": s.pace_seconds,
        }
        deadline = time.monotonic() + self.d.settings.max_run_seconds
        lease = asyncio.create_task(self._keep_lease(deadline))
        lost = False
        try:
            # Always drain to the worker's terminal message, so the worker is idle when returned.
            async for msg in self.d.workers.run(job, self.cancel):
                if lost:
                    continue
                try:
                    if await self._handle(msg):
                        lost = True
                except LeaseLost:
                    log.warning("run %s was taken over by another node", self.run_id)
                    lost = True
                    self.cancel.set()
        except WorkerLost:
            await self._release()
        finally:
            lease.cancel()

    async def _handle(self, msg: tuple[Any, ...]) -> bool:
        kind = msg[0]
        if kind == "progress":
            await self._progress(*msg[1:])
        elif kind == "log":
            await self._append([("log", {"message": msg[2], "level": msg[1]})])
        elif kind == "done":
            await self._complete(msg[1])
            return True
        elif kind == "failed":
            log.info("run %s failed: %s", self.run_id, msg[3] if len(msg) > 3 else msg[2])
            await self.fail(msg[1], msg[2])
            return True
        elif kind == "cancelled":
            if self.reason == "timeout":
                limit = self.d.settings.max_run_seconds
                await self.fail("timeout", f"the run exceeded the maximum run time of {limit:g} s")
            else:
                await self._finish(RunState.CANCELLED, None, [])
            return True
        return False

    async def _progress(self, phase: str, done: int, total: int, metrics: dict[str, float]) -> None:
        lo, hi = _PHASE_SPAN.get(phase, (0.0, 0.99))
        frac = done / total if total else 1.0
        value = round(lo + (hi - lo) * frac, 4)
        now = time.monotonic()
        if phase == "simulate" and self.sim_started is None:
            self.sim_started = now
        # At most every 1% or 100 ms, whichever is rarer; and never backwards.
        if value < self.reported + 0.01 or now - self.last_emit < 0.1:
            return
        data: dict[str, Any] = {"progress": value, "phase": phase}
        if phase == "simulate" and self.sim_started is not None and 0 < frac < 1:
            data["eta_seconds"] = round((now - self.sim_started) / frac * (1 - frac), 2)
        items: list[tuple[str, dict[str, Any]]] = [("progress", data)]
        if metrics and now - self.last_metric_emit >= 0.5:
            items += [
                ("metric", {"name": k, "value": v, "running": True})
                for k, v in sorted(metrics.items())
            ]
            self.last_metric_emit = now
        self.reported, self.last_emit = value, now
        await self._append(items, progress=value)

    async def _append(
        self, items: list[tuple[str, dict[str, Any]]], progress: float | None = None
    ) -> None:
        async with self.d.pool.acquire() as conn, conn.transaction():
            flag = await conn.fetchval(
                "UPDATE runs SET progress = greatest(progress, coalesce($2, progress)) WHERE id = $1"
                " AND lease_owner = $3 RETURNING cancel_requested",
                self.run_id,
                progress,
                self.d.settings.node_id,
            )
            if flag is None:
                raise LeaseLost(str(self.run_id))
            await events.append(conn, self.run_id, items)
        if flag:
            self.cancel.set()

    async def _complete(self, body: dict[str, Any]) -> None:
        metrics = body["metrics"]
        finals = [("metric", {"name": k, "value": metrics[k]}) for k in sorted(metrics)]
        extra = [*finals, ("progress", {"progress": 1.0, "phase": "done", "eta_seconds": 0.0})]
        await self._finish(RunState.COMPLETED, None, extra, body)

    async def fail(self, code: str, message: str) -> None:
        """End the run as failed with `code` and `message`."""
        await self._finish(RunState.FAILED, {"code": code, "message": message}, [])

    async def _finish(
        self,
        state: RunState,
        error: dict[str, str] | None,
        extra: list[tuple[str, dict[str, Any]]],
        body: dict[str, Any] | None = None,
    ) -> None:
        async with self.d.pool.acquire() as conn, conn.transaction():
            current = await conn.fetchval(
                "SELECT state FROM runs WHERE id = $1 FOR UPDATE", self.run_id
            )
            if current != RunState.RUNNING:
                return
            if body is not None:
                await conn.execute(
                    "INSERT INTO results (run_id, body) VALUES ($1, $2)", self.run_id, body
                )
            await runs.finish(
                conn, self.run_id, state, previous=RunState.RUNNING, error=error, extra=extra
            )

    async def _release(self) -> None:
        """Give the run back (its worker died): the next claim restarts it as a new attempt."""
        await self.d.pool.execute(
            "UPDATE runs SET lease_expires_at = now() WHERE id = $1 AND lease_owner = $2",
            self.run_id,
            self.d.settings.node_id,
        )

    async def _keep_lease(self, deadline: float) -> None:
        s = self.d.settings
        while True:
            left = deadline - time.monotonic()
            await asyncio.sleep(
                s.lease_seconds / 3 if left <= 0 else min(s.lease_seconds / 3, left)
            )
            if time.monotonic() >= deadline and not self.cancel.is_set():
                self.reason = "timeout"
                self.cancel.set()
            flag = await self.d.pool.fetchval(
                "UPDATE runs SET lease_expires_at = now() + $2 * interval '1 second'"
                " WHERE id = $1 AND lease_owner = $3 RETURNING cancel_requested",
                self.run_id,
                s.lease_seconds,
                s.node_id,
            )
            if flag:
                self.cancel.set()
