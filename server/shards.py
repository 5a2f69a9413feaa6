"""Sweeps across nodes: a large sweep is split into shards that any node may claim.

A sweep run of more than `sweep_shard_size` variants is claimed like any run, but its runner
(a `SweepCoordinator`) holds no worker: it inserts one `sweep_shards` row per range of
variants, then watches them. Any node's dispatcher claims a shard with the same
`FOR UPDATE SKIP LOCKED` and lease rules as a run and runs that slice of the sweep in a worker
(a `ShardRunner`, writing only to its shard's row). The coordinator, the one writer of the
parent's events, turns the shards' progress into one progress stream, and once every shard is
done merges their rows into one ranking (the engine's order: metric, then variant number) and
completes the parent with the best variant's full results. A failed shard fails the parent; a
parent that ends otherwise cancels its shards; a shard whose node died is claimed again once
its lease lapses, like a run.
"""

import asyncio
import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg

from engine import rank_key, shard_bounds
from protocol.enums import RunState
from protocol.errors import ErrorCode
from protocol.events import LogData
from protocol.results import RunError
from server import events
from server.events import CANCEL_CHANNEL
from server.hub import WORK_CHANNEL
from server.json_rows import Rows
from server.runner import Items, LeaseLost, Runner

if TYPE_CHECKING:
    from server.jobs import Dispatcher

WATCH_SECONDS = 0.25  # how often the coordinator reads its shards

_CLAIM = """
WITH c AS (
    SELECT s.id, s.state AS prev_state, s.progress AS prev_progress, s.stopped_cleanly
    FROM sweep_shards s JOIN runs r ON r.id = s.run_id
    WHERE (s.state = 'queued' OR (s.state = 'running' AND s.lease_expires_at < now()))
        AND NOT s.cancel_requested AND r.state = 'running' AND NOT r.cancel_requested
    ORDER BY r.created_at, s.run_id, s.number
    FOR UPDATE OF s SKIP LOCKED
    LIMIT 1
)
UPDATE sweep_shards s SET state = 'running', started_at = coalesce(s.started_at, now()),
    attempts = s.attempts + CASE WHEN c.stopped_cleanly THEN 0 ELSE 1 END,
    stopped_cleanly = false, node = $3,
    lease_owner = $1, lease_expires_at = now() + $2 * interval '1 second'
FROM c WHERE s.id = c.id
RETURNING s.id, s.run_id, s.number, s.lo, s.hi, s.attempts, s.lease_owner, s.cancel_requested,
    c.prev_state, c.prev_progress, (SELECT config FROM runs WHERE id = s.run_id) AS config
"""


def is_large(config: dict[str, Any], shard_size: int) -> bool:
    """Whether a run is a sweep of more variants than one shard holds."""
    return int((config.get("sweep") or {}).get("variant_count") or 0) > shard_size


async def claim(
    conn: asyncpg.Connection, token: str, lease: float, node: str, max_attempts: int
) -> dict[str, Any] | None:
    """Claim the oldest claimable shard in conn's transaction; fail those out of attempts."""
    while True:
        row = await conn.fetchrow(_CLAIM, token, lease, node)
        if row is None:
            return None
        if row["attempts"] <= max_attempts:
            return {**dict(row), "shard": True}
        error = RunError(
            code=ErrorCode.WORKER_LOST,
            message=f"the shard was interrupted {row['attempts'] - 1} times",
        ).model_dump(mode="json")
        await conn.execute(
            "UPDATE sweep_shards SET state = 'failed', error = $2, finished_at = now(),"
            " lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
            row["id"],
            error,
        )


def merge(bodies: list[dict[str, Any]], rank_by: str) -> dict[str, Any]:
    """One results body from the shards' bodies: every row ranked as one sweep ranks them
    (engine.sweep.rank_key: the metric, then the variant number), the best one's results."""
    key = rank_key(rank_by)
    rows = [row for body in bodies for row in body["sweep"]["variants"]]
    rows.sort(key=lambda r: key({"metrics": r["metrics"], "number": r["variant"]}))
    ranked = [{**row, "rank": rank} for rank, row in enumerate(rows, start=1)]
    best = ranked[0]
    source = next(b for b in bodies if b["sweep"]["best"]["variant"] == best["variant"])
    sweep = {
        "rank_by": rank_by,
        "variant_count": len(ranked),
        "best": {"variant": best["variant"], "params": best["params"]},
        "variants": ranked,
    }
    return {**source, "sweep": sweep}


