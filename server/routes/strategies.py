"""Saved strategies: `/api/v2/strategies` and the v1 dialect's `/api/v1/strategies`.

Both mounts share the handlers. They differ in two things only: a strategy created through v1
is checked by seed 001's strict rules (exactly one TRIGGER and one FILTER), and v1 lists come
as an object (`items`, `total`, `next_cursor`) where v2 lists are an array with the paging in
`Link` and `X-Total-Count` headers.
"""

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protocol.errors import ApiError, ErrorCode
from server import paging, strategies
from server.auth import require_user
from server.responses import JSON


def _v1(request: Request) -> bool:
    return request.url.path.startswith("/api/v1/")


async def _owned(request: Request) -> asyncpg.Record:
    user = await require_user(request)
    sid = request.path_params["strategy_id"]
    row = await strategies.get(request.app.state.pool, sid, user.id)
    if row is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"strategy {sid} not found", field="strategy_id")
    return row


async def create(request: Request) -> Response:
    """Check and save a strategy; 201 with it."""
    user = await require_user(request)
    body = strategies.parse(await request.body())
    dialect = "seed001" if _v1(request) else "v2"
    row = await strategies.create(
        request.app.state.pool, request.app.state.store, user.id, body, dialect
    )
    out = strategies.wire(row)
    return JSON(out, status_code=201, headers={"Location": f"{request.url.path}/{out['id']}"})


async def list_strategies(request: Request) -> Response:
    """The caller's strategies, newest first; deleted ones with `include_deleted=true`."""
    user = await require_user(request)
    rows, total, nxt = await strategies.page(
        request.app.state.pool,
        user.id,
        limit=paging.limit(request),
        cursor=paging.cursor(request),
        include_deleted=paging.flag(request, "include_deleted"),
    )
    items = [strategies.wire(r) for r in rows]
    headers = paging.headers(request, total, nxt)
    if _v1(request):
        return JSON({"items": items, "total": total, "next_cursor": nxt}, headers=headers)
    return JSON(items, headers=headers)


async def get_strategy(request: Request) -> Response:
    """One strategy, deleted or not."""
    return JSON(strategies.wire(await _owned(request)))


async def update(request: Request) -> Response:
    """PUT replaces the strategy and its defaults; PATCH changes only the fields sent."""
    row = await _owned(request)
    body = strategies.parse(await request.body())
    state, whole = request.app.state, request.method == "PUT"
    row = await strategies.update(state.pool, state.store, row, body, replace=whole)
    return JSON(strategies.wire(row))


async def delete(request: Request) -> Response:
    """Mark deleted: it stays readable for the runs that used it and starts no new run."""
    row = await _owned(request)
    await strategies.delete(request.app.state.pool, row)
    return Response(status_code=204)


def _mount(base: str) -> list[Route]:
    one = f"{base}/{{strategy_id}}"
    return [
        Route(base, create, methods=["POST"]),
        Route(base, list_strategies, methods=["GET"]),
        Route(one, get_strategy, methods=["GET"]),
        Route(one, update, methods=["PUT", "PATCH"]),
        Route(one, delete, methods=["DELETE"]),
    ]


routes = [*_mount("/api/v2/strategies"), *_mount("/api/v1/strategies")]
