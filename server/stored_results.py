"""Where a finished run's results live: the body without its long listings in `results`, and the
listings (round trips, fills as `trades`) in `result_parts` as pages of pre-serialised JSON rows
(migration 0009). Pages are served by slicing and joining stored bytes: no row is parsed or
encoded again after the worker made it.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import numpy as np
import orjson

from server.json_rows import Rows, as_array, is_wire_rows, of_dicts

PAGE_ROWS = 500  # rows a stored page holds (the migration moves older results in pages of 500)
LISTINGS = ("round_trips", "trades")
_MAX_PAGE = 2**31 - 1
_COLUMNS = ("run_id", "kind", "page", "rows", "data", "ends")


def rows_of(value: Any) -> Rows:
    """A listing as Rows, from Rows, their wire form (a shard's body) or row dicts."""
    if isinstance(value, Rows):
        return value
    if is_wire_rows(value):
        return Rows.from_wire(value)
    return of_dicts(list(value or []))


def head_of(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the results table keeps it: without the listings, other Rows as arrays."""
    return {
        k: orjson.Fragment(rows_of(v).array()) if isinstance(v, Rows) or is_wire_rows(v) else v
        for k, v in body.items()
        if k not in LISTINGS
    }


async def write(conn: asyncpg.Connection, run_id: uuid.UUID, body: dict[str, Any]) -> None:
    """Store a results body in conn's transaction: its head, then every listing's pages by COPY."""
    await conn.execute("INSERT INTO results (run_id, body) VALUES ($1, $2)", run_id, head_of(body))
    records = [
        (run_id, kind, page, count, data, ends)
        for kind in LISTINGS
        for page, count, data, ends in rows_of(body.get(kind)).pages(PAGE_ROWS)
    ]
    if records:
        await conn.copy_records_to_table("result_parts", records=records, columns=_COLUMNS)


async def head_text(conn: asyncpg.Pool | asyncpg.Connection, run_id: uuid.UUID) -> str | None:
    """The stored body without its listings, as JSON text (None when there are no results)."""
    return await conn.fetchval("SELECT body::text FROM results WHERE run_id = $1", run_id)


async def totals(conn: asyncpg.Pool | asyncpg.Connection, run_id: uuid.UUID) -> dict[str, int]:
    """How many rows each listing holds."""
    rows = await conn.fetch(
        "SELECT kind, sum(rows)::bigint AS n FROM result_parts WHERE run_id = $1 GROUP BY kind",
        run_id,
    )
    found = {r["kind"]: int(r["n"]) for r in rows}
    return {kind: found.get(kind, 0) for kind in LISTINGS}


async def page(
    conn: asyncpg.Pool | asyncpg.Connection, run_id: uuid.UUID, kind: str, start: int, limit: int
) -> bytes:
    """Rows start..start+limit of a listing as a JSON array (shorter at its end)."""
    if limit <= 0:
        return b"[]"
    first, last = start // PAGE_ROWS, min((start + limit - 1) // PAGE_ROWS, _MAX_PAGE)
    if first > last:  # past any listing's end (and beyond the page number's integer)
        return b"[]"
    parts = await conn.fetch(
        "SELECT page, data, ends FROM result_parts WHERE run_id = $1 AND kind = $2"
        " AND page BETWEEN $3 AND $4 ORDER BY page",
        run_id, kind, first, last,
    )  # fmt: skip
    pieces = []
    for part in parts:
        base = part["page"] * PAGE_ROWS
        ends = np.frombuffer(part["ends"], dtype=">i4")
        lo, hi = max(start - base, 0), min(start + limit - base, ends.size)
        if lo < hi:
            a = int(ends[lo - 1]) if lo > 0 else 0
            pieces.append(part["data"][a : int(ends[hi - 1])])
    return as_array(b"".join(pieces))


async def whole(conn: asyncpg.Pool | asyncpg.Connection, run_id: uuid.UUID, kind: str) -> bytes:
    """Every row of a listing as a JSON array, joined in the database."""
    joined = await conn.fetchval(
        "SELECT string_agg(data, ''::bytea ORDER BY page) FROM result_parts"
        " WHERE run_id = $1 AND kind = $2",
        run_id,
        kind,
    )
    return as_array(joined or b"")


async def full(conn: asyncpg.Pool | asyncpg.Connection, run_id: uuid.UUID) -> bytes | None:
    """The whole results body as JSON (head and every listing in full), None without results."""
    head = await head_text(conn, run_id)
    if head is None:
        return None
    listed = {kind: await whole(conn, run_id, kind) for kind in LISTINGS}
    return splice(listed, head)


def splice(first: dict[str, bytes], head: str | bytes, last: bytes = b"") -> bytes:
    """One JSON object: `first`'s keys (values already JSON), the head's members, then `last`
    (a JSON object's members, without braces)."""
    lead = b",".join(orjson.dumps(k) + b":" + v for k, v in first.items())
    text = head.encode() if isinstance(head, str) else head
    inner = text.strip()[1:-1].strip()
    members = [m for m in (lead, inner, last) if m]
    return b"{" + b",".join(members) + b"}"