def _code(value: str | None) -> ErrorCode:
    """A failed shard's stored code as the sweep's (internal_error when it names none known)."""
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.INTERNAL_ERROR


def wire_body(body: dict[str, Any]) -> dict[str, Any]:
    """A shard's body as its jsonb column keeps it: serialised listings as text and offsets
    (the merged body is stored from them as they are, without parsing a row)."""
    return {k: v.to_wire() if isinstance(v, Rows) else v for k, v in body.items()}


class ShardRunner(Runner):
    """One claimed shard: its slice of the sweep in a worker; writes only to its shard row."""

    table = "sweep_shards"

    def __init__(
        self, dispatcher: "Dispatcher", claimed: dict[str, Any], cancel: asyncio.Event
    ) -> None:
        super().__init__(dispatcher, claimed, cancel)
        self.parent: uuid.UUID = claimed["run_id"]
        self.bounds = (int(claimed["lo"]), int(claimed["hi"]))

    def _job(self) -> dict[str, Any]:
        return {**super()._job(), "variant_range": list(self.bounds)}

    async def _append(self, items: Items, progress: float | None = None) -> None:
        """Record the shard's progress (its log lines stay in its worker)."""
        flag = await self.pool.fetchval(
            "UPDATE sweep_shards SET progress = greatest(progress, coalesce($2, progress))"
            " WHERE id = $1 AND state = 'running' AND lease_owner = $3 RETURNING cancel_requested",
            self.run_id,
            progress,
            self.token,
        )
        if flag is None:
            raise LeaseLost(str(self.run_id))
        if flag:
            self.cancel.set()

    async def _finish(
        self,
        state: RunState,
        error: RunError | None,
        extra: Items,
        body: dict[str, Any] | None = None,
    ) -> None:
        ended = await self.pool.fetchval(
            "UPDATE sweep_shards SET state = $3, error = $4, body = $5, finished_at = now(),"
            " lease_owner = NULL, lease_expires_at = NULL,"
            " progress = CASE WHEN $3 = 'completed' THEN 1 ELSE progress END"
            " WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING true",
            self.run_id,
            self.token,
            state.value,
            None if error is None else error.model_dump(mode="json"),
            None if body is None else wire_body(body),
        )
        if not ended:
            raise LeaseLost(str(self.run_id))

    async def give_back(self, conn: asyncpg.Connection) -> None:
        """Give the shard back at a graceful stop (no attempt counted)."""
        await conn.execute(
            "UPDATE sweep_shards SET stopped_cleanly = true, lease_expires_at = now()"
            " WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            self.run_id,
            self.token,
        )


