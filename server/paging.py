"""Keyset paging shared by listings: newest first by (created_at, id), an opaque cursor."""

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from starlette.requests import Request

from protocol.enums import RunState
from protocol.errors import ApiError, ErrorCode

Cursor = tuple[datetime, uuid.UUID]


def encode(created_at: datetime, row_id: uuid.UUID) -> str:
    """The cursor that continues after the row (created_at, row_id)."""
    raw = f"{created_at.timestamp():.6f}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Cursor:
    """Parse a cursor; ValueError when it is not one of ours."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    ts, _, rid = raw.partition("|")
    return datetime.fromtimestamp(float(ts), UTC), uuid.UUID(rid)


async def fetch_page(
    conn: asyncpg.Pool | asyncpg.Connection,
    table: str,
    columns: str,
    where: list[str],
    args: list[Any],
    limit: int,
    cursor: Cursor | None,
) -> tuple[list[asyncpg.Record], int, str | None]:
    """One page of `table` newest first under `where` (its args numbered from $1), the total
    over all pages, and the cursor of the next page (None on the last)."""
    total = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE {' AND '.join(where)}", *args)
    n = len(args)
    if cursor is not None:
        where = [*where, f"(created_at, id) < (${n + 2}, ${n + 3})"]
    rows = await conn.fetch(
        f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)}"
        f" ORDER BY created_at DESC, id DESC LIMIT ${n + 1}",
        *args, limit + 1, *(cursor or ()),
    )  # fmt: skip
    if len(rows) <= limit:
        return rows, total, None
    rows = rows[:limit]
    return rows, total, encode(rows[-1]["created_at"], rows[-1]["id"])


_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII digits: int() also takes " 5", "+5", "1_0", "\u0665"


def limit(request: Request, default: int = 50, most: int = 200) -> int:
    """The `limit` query parameter: an integer from 1 to `most` in plain digits, else 422."""
    raw = request.query_params.get("limit", str(default))
    value = int(raw) if _DIGITS.fullmatch(raw) else 0
    if not 1 <= value <= most:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"limit must be an integer from 1 to {most}",
            field="limit",
        )  # fmt: skip
    return value


def cursor(request: Request) -> Cursor | None:
    """The `cursor` query parameter, or None; 422 when it is not one of ours."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        return decode(raw)
    except (ValueError, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, "cursor is not valid", field="cursor"
        ) from exc


FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def flag(request: Request, name: str) -> bool:
    """A boolean query parameter: `true`/`false`, `1`/`0` or `yes`/`no` (any case), false when
    absent; anything else (`null`, an empty value, `2`) is a 422 naming the parameter."""
    raw = request.query_params.get(name)
    if raw is None:
        return False
    value = FLAGS.get(raw.lower())
    if value is None:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR,
            f"{name} must be true or false (also 1/0, yes/no), not {raw[:40]!r}", field=name,
        )  # fmt: skip
    return value


def headers(request: Request, total: int, next_cursor: str | None) -> dict[str, str]:
    """`X-Total-Count`, and a `Link` to the next page (same query, new cursor) if there is one."""
    out = {"X-Total-Count": str(total)}
    if next_cursor is not None:
        out["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return out


_STATES = tuple(s.value for s in RunState)


def state(request: Request) -> str | None:
    """The `state` filter of a run listing, or None; 422 when it is not a run state (an empty
    value too)."""
    value = request.query_params.get("state")
    if value is not None and value not in _STATES:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"state must be one of {', '.join(sorted(_STATES))}",
            field="state",
        )  # fmt: skip
    return value
