"""The seed 003 surface: submit a score-strategy backtest, then poll it by id.

Each request is authenticated (`x-api-key`, or `Authorization: Bearer`), then counted against
its key's budget of `BARSTREAM_PUBLIC_RATE_PER_MINUTE` requests in any sliding minute. A run made
here is an ordinary run: `/api/v2/backtests/{id}` shows, streams and archives it.
"""

import hashlib
from decimal import Decimal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protocol.seed003 import Code
from server import credits, offload, paging, runs, stored_results
from server import seed003 as dialect
from server.auth import User, key_from, require_user
from server.events import iso
from server.ratelimit import WeightLimiter
from server.responses import JSON


async def _caller(request: Request) -> User:
    """The authenticated user, once their key's request budget allows this request."""
    user = await require_user(request)
    state = request.app.state
    limiter = getattr(state, "seed003_limiter", None)
    if limiter is None:
        limiter = state.seed003_limiter = WeightLimiter(state.settings.public_rate_per_minute)
    key = hashlib.sha256((key_from(request) or "").encode()).hexdigest()
    wait = limiter.take(key)
    if wait is not None:
        raise dialect.error(
            429, Code.RATE_LIMITED,
            f"more than {limiter.budget} requests in a minute with this key; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )  # fmt: skip
    return user


def _num(value: Decimal) -> str:
    """A credit amount without trailing zeros: 1, 0.5, 1200."""
    return f"{value.normalize():f}"


async def submit(request: Request) -> Response:
    """Check and queue a score-strategy run; 200 with status "Running"."""
    user = await _caller(request)
    state = request.app.state
    config = await offload.run(dialect.build, await request.body(), state.store)
    cost = state.settings.run_credits
    try:
        async with state.pool.acquire() as conn:
            row = await credits.create_paid_run(
                conn, user.id, config, cost=cost, max_active=state.settings.max_active_runs
            )
    except credits.InsufficientCredits as exc:
        raise dialect.error(
            402, Code.INSUFFICIENT_CREDITS,
            f"a backtest costs {_num(exc.cost)} credits and your balance is {_num(exc.balance)}:"
            " ask the server's operator for credits (barstream credits grant)",
        ) from exc  # fmt: skip
    except runs.TooManyActive as exc:
        raise dialect.error(
            429, Code.RATE_LIMITED,
            f"you have {exc.args[0]} backtests running, the most allowed at once; retry when one"
            " has finished", headers={"Retry-After": "5"},
        ) from exc  # fmt: skip
    state.dispatcher.wake()
    body = dialect.submitted(row)
    return JSON(body, headers={"Location": f"/api/public/v1/backtest/{body['id']}"})


async def fetch(request: Request) -> Response:
    """A run's status and, once completed, its R results (trades with includeTrades=true)."""
    user = await _caller(request)
    include = paging.flag(request, "includeTrades")  # a bad value: 400 invalid_payload
    run_id, pool = request.path_params["id"], request.app.state.pool
    row = await runs.get(pool, run_id, user.id)
    if row is None:
        raise dialect.error(404, Code.NOT_FOUND, f"backtest {run_id} not found", field="id")
    if not dialect.is_score(row["config"]):
        raise dialect.error(
            404, Code.NOT_FOUND,
            f"backtest {run_id} is not a score-strategy backtest; read it at"
            f" /api/v2/backtests/{run_id}", field="id",
        )  # fmt: skip
    logs = await pool.fetch(
        "SELECT ts, data FROM events WHERE run_id = $1 AND type = 'log' ORDER BY id", row["id"]
    )
    lines = [{"timestamp": iso(r["ts"]), **r["data"]} for r in logs]
    results = None
    if row["state"] == "completed":
        text = await pool.fetchval(
            "SELECT jsonb_build_object('score', body->'score')::text FROM results"
            " WHERE run_id = $1",
            row["id"],
        )
        results = orjson.loads(text) if text else None
        if results is not None and include and results.get("score"):
            # seed 003 lists every trade in full: its records join the stored round trips
            trips = await stored_results.whole(pool, row["id"], "round_trips")
            results["round_trips"] = orjson.loads(trips)
    return JSON(dialect.view(row, lines, results, include))


routes = [
    Route("/api/public/v1/backtest", submit, methods=["POST"]),
    Route("/api/public/v1/backtest/{id}", fetch, methods=["GET"]),
]
