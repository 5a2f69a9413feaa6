"""The runs table: create, read, list, and the state transitions, each with its events."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from protocol.enums import RunState
from server import events, paging
from server.events import CANCEL_CHANNEL, iso

_COLUMNS = (
    "id, state, progress, config, created_at, started_at, finished_at, error, archived,"
    " archived_at, short_id"
)


def status(row: asyncpg.Record) -> dict[str, Any]:
    """Return the wire form of a run status object."""
    return {
        "run_id": str(row["id"]),
        "state": row["state"],
        "progress": row["progress"],
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
        "error": row["error"],
        "config": row["config"],
        "archived": row["archived"],
        "archived_at": iso(row["archived_at"]),
    }


class TooManyActive(Exception):
    """The user already has the maximum number of queued and running runs."""


class InsufficientCredits(Exception):
    """The user's metered balance does not cover the run's cost."""

    def __init__(self, balance: Decimal, cost: Decimal) -> None:
        super().__init__(f"balance {balance} < cost {cost}")
        self.balance, self.cost = balance, cost


async def create(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    config: dict[str, Any],
    *,
    max_active: int,
    max_surface: int | None = None,
    short_id: str | None = None,
    cost: Decimal = Decimal(0),
) -> asyncpg.Record:
    """Insert a queued run and its first event (`state: queued`) in one transaction, and charge
    `cost` credits to a metered user (a NULL balance is unlimited and free).

    TooManyActive when the user has `max_active` queued or running runs, or `max_surface` of
    them made through the config's surface; InsufficientCredits when a metered balance is below
    the cost. Either way nothing is stored. `config.credits` records `{"metered", "charged"}`.
    """
    run_id = uuid.uuid4()
    async with conn.transaction():
        # The user's row lock makes the count, the charge and the insert one step under
        # concurrent creates: two requests cannot both spend the last credit.
        balance = await conn.fetchval("SELECT credits FROM users WHERE id = $1 FOR UPDATE", user_id)
        active, same = await conn.fetchrow(
            "SELECT count(*), count(*) FILTER (WHERE config->>'surface' = $2) FROM runs"
            " WHERE user_id = $1 AND state IN ('queued', 'running')",
            user_id,
            config.get("surface"),
        )
        if active >= max_active:
            raise TooManyActive(active)
        if max_surface is not None and same >= max_surface:
            raise TooManyActive(same)
        if balance is not None and balance < cost:
            raise InsufficientCredits(balance, cost)
        metered = balance is not None
        config = {
            **config,
            "credits": {"metered": metered, "charged": float(cost) if metered else 0.0},
        }
        row = await conn.fetchrow(
            "INSERT INTO runs (id, user_id, state, config, short_id)"
            f" VALUES ($1, $2, 'queued', $3, $4) RETURNING {_COLUMNS}",
            run_id,
            user_id,
            config,
            short_id,
        )
        if metered:
            await conn.execute(
                "WITH u AS (UPDATE users SET credits = credits - $2 WHERE id = $1"
                " RETURNING credits)"
                " INSERT INTO credit_ledger (user_id, kind, amount, balance_after, run_id)"
                " SELECT $1, 'run', $2, u.credits, $3 FROM u",
                user_id,
                cost,
                run_id,
            )
        await events.append(conn, run_id, [("state", {"state": "queued", "previous_state": None})])
    return row


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
    error: dict[str, str] | None = None,
    extra: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
) -> None:
    """Move a run to a terminal state, appending `extra` events and then the state event."""
    await conn.execute(
        "UPDATE runs SET state = $2, finished_at = now(), error = $3, lease_owner = NULL,"
        " lease_expires_at = NULL, progress = CASE WHEN $2 = 'completed' THEN 1 ELSE progress END"
        " WHERE id = $1",
        run_id,
        state.value,
        error,
    )
    data: dict[str, Any] = {"state": state.value, "previous_state": previous.value}
    if error is not None:
        data["error"] = error
    await events.append(conn, run_id, [*extra, ("state", data)])
