"""The runs table: create, read, list, and the state transitions, each with its events."""

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from protocol.enums import RunState
from protocol.events import EventData, StateData, wire_data
from protocol.results import RunError, RunStatus
from server import events, paging
from server.events import CANCEL_CHANNEL
from server.outage import DB_ERRORS

_COLUMNS = (
    "id, state, progress, config, created_at, started_at, finished_at, error, archived,"
    " archived_at, short_id"
)
_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))
Row = Mapping[str, Any]  # a runs row with the columns of _COLUMNS


def status(row: Row) -> dict[str, Any]:
    """Return the wire form of a run status object."""
    return RunStatus(
        run_id=str(row["id"]),
        state=row["state"],
        progress=row["progress"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        config=row["config"],
        archived=row["archived"],
        archived_at=row["archived_at"],
    ).model_dump()


class TooManyActive(Exception):
    """The user already has the maximum number of queued and running runs."""


class InsufficientCredits(Exception):
    """The user's metered balance does not cover the run's cost."""

    def __init__(self, balance: Decimal, cost: Decimal) -> None:
        super().__init__(f"balance {balance} < cost {cost}")
        self.balance, self.cost = balance, cost


# barstream_create_runs (migration 0008): lock, counts, runs, first events, charges, NOTIFYs.
_CREATE = (
    "SELECT ord, outcome, detail, run_created_at, run_config"
    " FROM barstream_create_runs($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)
(_FIRST_EVENT,) = wire_data([StateData(state=RunState.QUEUED, previous_state=None)])


@dataclass(frozen=True)
class _Limits:
    """What a create is checked against; creates batched together share it."""

    user_id: uuid.UUID
    max_active: int
    max_surface: int | None
    cost: Decimal
    surface: str | None


async def _create_many(
    conn: asyncpg.Connection,
    limits: _Limits,
    configs: list[dict[str, Any]],
    short_ids: list[str | None],
) -> list[Row | Exception]:
    """Create runs in one statement; each item's row (the columns of `get`), or the refusal
    that stored nothing."""
    ids = [uuid.uuid4() for _ in configs]
    outcomes = await conn.fetch(
        _CREATE, limits.user_id, ids, configs, short_ids, limits.max_active, limits.max_surface,
        limits.cost, float(limits.cost), datetime.now(UTC), _FIRST_EVENT, events.EVENTS_CHANNEL,
    )  # fmt: skip
    return [_outcome(o, ids[o["ord"] - 1], short_ids[o["ord"] - 1], limits.cost) for o in outcomes]


def _outcome(
    o: asyncpg.Record, run_id: uuid.UUID, short_id: str | None, cost: Decimal
) -> Row | Exception:
    """A created run's row: what the function stored, and the table's defaults for the rest."""
    if o["outcome"] == "too_many":
        return TooManyActive(int(o["detail"]))
    if o["outcome"] == "credits":
        return InsufficientCredits(Decimal(o["detail"]), cost)
    row: dict[str, Any] = dict.fromkeys(_NAMES)  # started_at, error, … are NULL
    row.update(id=run_id, state=RunState.QUEUED.value, progress=0.0, config=o["run_config"],
               created_at=o["run_created_at"], archived=False, short_id=short_id)  # fmt: skip
    return row


async def create(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    config: dict[str, Any],
    *,
    max_active: int,
    max_surface: int | None = None,
    short_id: str | None = None,
    cost: Decimal = Decimal(0),
) -> Row:
    """Insert a queued run and its first event (`state: queued`) in one statement, and charge
    `cost` credits to a metered user (a NULL balance is unlimited and free); return its row.

    TooManyActive when the user has `max_active` queued or running runs, or `max_surface` of
    them made through the config's surface; InsufficientCredits when a metered balance is below
    the cost. Either way nothing is stored. `config.credits` records `{"metered", "charged"}`.
    """
    limits = _Limits(user_id, max_active, max_surface, cost, config.get("surface"))
    (got,) = await _create_many(conn, limits, [config], [short_id])
    if isinstance(got, Exception):
        raise got
    return got


@dataclass
class _Ask:
    """One request's create, answered through its future."""

    config: dict[str, Any]
    future: asyncio.Future[Row]


class Creates:
    """`create` for requests that each hold no connection: the creates of one user (with the
    same limits) that arrive while such a create is being written wait, then are written
    together, in order, by one statement and one commit, on one connection kept while they
    keep coming.

    The user's row lock is held until a commit's WAL flush; taken once per run, it let one
    user's submissions through at the rate of flushes. Taken once per batch, batches grow with
    the load and every request still gets its own answer (its run, or its own 429/402).
    """

    MAX_BATCH = 500

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._pending: dict[_Limits, list[_Ask]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def create(
        self, user_id: uuid.UUID, config: dict[str, Any], *, max_active: int, cost: Decimal
    ) -> Row:
        """As `create`, batched with the user's other creates in flight."""
        limits = _Limits(user_id, max_active, None, cost, config.get("surface"))
        ask = _Ask(config, asyncio.get_running_loop().create_future())
        pending = self._pending.get(limits)
        if pending is not None:
            pending.append(ask)
        else:
            self._pending[limits] = [ask]
            task = asyncio.create_task(self._drain(limits), name="create-runs")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await ask.future

    def _take(self, limits: _Limits) -> list[_Ask]:
        """The next batch (asks whose request went away are dropped); [] ends the drain."""
        pending = self._pending.get(limits, [])
        batch = [a for a in pending[: self.MAX_BATCH] if not a.future.done()]
        del pending[: self.MAX_BATCH]
        if not batch and not pending:
            self._pending.pop(limits, None)
        return batch

    async def _drain(self, limits: _Limits) -> None:
        """Write batches until no create of these limits waits."""
        conn: asyncpg.Connection | None = None
        try:
            while (batch := self._take(limits)) or limits in self._pending:
                if not batch:
                    continue
                try:
                    conn = conn or await self.pool.acquire()
                    got = await self._write(conn, limits, batch)
                except DB_ERRORS as exc:  # an outage: the batch is answered by it
                    got = [exc] * len(batch)
                    conn = await self._drop(conn)
                self._answer(batch, got)
        finally:
            await self._drop(conn)

    async def _drop(self, conn: asyncpg.Connection | None) -> None:
        """Give the connection back to the pool (which replaces a broken one)."""
        if conn is not None:
            with contextlib.suppress(*DB_ERRORS, TimeoutError):
                await self.pool.release(conn)

    async def _write(
        self, conn: asyncpg.Connection, limits: _Limits, batch: list[_Ask]
    ) -> list[Row | Exception]:
        """Each ask's row or refusal; an error that is no outage answers only the ask that
        caused it (the batch is written again one ask at a time)."""
        try:
            return await _create_many(conn, limits, [a.config for a in batch], [None] * len(batch))
        except DB_ERRORS:
            raise
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
        return [got for ask in batch for got in await self._write(conn, limits, [ask])]

    @staticmethod
    def _answer(batch: list[_Ask], got: list[Row | Exception]) -> None:
        """Hand each waiting request its row or its refusal."""
        for ask, result in zip(batch, got, strict=True):
            if ask.future.done():
                continue
            if isinstance(result, Exception):
                ask.future.set_exception(result)
            else:
                ask.future.set_result(result)


async def check_credits(
    conn: asyncpg.Pool | asyncpg.Connection, user_id: uuid.UUID, cost: Decimal
) -> None:
    """InsufficientCredits now if a metered balance is below the cost (create charges for real)."""
    balance = await conn.fetchval("SELECT credits FROM users WHERE id = $1", user_id)
    if balance is not None and balance < cost:
        raise InsufficientCredits(balance, cost)


async def get(
    conn: asyncpg.Connection | asyncpg.Pool, run_id: str, user_id: uuid.UUID
) -> asyncpg.Record | None:
    """Return the caller's run, or None when it does not exist or belongs to someone else."""
    try:
        rid = uuid.UUID(run_id)
    except ValueError:
        return None
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM runs WHERE id = $1 AND user_id = $2", rid, user_id
    )


async def get_short(
    conn: asyncpg.Connection | asyncpg.Pool, short_id: str, user_id: uuid.UUID
) -> asyncpg.Record | None:
    """The caller's run with this short id (`bt_…`), or None."""
    return await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM runs WHERE short_id = $1 AND user_id = $2", short_id, user_id
    )


async def set_archived(
    conn: asyncpg.Connection | asyncpg.Pool, run_id: str, user_id: uuid.UUID, archived: bool
) -> asyncpg.Record | None:
    """Archive or unarchive the caller's run; return its updated row (the columns of `get`),
    or None when it does not exist or belongs to someone else.

    Idempotent: archiving an archived run keeps its first `archived_at`; unarchiving clears it.
    """
    try:
        rid = uuid.UUID(str(run_id))
    except ValueError:
        return None
    return await conn.fetchrow(
        "UPDATE runs SET archived = $3,"
        " archived_at = CASE WHEN $3 THEN coalesce(archived_at, now()) END"
        f" WHERE id = $1 AND user_id = $2 RETURNING {_COLUMNS}",
        rid,
        user_id,
        archived,
    )


async def page(
    conn: asyncpg.Pool,
    user_id: uuid.UUID,
    *,
    state: str | None,
    limit: int,
    cursor: tuple[datetime, uuid.UUID] | None,
    include_archived: bool,
    surface: str | None = None,
) -> tuple[list[asyncpg.Record], int, str | None]:
    """Return one page of the caller's runs newest first (only those made through `surface`,
    if given), the total, and the next cursor."""
    where = ["user_id = $1", "($2::text IS NULL OR state = $2)"]
    args: list[Any] = [user_id, state]
    if not include_archived:
        where.append("NOT archived")
    if surface is not None:
        where.append("config->>'surface' = $3")
        args.append(surface)
    return await paging.fetch_page(conn, "runs", _COLUMNS, where, args, limit, cursor)


async def request_cancel(
    conn: asyncpg.Connection, run_id: uuid.UUID
) -> tuple[asyncpg.Record, bool]:
    """Cancel a queued run at once, or flag a running one for its runner.

    Return the run's row and whether the request took effect (False once the run has ended).
    """
    async with conn.transaction():
        state = await conn.fetchval("SELECT state FROM runs WHERE id = $1 FOR UPDATE", run_id)
        if state == RunState.QUEUED:
            await finish(conn, run_id, RunState.CANCELLED, previous=RunState.QUEUED)
        elif state == RunState.RUNNING:
            await conn.execute("UPDATE runs SET cancel_requested = true WHERE id = $1", run_id)
            await conn.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, str(run_id))
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM runs WHERE id = $1", run_id)
        return row, state in (RunState.QUEUED, RunState.RUNNING)


async def finish(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    state: RunState,
    *,
    previous: RunState,
    error: RunError | None = None,
    extra: list[EventData] = (),  # type: ignore[assignment]
) -> None:
    """Move a run to a terminal state, appending `extra` events and then the state event."""
    await conn.execute(
        "UPDATE runs SET state = $2, finished_at = now(), error = $3, lease_owner = NULL,"
        " lease_expires_at = NULL, progress = CASE WHEN $2 = 'completed' THEN 1 ELSE progress END"
        " WHERE id = $1",
        run_id,
        state.value,
        None if error is None else error.model_dump(mode="json"),
    )
    data = StateData(state=state, previous_state=previous, error=error)
    await events.append(conn, run_id, [*extra, data])
