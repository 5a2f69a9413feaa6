"""Paging a run's stored listing over HTTP: `limit`, an opaque offset cursor, the total and the
link to the next page (DESIGN §4: a client never silently gets a truncated list)."""

from __future__ import annotations

import base64

from starlette.requests import Request

from protocol.errors import ApiError, ErrorCode
from server import paging

MOST = 1000  # the largest page a listing serves


def encode(offset: int) -> str:
    """The cursor of the page starting at row `offset`."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def offset(request: Request) -> int:
    """The row the `cursor` query parameter starts at (0 without one); 422 when it is not ours."""
    raw = request.query_params.get("cursor")
    if not raw:
        return 0
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if not text.isdigit() or len(text) > 12:
            raise ValueError(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, "cursor is not valid", field="cursor"
        ) from exc
    return int(text)


def limit(request: Request, default: int) -> int:
    """The `limit` query parameter: 1 to MOST rows."""
    return paging.limit(request, default=default, most=MOST)


def next_cursor(start: int, size: int, total: int) -> str | None:
    """The cursor after rows start..start+size, or None when they reach the end."""
    return encode(start + size) if start + size < total else None


def next_link(request: Request, path: str, cursor: str | None, size: int) -> str | None:
    """The absolute URL of the listing at `path` continuing at `cursor`, or None."""
    if cursor is None:
        return None
    url = request.url.replace(path=path, query="")
    return str(url.include_query_params(cursor=cursor, limit=size))
