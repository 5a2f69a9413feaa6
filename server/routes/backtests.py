"""The canonical v2 runs API: create, list, get, results, cancel."""

from collections.abc import Awaitable, Callable

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protocol.enums import RunState
from protocol.errors import ApiError, ErrorCode, insufficient_credits
from server import listings, offload, paging, runs, stored_results, strategies
from server.auth import require_user
from server.events import iso
from server.responses import JSON
from server.translate import config_for, parse_create


async def _owned_run(request: Request) -> asyncpg.Record:
    """The caller's run named in the path, or 404 (also when it is someone else's)."""
    user = await require_user(request)
    run_id = request.path_params["run_id"]
    row = await runs.get(request.app.state.pool, run_id, user.id)
    if row is None:
        raise _not_found(run_id)
    return row


def _not_found(run_id: str) -> ApiError:
    return ApiError(404, ErrorCode.NOT_FOUND, f"backtest {run_id} not found", field="run_id")


def _creates(request: Request) -> runs.Creates:
    """The app's batcher of run creates (made on first use)."""
    state = request.app.state
    if getattr(state, "creates", None) is None:
        state.creates = runs.Creates(state.pool)
    return state.creates


async def create(request: Request) -> Response:
    """Validate and queue a run; 201 with its status."""
    user = await require_user(request)
    req = parse_create(await request.body())
    saved = None
    if req.strategy_id is not None:
        saved = await strategies.for_run(request.app.state.pool, req.strategy_id, user.id)
    config = await offload.run(config_for, req, request.app.state.store, saved)
    settings = request.app.state.settings
    try:
        row = await _creates(request).create(
            user.id, config, max_active=settings.max_active_runs, cost=settings.run_credits
        )
    except runs.InsufficientCredits as exc:
        raise insufficient_credits(exc.balance, exc.cost) from exc
    except runs.TooManyActive as exc:
        raise ApiError(
            429,
            ErrorCode.TOO_MANY_RUNS,
            f"you have {exc.args[0]} queued or running backtests, the most allowed at once;"
            " retry when one has finished",
            headers={"Retry-After": "5"},
        ) from exc
    request.app.state.dispatcher.wake()
    status = runs.status(row)
    return JSON(
        status, status_code=201, headers={"Location": f"/api/v2/backtests/{status['run_id']}"}
    )


async def list_runs(request: Request) -> Response:
    """The caller's runs, newest first: an array, paged by a `Link: <…>; rel="next"` header
    (absent on the last page), with the total in `X-Total-Count`."""
    user = await require_user(request)
    rows, total, nxt = await runs.page(
        request.app.state.pool,
        user.id,
        state=paging.state(request),
        limit=paging.limit(request),
        cursor=paging.cursor(request),
        include_archived=paging.flag(request, "include_archived"),
    )
    return JSON([runs.status(r) for r in rows], headers=paging.headers(request, total, nxt))


async def get_run(request: Request) -> Response:
    """One run's status."""
    return JSON(runs.status(await _owned_run(request)))


async def _completed(request: Request) -> asyncpg.Record:
    """The caller's completed run named in the path; 409 before it completes."""
    row = await _owned_run(request)
    if row["state"] != RunState.COMPLETED:
        raise ApiError(
            409,
            ErrorCode.RUN_NOT_FINISHED,
            f"backtest {row['id']} is {row['state']}; results exist only once it is completed",
            field="run_id",
        )
    return row