class SweepCoordinator(Runner):
    """A large sweep's runner: splits it into shards, follows them, merges them; no worker."""

    stop_message = "the server is stopping; another node (or the next start) resumes the sweep"

    async def run(self) -> None:
        """Split (once), then follow the shards to the parent's end."""
        lease = asyncio.create_task(
            self._keep_lease(time.monotonic() + self.d.settings.max_run_seconds)
        )
        try:
            total = await self._split()
            await self._follow(total)
        finally:
            lease.cancel()

    async def _split(self) -> int:
        """Insert the shards unless an earlier claim did; log how the sweep is split."""
        sweep = self.config["sweep"]
        count = int(sweep["variant_count"])
        async with self.pool.acquire() as conn, conn.transaction():
            owner = await conn.fetchval(
                "SELECT lease_owner FROM runs WHERE id = $1 FOR UPDATE", self.run_id
            )
            if owner != self.token:
                raise LeaseLost(str(self.run_id))
            done = await conn.fetchval(
                "SELECT count(*) FILTER (WHERE state = 'completed') || ' of ' || count(*)"
                " FROM sweep_shards WHERE run_id = $1 HAVING count(*) > 0",
                self.run_id,
            )
            if done is not None:
                msg = f"resuming the sharded sweep: {done} shards done are kept"
            else:
                bounds = shard_bounds(count, self.d.settings.sweep_shard_size)
                await conn.executemany(
                    "INSERT INTO sweep_shards (id, run_id, number, lo, hi) VALUES ($1, $2, $3, $4, $5)",
                    [(uuid.uuid4(), self.run_id, n, lo, hi) for n, (lo, hi) in enumerate(bounds, 1)],
                )  # fmt: skip
                # Every node's dispatcher looks for them at once (at commit), not at its next poll.
                await conn.execute("SELECT pg_notify($1, '')", WORK_CHANNEL)
                msg = (
                    f"sweep of {count} variants, ranked by {sweep['rank_by']}, in"
                    f" {len(bounds)} shards of at most {self.d.settings.sweep_shard_size}"
                    " variants; any node may run them"
                )
            await events.append(conn, self.run_id, [LogData(message=msg, level="info")])
        return count

    async def _follow(self, total: int) -> None:
        """Report the shards' progress until they are all done, one fails, or a cancel."""
        seen: dict[int, tuple[str, int]] = {}
        while not self.cancel.is_set():
            rows = await self.pool.fetch(
                "SELECT number, lo, hi, state, progress, attempts, error, node FROM sweep_shards"
                " WHERE run_id = $1 ORDER BY number",
                self.run_id,
            )
            await self._note(rows, seen)
            failed = next((r for r in rows if r["state"] == "failed"), None)
            if failed is not None:
                err = failed["error"] or {}
                await self.fail(
                    _code(err.get("code")),
                    f"shard {failed['number']} of {len(rows)} (variants {failed['lo'] + 1}"
                    f" to {failed['hi']}) failed: {err.get('message', 'no reason given')}",
                )
                return
            if any(r["state"] == "cancelled" for r in rows) and not await self._cancelling():
                await self.fail(ErrorCode.INTERNAL_ERROR, "a shard of this sweep was cancelled")
                return
            if all(r["state"] == "completed" for r in rows):
                await self._merge()
                return
            done = sum(r["progress"] * (r["hi"] - r["lo"]) for r in rows)
            await self._progress("simulate", done, total, {})  # type: ignore[arg-type]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel.wait(), WATCH_SECONDS)
        if self.timed_out:
            await self._timeout()
        else:
            await self._finish(RunState.CANCELLED, None, [])

    async def _cancelling(self) -> bool:
        """Whether the parent was asked to stop (its shards then end cancelled first)."""
        if not self.cancel.is_set() and await self.pool.fetchval(
            "SELECT cancel_requested FROM runs WHERE id = $1", self.run_id
        ):
            self.cancel.set()
        return self.cancel.is_set()

    async def _note(self, rows: list[asyncpg.Record], seen: dict[int, tuple[str, int]]) -> None:
        """Log each shard's start, restart and end once, naming its node."""
        items: Items = []
        for r in rows:
            now = (r["state"], r["attempts"])
            if r["state"] == "queued" or seen.get(r["number"]) == now:
                continue
            where = f"shard {r['number']} of {len(rows)} (variants {r['lo'] + 1} to {r['hi']})"
            prev = seen.get(r["number"])
            if r["state"] == "completed":
                msg = f"{where} done on {r['node']}"
                if r["attempts"] > 1:
                    msg += f" (attempt {r['attempts']} of {self.d.settings.max_attempts})"
                items.append(LogData(message=msg, level="info"))
            elif r["state"] == "running" and r["attempts"] > (prev[1] if prev else 1):
                msg = (f"{where} restarting from the start on {r['node']} (attempt"
                       f" {r['attempts']} of {self.d.settings.max_attempts}): its node stopped")  # fmt: skip
                items.append(LogData(message=msg, level="warning"))
            elif r["state"] == "running" and prev is None:
                msg = f"{where} running on {r['node']}"
                items.append(LogData(message=msg, level="info"))
            seen[r["number"]] = now
        if items:
            await self._append(items)

    async def _merge(self) -> None:
        """Rank every shard's rows as one sweep and complete with the best variant's results."""
        bodies = [
            r["body"]
            for r in await self.pool.fetch(
                "SELECT body FROM sweep_shards WHERE run_id = $1 ORDER BY number", self.run_id
            )
        ]
        await self._complete(merge(bodies, self.config["sweep"]["rank_by"]))

    async def _on_finish(self, conn: asyncpg.Connection, state: RunState) -> None:
        """Cancel what is left of the shards; drop their bodies once merged."""
        if state == RunState.COMPLETED:
            await conn.execute("UPDATE sweep_shards SET body = NULL WHERE run_id = $1", self.run_id)
            return
        await conn.execute(
            "UPDATE sweep_shards SET state = 'cancelled', finished_at = now()"
            " WHERE run_id = $1 AND state = 'queued'",
            self.run_id,
        )
        await conn.execute(
            "UPDATE sweep_shards SET cancel_requested = true WHERE run_id = $1 AND state = 'running'",
            self.run_id,
        )
        # Every node's runners of this run's shards stop at once (jobs.Dispatcher.cancel).
        await conn.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, str(self.run_id))
