"""Drives one claimed run: sends its job to a worker, turns messages into events, writes the end.

Every write is guarded by the claim's lease token, so a runner that lost its lease (to another
node, or to its own node after a lapse) stops writing instead of becoming a second writer.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg

from protocol.enums import RunState
from protocol.errors import ErrorCode
from protocol.events import EventData, LogData, MetricData, ProgressData
from protocol.results import RunError
from server import events, runs
from server.messages import Cancelled, Done, Failed, FromWorker, Log, Progress
from server.outage import DB_ERRORS
from server.stored_results import write as write_results
from server.translate import job_from_config
from server.workers import WorkerLost

if TYPE_CHECKING:
    from server.jobs import Dispatcher

log = logging.getLogger("barstream.runner")

_PHASE_SPAN = {
    "load": (0.0, 0.02),
    "prepare": (0.02, 0.05),
    "simulate": (0.05, 0.95),
    "metrics": (0.95, 0.99),
}
Items = list[EventData]


class LeaseLost(Exception):
    """Another claim took the run over: this runner must stop writing."""


class Runner:
    """One claimed run, from the job to its terminal state."""

    table = "runs"  # the table holding this runner's lease
    stop_message = "the server is stopping; the run restarts from the start when one is up"

    def __init__(
        self, dispatcher: "Dispatcher", claimed: dict[str, Any], cancel: asyncio.Event
    ) -> None:
        self.d = dispatcher
        self.pool: asyncpg.Pool = dispatcher.pool
        self.run_id: uuid.UUID = claimed["id"]
        self.token: str = claimed["lease_owner"]
        self.config: dict[str, Any] = claimed["config"]
        self.cancel = cancel
        self.reported = float(claimed["prev_progress"] or 0.0)  # never report below this
        self.last_emit = 0.0
        self.last_metric_emit = 0.0
        self.sim_started: float | None = None
        self.timed_out = False
        if claimed["cancel_requested"]:
            cancel.set()

    def _job(self) -> dict[str, Any]:
        s = self.d.settings
        return {
            **job_from_config(self.config),
            "bars_dir": str(s.bars_dir),
            "chunk_bars": s.chunk_bars,
            "pace_seconds": s.pace_seconds,
        }

    async def run(self) -> None:
        """Run the job to its end; raise what went wrong on the server side, after the worker."""
        lease = asyncio.create_task(
            self._keep_lease(time.monotonic() + self.d.settings.max_run_seconds)
        )
        stopped = False  # set once we must write nothing more
        error: BaseException | None = None
        try:
            messages = self.d.workers.run(
                self._job(), self.cancel, self.d.settings.cancel_grace_seconds
            )
            async with contextlib.aclosing(messages):
                # Drain to the worker's terminal message even after a failure here, so the
                # worker is free (or replaced) before the run's slot is given back.
                async for msg in messages:
                    if stopped:
                        continue
                    try:
                        stopped = await self._handle(msg)
                    except LeaseLost:
                        log.warning("run %s was taken over; this runner stops", self.run_id)
                        stopped = True
                        self.cancel.set()
                    except Exception as exc:
                        stopped, error = True, exc
                        self.cancel.set()
        except WorkerLost:
            if not stopped:
                await self._worker_lost()
        finally:
            lease.cancel()
        if error is not None:
            raise error

    async def _worker_lost(self) -> None:
        if self.timed_out:
            await self._timeout()
        elif self.cancel.is_set():
            await self._finish(RunState.CANCELLED, None, [])
        else:
            await self._release()

    async def _handle(self, msg: FromWorker) -> bool:
        """Turn one worker message into events; return True once the run has ended."""
        match msg:
            case Progress(phase, done, total, metrics):
                await self._progress(phase, done, total, metrics)
                return False
            case Log(level, message):
                await self._append([LogData(message=message, level=level)])
                return False
            case Done(body):
                await self._complete(body)
            case Failed(code, message, trace):
                log.warning("run %s failed in its worker:\n%s", self.run_id, trace)
                await self.fail(code, message)
            case Cancelled():
                if self.timed_out:
                    await self._timeout()
                else:
                    await self._finish(RunState.CANCELLED, None, [])
        return True

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
        eta = None
        if phase == "simulate" and self.sim_started is not None and 0 < frac < 1:
            eta = round((now - self.sim_started) / frac * (1 - frac), 2)
        items: Items = [ProgressData(progress=value, phase=phase, eta_seconds=eta)]
        if metrics and now - self.last_metric_emit >= 0.5:
            items += [MetricData(name=k, value=v, running=True) for k, v in sorted(metrics.items())]
            self.last_metric_emit = now
        self.reported, self.last_emit = value, now
        await self._append(items, progress=value)

    async def _append(self, items: Items, progress: float | None = None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            flag = await conn.fetchval(
                "UPDATE runs SET progress = greatest(progress, coalesce($2, progress))"
                " WHERE id = $1 AND state = 'running' AND lease_owner = $3 RETURNING cancel_requested",
                self.run_id,
                progress,
                self.token,
            )
            if flag is None:
                raise LeaseLost(str(self.run_id))
            await events.append(conn, self.run_id, items)
        if flag:
            self.cancel.set()

    async def _complete(self, body: dict[str, Any]) -> None:
        metrics = body["metrics"]
        finals: Items = [MetricData(name=k, value=metrics[k]) for k in sorted(metrics)]
        finals.append(ProgressData(progress=1.0, phase="done", eta_seconds=0.0))
        await self._finish(RunState.COMPLETED, None, finals, body)

    async def fail(self, code: ErrorCode, message: str) -> None:
        """End the run as failed with `code` and `message`."""
        await self._finish(RunState.FAILED, RunError(code=code, message=message), [])

    async def _timeout(self) -> None:
        limit = self.d.settings.max_run_seconds
        await self.fail(ErrorCode.TIMEOUT, f"the run exceeded the maximum run time of {limit:g} s")

    async def _finish(
        self,
        state: RunState,
        error: RunError | None,
        extra: Items,
        body: dict[str, Any] | None = None,
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            owner = await conn.fetchval(
                "SELECT lease_owner FROM runs WHERE id = $1 AND state = 'running' FOR UPDATE",
                self.run_id,
            )
            if owner != self.token:
                raise LeaseLost(str(self.run_id))
            if body is not None:
                await write_results(conn, self.run_id, body)
            await self._on_finish(conn, state)
            await runs.finish(
                conn, self.run_id, state, previous=RunState.RUNNING, error=error, extra=extra
            )

    async def _on_finish(self, conn: asyncpg.Connection, state: RunState) -> None:
        """Hook: more writes in the transaction that ends the run (under its lease)."""

    async def give_back(self, conn: asyncpg.Connection) -> None:
        """Give the run back at a graceful stop: not a failed attempt, resumable at once."""
        async with conn.transaction():
            held = await conn.fetchval(
                "UPDATE runs SET stopped_cleanly = true, lease_expires_at = now()"
                " WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING true",
                self.run_id,
                self.token,
            )
            if held:
                log_event = LogData(message=self.stop_message, level="warning")
                await events.append(conn, self.run_id, [log_event])

    async def _release(self) -> None:
        """Give the run back (its worker died): the next claim restarts it as a new attempt."""
        await self.pool.execute(
            f"UPDATE {self.table} SET lease_expires_at = now() WHERE id = $1 AND lease_owner = $2",
            self.run_id,
            self.token,
        )

    async def _keep_lease(self, deadline: float) -> None:
        """Renew the lease, watch for cancels, and enforce the maximum run time."""
        every = self.d.settings.lease_seconds / 3
        while True:
            left = deadline - time.monotonic()
            await asyncio.sleep(every if left <= 0 else min(every, left))
            if time.monotonic() >= deadline and not self.timed_out:
                self.timed_out = True
                self.cancel.set()
            try:
                flag = await self.pool.fetchval(
                    f"UPDATE {self.table} SET lease_expires_at = now() + $2 * interval '1 second'"
                    " WHERE id = $1 AND lease_owner = $3 RETURNING cancel_requested",
                    self.run_id,
                    self.d.settings.lease_seconds,
                    self.token,
                )
            except (*DB_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("lease renewal of run %s failed: %s; retrying", self.run_id, exc)
                continue
            if flag is None:
                self.cancel.set()  # the lease is gone: stop the worker; writes will be refused
                return
            if flag:
                self.cancel.set()