async def results(request: Request) -> Response:
    """Metrics, equity, exposure and logs of a completed run, with the first page (`limit`,
    default 500) of its round trips and fills and, in `paging`, each listing's total and the
    link to its next page; 409 before."""
    row = await _completed(request)
    run_id, pool = row["id"], request.app.state.pool
    size = listings.limit(request, default=stored_results.PAGE_ROWS)
    head = await stored_results.head_text(pool, run_id)
    totals = await stored_results.totals(pool, run_id)
    logs = await pool.fetch(
        "SELECT ts, data FROM events WHERE run_id = $1 AND type = 'log' ORDER BY id", run_id
    )
    first = {
        "run_id": orjson.dumps(str(run_id)),
        "logs": orjson.dumps([{"timestamp": iso(r["ts"]), **r["data"]} for r in logs]),
    }
    pages = {}
    for kind in stored_results.LISTINGS:
        first[kind] = await stored_results.page(pool, run_id, kind, 0, size)
        cursor = listings.next_cursor(0, size, totals[kind])
        path = f"/api/v2/backtests/{run_id}/{kind}"
        pages[kind] = {"total": totals[kind], "count": min(size, totals[kind]),
                       "next": listings.next_link(request, path, cursor, size)}  # fmt: skip
    first["paging"] = orjson.dumps(pages)
    body = stored_results.splice(first, head or "{}")
    return Response(body, media_type="application/json")


def _listing(kind: str, what: str) -> Callable[[Request], Awaitable[Response]]:
    """The route serving one stored listing (`round_trips` or `trades`) a page at a time."""

    async def listing(request: Request) -> Response:
        row = await _completed(request)
        pool = request.app.state.pool
        start = listings.offset(request)
        size = listings.limit(request, default=stored_results.PAGE_ROWS)
        total = (await stored_results.totals(pool, row["id"]))[kind]
        body = await stored_results.page(pool, row["id"], kind, start, size)
        headers = paging.headers(request, total, listings.next_cursor(start, size, total))
        return Response(body, media_type="application/json", headers=headers)

    listing.__name__ = f"list_{kind}"
    listing.__doc__ = (
        f"A completed run's {what}, in order: an array of at most `limit` (1-1000, default"
        ' 500), paged by `Link: <…>; rel="next"` (absent on the last page) with the total in'
        " `X-Total-Count`; 409 before it completes."
    )
    return listing


async def cancel(request: Request) -> Response:
    """Cancel a queued run now or a running one between chunks; 202 with its status."""
    row = await _owned_run(request)
    run_id, pool = str(row["id"]), request.app.state.pool
    async with pool.acquire() as conn:
        row, took_effect = await runs.request_cancel(conn, row["id"])
    if not took_effect:
        raise ApiError(
            409,
            ErrorCode.RUN_FINISHED,
            f"backtest {run_id} is already {row['state']}",
            field="run_id",
        )
    return JSON(runs.status(row), status_code=202)


async def _set_archived(request: Request, archived: bool) -> Response:
    user = await require_user(request)
    run_id = request.path_params["run_id"]
    row = await runs.set_archived(request.app.state.pool, run_id, user.id, archived)
    if row is None:
        raise _not_found(run_id)
    return JSON(runs.status(row))


async def archive(request: Request) -> Response:
    """Hide a run from the default list (idempotent: the first archived_at stays); 200."""
    return await _set_archived(request, True)


async def unarchive(request: Request) -> Response:
    """Bring an archived run back to the default list (idempotent); 200 with its status."""
    return await _set_archived(request, False)


routes = [
    Route("/api/v2/backtests", create, methods=["POST"]),
    Route("/api/v2/backtests", list_runs, methods=["GET"]),
    Route("/api/v2/backtests/{run_id}", get_run, methods=["GET"]),
    Route("/api/v2/backtests/{run_id}/results", results, methods=["GET"]),
    Route(
        "/api/v2/backtests/{run_id}/round_trips",
        _listing("round_trips", "closed round trips"),
        methods=["GET"],
    ),
    Route("/api/v2/backtests/{run_id}/trades", _listing("trades", "fills"), methods=["GET"]),
    Route("/api/v2/backtests/{run_id}/cancel", cancel, methods=["POST"]),
    Route("/api/v2/backtests/{run_id}/archive", archive, methods=["POST"]),
    Route("/api/v2/backtests/{run_id}/unarchive", unarchive, methods=["POST"]),
]
