"""The canonical v2 runs API: create, list, get, results, cancel."""

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protocol.enums import RunState
from protocol.errors import ApiError, ErrorCode, insufficient_credits
from server import offload, paging, runs, strategies
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


async def results(request: Request) -> Response:
    """Metrics, equity, trades, exposure and logs of a completed run; 409 before."""
    row = await _owned_run(request)
    run_id, pool = str(row["id"]), request.app.state.pool
    if row["state"] != RunState.COMPLETED:
        raise ApiError(
            409,
            ErrorCode.RUN_NOT_FINISHED,
            f"backtest {run_id} is {row['state']}; results exist only once it is completed",
            field="run_id",
        )
    body = await pool.fetchval("SELECT body::text FROM results WHERE run_id = $1", row["id"])
    logs = await pool.fetch(
        "SELECT ts, data FROM events WHERE run_id = $1 AND type = 'log' ORDER BY id", row["id"]
    )
    head = {"run_id": run_id, "logs": [{"timestamp": iso(r["ts"]), **r["data"]} for r in logs]}
    return Response(orjson.dumps({**head, **orjson.loads(body)}), media_type="application/json")


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
    Route("/api/v2/backtests/{run_id}/cancel", cancel, methods=["POST"]),
    Route("/api/v2/backtests/{run_id}/archive", archive, methods=["POST"]),
    Route("/api/v2/backtests/{run_id}/unarchive", unarchive, methods=["POST"]),
]
