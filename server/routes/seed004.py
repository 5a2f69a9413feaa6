"""The seed 004 surface: signed template jobs at `/v1/backtest/jobs`.

Every request is signed (server.signing) and spends its route's weight from its key's budget.
A job is an ordinary run (`config.surface` = "jobs"), so `/api/v2/backtests/{run_id}` shows and
streams it too; its short `bt_…` id and its UUID both name it here.
"""

import asyncio
from typing import Any

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protocol import seed004
from protocol.enums import TERMINAL_STATES, RunState
from protocol.errors import ApiError, ErrorCode, insufficient_credits
from server import offload, paging, runs, stored_results
from server import seed004 as translate
from server.auth import User
from server.events import iso
from server.responses import JSON

_V2_NAMES = {"resolution": "timeframe", "template": "template_id", "template_params": "params"}


def _job_field(field: str) -> str:
    head, _, tail = field.partition(".")
    if head == "symbols" and tail.isdigit():
        return f"symbols[{tail}]"
    if head == "execution" and tail:
        return tail
    return _V2_NAMES.get(head, head) + (f".{tail}" if tail and head in _V2_NAMES else "")


def _renamed(err: ApiError) -> ApiError:
    """A canonical error with the job's field names (`symbols[0]`, `params.grid_levels`)."""
    if err.field is None:
        return err
    field = _job_field(err.field)
    message = err.message
    if message.startswith(f"{err.field}:"):
        message = f"{field}:{message[len(err.field) + 1 :]}"
    return ApiError(err.status, err.code, message, field=field, headers=err.headers)


def _result(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a done job's object carries: every metric (the full result is at …/result)."""
    return None if metrics is None else {"metrics": metrics}


async def _wire(pool: asyncpg.Pool, row: asyncpg.Record) -> dict[str, Any]:
    body = None
    if row["state"] == RunState.COMPLETED:
        body = await pool.fetchval(
            "SELECT body->'metrics' FROM results WHERE run_id = $1", row["id"]
        )
    config = row["config"]
    echo = orjson.loads(config["job_echo"]) if "job_echo" in config else config.get("job", {})
    return seed004.job(
        row["short_id"], str(row["id"]), row["state"], echo,
        submitted_at=iso(row["created_at"]), started_at=iso(row["started_at"]),
        finished_at=iso(row["finished_at"]), progress=row["progress"],
        result=_result(body), error=row["error"],
    )  # fmt: skip


async def _owned(request: Request, user: User) -> asyncpg.Record:
    job_id = request.path_params["job_id"]
    pool = request.app.state.pool
    if seed004.JOB_ID.match(job_id):
        row = await runs.get_short(pool, job_id, user.id)
    else:
        row = await runs.get(pool, job_id, user.id)
    if row is None or (row["config"] or {}).get("surface") != translate.SURFACE:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"job {job_id} not found", field="id")
    return row


async def create(request: Request) -> Response:
    """Validate and queue a job; 201 with the job object (status queued)."""
    user = await translate.signed_user(request, seed004.WEIGHTS["create"])
    body = translate.parse(await request.body())
    pool, settings = request.app.state.pool, request.app.state.settings
    stored = await translate.stored_config(pool, body.strategy_id, user) if body.strategy_id else {}
    try:
        config = await offload.run(
            translate.build, body, stored, request.app.state.store, translate.now()
        )
    except ApiError as exc:
        raise _renamed(exc) from exc
    if body.strategy_id:
        config["job"]["strategy_id"] = config["strategy_id"] = body.strategy_id
        config["job_echo"] = orjson.dumps(config["job"]).decode()
    for _ in range(3):  # a short id clash (1 in 4 billion) takes another
        try:
            async with pool.acquire() as conn:
                row = await runs.create(
                    conn, user.id, config, max_active=settings.max_active_runs,
                    max_surface=settings.max_active_jobs, short_id=translate.new_short_id(),
                    cost=settings.run_credits,
                )  # fmt: skip
            break
        except asyncpg.UniqueViolationError:
            continue
        except runs.InsufficientCredits as exc:
            raise insufficient_credits(exc.balance, exc.cost) from exc
        except runs.TooManyActive as exc:
            raise ApiError(
                429, ErrorCode.RATE_LIMITED,
                f"you already have {exc.args[0]} jobs queued or running (at most"
                f" {settings.max_active_jobs}); wait for one to finish or cancel one",
                headers={"Retry-After": "5"},
            ) from exc  # fmt: skip
    request.app.state.dispatcher.wake()
    job = await _wire(pool, row)
    return JSON(job, status_code=201, headers={"Location": f"/v1/backtest/jobs/{job['id']}"})


