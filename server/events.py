"""The event table: per-run ids assigned under the run's row lock, published only after commit."""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from protocol.events import EventData, wire_data
from protocol.times import iso

__all__ = ["CANCEL_CHANNEL", "EVENTS_CHANNEL", "append", "count", "fetch_after", "iso"]

EVENTS_CHANNEL = "barstream_events"
CANCEL_CHANNEL = "barstream_cancel"


async def append(conn: asyncpg.Connection, run_id: uuid.UUID, items: list[EventData]) -> int:
    """Append events (their data; each one's type is its data's) inside the caller's
    transaction; return the id of the last one.

    The UPDATE takes the run's row lock, so ids are gap-free and in commit order; the NOTIFY
    is delivered by PostgreSQL only when the transaction commits.
    """
    if not items:
        return await conn.fetchval("SELECT last_event_id FROM runs WHERE id = $1", run_id)
    last = await conn.fetchval(
        "UPDATE runs SET last_event_id = last_event_id + $2 WHERE id = $1 RETURNING last_event_id",
        run_id,
        len(items),
    )
    first = last - len(items) + 1
    now = datetime.now(UTC)
    rows = [
        (run_id, first + i, d.type.value, now, data)
        for i, (d, data) in enumerate(zip(items, wire_data(items), strict=True))
    ]
    await conn.executemany(
        "INSERT INTO events (run_id, id, type, ts, data) VALUES ($1, $2, $3, $4, $5)", rows
    )
    await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, f"{run_id}:{last}")
    return last


async def fetch_after(
    conn: asyncpg.Connection | asyncpg.Pool, run_id: uuid.UUID, after: int, limit: int
) -> list[dict[str, Any]]:
    """Return up to `limit` events with id > `after`, in id order, in wire form."""
    rows = await conn.fetch(
        "SELECT id, type, ts, data FROM events WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        run_id,
        after,
        limit,
    )
    rid = str(run_id)
    return [
        {
            "id": r["id"],
            "run_id": rid,
            "type": r["type"],
            "timestamp": iso(r["ts"]),
            "data": r["data"],
        }
        for r in rows
    ]


async def count(conn: asyncpg.Connection | asyncpg.Pool, run_id: uuid.UUID) -> int:
    """Return how many events the run has."""
    return await conn.fetchval("SELECT last_event_id FROM runs WHERE id = $1", run_id)
