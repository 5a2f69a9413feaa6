"""The canonical v2 runs API: create, list, get, results, cancel."""

import asyncio

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protocol.enums import RunState
from protocol.errors import ApiError, ErrorCode
from server import runs
from server.auth import require_user
from server.events import iso
from server.responses import JSON
from server.translate import build_config

_STATES = {s.value for s in RunState}


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


async def create(request: Request) -> Response:
    """Validate and queue a run; 201 with its status."""
    user = await require_user(request)
    body = await request.body()
    store = request.app.state.store
    config = await asyncio.to_thread(build_config, body, store)
    limit = request.app.state.settings.max_active_runs
    try:
        async with request.app.state.pool.acquire() as conn:
            row = await runs.create(conn, user.id, config, max_active=limit)
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


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "50")
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 200:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, "limit must be an integer from 1 to 200", field="limit"
        )
    return limit


async def list_runs(request: Request) -> Response:
    """The caller's runs, newest first: an array, paged by a `Link: <…>; rel="next"` header
    (absent on the last page), with the total in `X-Total-Count`."""
    user = await require_user(request)
    q = request.query_params
    state = q.get("state") or None
    if state is not None and state not in _STATES:
        raise ApiError(
            422,
            ErrorCode.VALIDATION_ERROR,
            f"state must be one of {', '.join(sorted(_STATES))}",
            field="state",
        )
    cursor = None
    if q.get("cursor"):
        try:
            cursor = runs.decode_cursor(q["cursor"])
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(
                422, ErrorCode.VALIDATION_ERROR, "cursor is not valid", field="cursor"
            ) from exc
    archived = q.get("include_archived", "false").lower() in ("1", "true", "yes")
    rows, total, nxt = await runs.page(
        request.app.state.pool,
        user.id,
        state=state,
        limit=_limit(request),
        cursor=cursor,
        include_archived=archived,
    )
    headers = {"X-Total-Count": str(total)}
    if nxt is not None:
        headers["Link"] = f'<{request.url.include_query_params(cursor=nxt)}>; rel="next"'
    return JSON([runs.status(r) for r in rows], headers=headers)


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