async def get_job(request: Request) -> Response:
    """One job."""
    user = await translate.signed_user(request, seed004.WEIGHTS["read"])
    return JSON(await _wire(request.app.state.pool, await _owned(request, user)))


async def result(request: Request) -> Response:
    """A done job's full result: metrics, equity, fills, round trips, exposure; 409 before."""
    user = await translate.signed_user(request, seed004.WEIGHTS["read"])
    row = await _owned(request, user)
    if row["state"] != RunState.COMPLETED:
        status = seed004.STATUS[row["state"]]
        raise ApiError(409, ErrorCode.INVALID_STATE,
                       f"job {row['short_id']} is {status}; its result exists once it is done")  # fmt: skip
    body = await stored_results.full(request.app.state.pool, row["id"])
    first = {"id": orjson.dumps(row["short_id"]), "status": b'"done"',
             "run_id": orjson.dumps(str(row["id"]))}  # fmt: skip
    return Response(stored_results.splice(first, body or b"{}"), media_type="application/json")


_STATUS_TO_STATE = {v: k for k, v in seed004.STATUS.items()}


async def list_jobs(request: Request) -> Response:
    """The caller's jobs, newest first: `{"items", "total", "next_cursor"}`, paged."""
    user = await translate.signed_user(request, seed004.WEIGHTS["read"])
    status = request.query_params.get("status")
    if status is not None and status not in _STATUS_TO_STATE:
        raise ApiError(400, ErrorCode.VALIDATION_ERROR,
                       f"status must be one of {', '.join(_STATUS_TO_STATE)}", field="status")  # fmt: skip
    pool = request.app.state.pool
    rows, total, nxt = await runs.page(
        pool, user.id, state=_STATUS_TO_STATE.get(status or ""), limit=paging.limit(request),
        cursor=paging.cursor(request), include_archived=True, surface=translate.SURFACE,
    )  # fmt: skip
    items = [await _wire(pool, r) for r in rows]
    body = {"items": items, "total": total, "next_cursor": nxt}
    return JSON(body, headers=paging.headers(request, total, nxt))


async def cancel(request: Request) -> Response:
    """Cancel a job: queued ones at once, running ones between chunks (waited for up to 5 s);
    the job object after; 409 INVALID_STATE once it has ended."""
    user = await translate.signed_user(request, seed004.WEIGHTS["cancel"])
    row = await _owned(request, user)
    pool = request.app.state.pool
    async with pool.acquire() as conn:
        row, took = await runs.request_cancel(conn, row["id"])
    if not took:
        status = seed004.STATUS[row["state"]]
        raise ApiError(409, ErrorCode.INVALID_STATE, f"job {row['short_id']} is already {status}")
    for _ in range(50):
        if row["state"] in TERMINAL_STATES:
            break
        await asyncio.sleep(0.1)
        row = await runs.get(pool, str(row["id"]), user.id)
    return JSON(await _wire(pool, row))


routes = [
    Route("/v1/backtest/jobs", create, methods=["POST"]),
    Route("/v1/backtest/jobs", list_jobs, methods=["GET"]),
    Route("/v1/backtest/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/v1/backtest/jobs/{job_id}/result", result, methods=["GET"]),
    Route("/v1/backtest/jobs/{job_id}/cancel", cancel, methods=["POST"]),
]
