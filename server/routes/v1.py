"""The seed 001 surface: synchronous runs, bulk runs, results, trades, archive and history.

A v1 run is an ordinary run (same table, events and results), so v2 reads, streams and archives
it too. Synchronous requests take worker slots of this node at once or answer 503 with
`Retry-After` (see Dispatcher.reserve); a client that disconnects does not stop its runs:
they finish and stay in the history.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from protocol import v1
from protocol.enums import RESOLUTIONS, RunState
from protocol.errors import ApiError, ErrorCode, insufficient_credits
from server import listings, offload, paging, runs, stored_results, strategies
from server import v1 as translate
from server.auth import require_user
from server.events import iso
from server.jobs import Busy, Dispatcher
from server.responses import JSON
from server.translate import Saved, reject_nul

RETRY_AFTER = "2"
log = logging.getLogger("barstream.v1")


def _busy(what: str) -> ApiError:
    return ApiError(
        503, ErrorCode.BUSY,
        f"every worker slot synchronous runs may use is busy; retry after {RETRY_AFTER} s,"
        f" send {what} one at a time, or use the async POST /api/v2/backtests",
        headers={"Retry-After": RETRY_AFTER},
    )  # fmt: skip


# ---- reading runs -------------------------------------------------------------------------


async def _row(request: Request) -> asyncpg.Record:
    user = await require_user(request)
    run_id = request.path_params["backtest_id"]
    row = await runs.get(request.app.state.pool, run_id, user.id)
    if row is None:
        raise ApiError(
            404, ErrorCode.NOT_FOUND, f"backtest {run_id} not found", field="backtest_id"
        )
    return row


async def _results(pool: asyncpg.Pool, run_id: uuid.UUID) -> dict[str, Any] | None:
    """A completed run's metrics and open positions (its trades are read by page)."""
    row = await pool.fetchrow(
        "SELECT body->'metrics' AS metrics, body->'open_positions' AS open_positions"
        " FROM results WHERE run_id = $1",
        run_id,
    )
    return None if row is None else dict(row)


def _seconds(row: asyncpg.Record) -> float | None:
    if row["started_at"] is None or row["finished_at"] is None:
        return None
    return round((row["finished_at"] - row["started_at"]).total_seconds(), 3)


def _summary(row: asyncpg.Record, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """What a v1 result and a history item share."""
    config = row["config"]
    symbols = config.get("symbols") or []
    return {
        "success": row["state"] == RunState.COMPLETED,
        "backtest_id": str(row["id"]),
        "status": row["state"],
        "metrics": v1.metrics(metrics),
        "execution_time_seconds": _seconds(row),
        "trade_count": v1.trade_count(metrics),
        "asset": symbols[0] if symbols else None,
        "interval": config.get("resolution"),
        "start_date": config.get("start"),
        "end_date": config.get("end"),
        "strategy_name": (config.get("strategy") or {}).get("name") or config.get("template"),
        "strategy_id": config.get("strategy_id"),
        "created_at": iso(row["created_at"]),
        "finished_at": iso(row["finished_at"]),
        "archived": row["archived"],
        "archived_at": iso(row["archived_at"]),
        "error": row["error"],
    }


async def _full(pool: asyncpg.Pool, row: asyncpg.Record) -> dict[str, Any]:
    """A run as seed 001 returns it: summary, full trade history (its stored rows joined as they
    are), resolved config."""
    body = await _results(pool, row["id"]) if row["state"] == RunState.COMPLETED else None
    out = _summary(row, body["metrics"] if body else None)
    trades = await stored_results.whole(pool, row["id"], "round_trips") if body else b"[]"
    out["trades"] = orjson.Fragment(trades)
    out["open_positions"] = (body["open_positions"] or []) if body else []
    out["config"] = row["config"]
    return out


async def get_backtest(request: Request) -> Response:
    """A stored run with its full trade history (any surface's run, any state)."""
    row = await _row(request)
    return JSON(await _full(request.app.state.pool, row))


async def trades(request: Request) -> Response:
    """A completed run's closed trades, in order, paged (`limit` 1-1000, `cursor`)."""
    row = await _row(request)
    if row["state"] != RunState.COMPLETED:
        raise ApiError(
            409, ErrorCode.RUN_NOT_FINISHED,
            f"backtest {row['id']} is {row['state']}; trades exist once it is completed",
            field="backtest_id",
        )  # fmt: skip
    pool = request.app.state.pool
    start, size = listings.offset(request), listings.limit(request, default=100)
    total = (await stored_results.totals(pool, row["id"]))["round_trips"]
    page = await stored_results.page(pool, row["id"], "round_trips", start, size)
    nxt = listings.next_cursor(start, size, total)
    headers = paging.headers(request, total, nxt)
    out = {"success": True, "backtest_id": str(row["id"]), "trades": orjson.Fragment(page),
           "total": total, "next_cursor": nxt}  # fmt: skip
    return JSON(out, headers=headers)


async def _archive(request: Request, archived: bool) -> Response:
    user = await require_user(request)
    run_id = request.path_params["backtest_id"]
    async with request.app.state.pool.acquire() as conn:
        row = await runs.set_archived(conn, run_id, user.id, archived)
    if row is None:
        raise ApiError(
            404, ErrorCode.NOT_FOUND, f"backtest {run_id} not found", field="backtest_id"
        )
    return JSON({"success": True, "backtest_id": str(row["id"]), "archived": row["archived"],
                 "archived_at": iso(row["archived_at"])})  # fmt: skip


async def archive(request: Request) -> Response:
    """Hide a run from the default history (reversible)."""
    return await _archive(request, True)


async def unarchive(request: Request) -> Response:
    """Show an archived run in the default history again."""
    return await _archive(request, False)


async def history(request: Request) -> Response:
    """The caller's runs of every surface, newest first, without archived ones by default."""
    user = await require_user(request)
    pool = request.app.state.pool
    rows, total, nxt = await runs.page(
        pool, user.id, state=paging.state(request), limit=paging.limit(request), cursor=paging.cursor(request),
        include_archived=paging.flag(request, "include_archived"),
    )  # fmt: skip
    found = await pool.fetch(
        "SELECT run_id, body->'metrics' AS m FROM results WHERE run_id = ANY($1::uuid[])",
        [r["id"] for r in rows if r["state"] == RunState.COMPLETED],
    )
    metrics = {r["run_id"]: r["m"] for r in found}
    items = [_summary(r, metrics.get(r["id"])) for r in rows]
    body = {"items": items, "total": total, "next_cursor": nxt}
    return JSON(body, headers=paging.headers(request, total, nxt))


# ---- running ------------------------------------------------------------------------------


def _warnings(parsed: translate.Parsed) -> list[str]:
    return [
        f"{k} is deprecated (defaults from trading_defaults.json); tune cooldown_config instead"
        for k in parsed.deprecated
    ]


def _deprecation(parsed: translate.Parsed) -> dict[str, str]:
    return {"Deprecation": "true"} if parsed.deprecated else {}


async def _saved(request: Request, user_id: uuid.UUID, sid: str | None) -> Saved | None:
    return None if sid is None else await strategies.for_run(request.app.state.pool, sid, user_id)


async def run_backtest(request: Request) -> Response:
    """Run one backtest synchronously: 200 with seed 001's result, or 503 when busy."""
    user = await require_user(request)
    parsed = translate.parse(await request.body(), v1.RunBody)
    body = parsed.body
    _check_sources(body.strategy_json, body.strategy_id, ("strategy_json", "strategy_id"))
    saved = await _saved(request, user.id, body.strategy_id)
    asset = body.asset or (saved.asset if saved else translate.strategy_asset(body.strategy_json))
    if asset is None:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR,
            "asset: Field required (optional only when strategy_id names a strategy with an"
            " asset)", field="asset",
        )  # fmt: skip
    store = request.app.state.store
    config = await offload.run(
        translate.build, parsed, store, saved, asset=asset, interval=body.interval,
        strategy=body.strategy_json,
    )  # fmt: skip
    dispatcher: Dispatcher = request.app.state.dispatcher
    await _check_credits(request, user.id)
    try:
        await dispatcher.reserve()
    except Busy:
        raise _busy("backtests") from None
    try:
        run_id, task = await dispatcher.start_reserved(user.id, config)
    except BaseException as exc:
        dispatcher.release(1)
        if isinstance(exc, runs.TooManyActive):
            raise _busy("backtests") from exc
        if isinstance(exc, runs.InsufficientCredits):
            raise insufficient_credits(exc.balance, exc.cost) from exc
        raise
    task.add_done_callback(lambda _: dispatcher.release(1))
    await asyncio.shield(task)
    row = await runs.get(request.app.state.pool, str(run_id), user.id)
    out = await _full(request.app.state.pool, row)
    out["warnings"] = _warnings(parsed)
    status = {RunState.COMPLETED: 200, RunState.CANCELLED: 409}.get(row["state"], 500)
    return JSON(out, status_code=status, headers=_deprecation(parsed))


async def _check_credits(request: Request, user_id: uuid.UUID) -> None:
    """402 before taking a slot when the balance cannot pay for one run (a busy server would
    otherwise answer 503 to a request that could never run)."""
    cost = request.app.state.settings.run_credits
    try:
        await runs.check_credits(request.app.state.pool, user_id, cost)
    except runs.InsufficientCredits as exc:
        raise insufficient_credits(exc.balance, exc.cost) from exc


def _check_sources(a: Any, b: Any, names: tuple[str, str]) -> None:
    """Exactly one of two strategy sources: both is a 400 (seed 001), neither a 422."""
    if a is not None and b is not None:
        problem, status = f"give {names[0]} or {names[1]}, not both", 400
    elif a is None and b is None:
        problem, status = f"{names[0]} or {names[1]} is required", 422
    else:
        return
    raise ApiError(
        status, ErrorCode.VALIDATION_ERROR, problem, field=names[0],
        details=[{"field": f, "message": problem} for f in names],
    )  # fmt: skip


def _finest(spec: Any) -> str:
    """A bulk strategy's interval when the request sets none: its finest signal timeframe."""
    seconds = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
    found = []
    if isinstance(spec, dict):
        for group in ("entry", "exit"):
            signals = spec.get(group)
            for sig in signals if isinstance(signals, list) else []:
                tf = sig.get("timeframe") if isinstance(sig, dict) else None
                if isinstance(tf, str) and RESOLUTIONS.get(tf) in seconds:
                    found.append(RESOLUTIONS[tf])
    return min(found, key=seconds.__getitem__) if found else "1h"


async def _prepare(
    request: Request, user_id: uuid.UUID, parsed: translate.Parsed, item: Any, field: str
) -> dict[str, Any]:
    """One bulk strategy's run config; ApiError (named by its index) when it cannot run."""
    body = parsed.body
    saved, spec = None, item
    if body.strategy_ids is not None:
        try:
            saved = await _saved(request, user_id, str(item))
        except ApiError as exc:
            exc.field = field
            raise
        spec = saved.definition if saved else None
    elif not isinstance(item, dict):
        raise ApiError(400, ErrorCode.INVALID_STRATEGY, f"{field}: must be a strategy object",
                       field=field)  # fmt: skip
    else:
        reject_nul(item, field)
    inline = spec if isinstance(spec, dict) else {}
    asset = body.asset or (saved.asset if saved else None) or inline.get("asset")
    if not isinstance(asset, str):
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       f"{field}: no asset (set asset in the request or the strategy)",
                       field=field)  # fmt: skip
    interval = body.interval or _finest(spec)
    try:
        return await offload.run(
            translate.build, parsed, request.app.state.store, saved, asset=asset,
            interval=interval, strategy=None if saved else item,
        )  # fmt: skip
    except ApiError as exc:
        if exc.field and exc.field.startswith("strategy"):
            exc.field = f"{field}.{exc.field.partition('.')[2]}".rstrip(".")
        raise


async def _fetch_once(store: Any, configs: list[dict[str, Any]]) -> int:
    """Materialise each unique (asset, timeframe) once before the runs; return how many."""
    pairs = sorted({(c["symbols"][0], c["interval"]) for c in configs})

    def load() -> None:
        for symbol, interval in pairs:
            info = store.resolve(symbol)
            store.load(symbol, interval, info.first_ts, info.first_ts)  # builds the shared cache

    await asyncio.to_thread(load)
    return len(pairs)


async def _lanes(
    dispatcher: Dispatcher, user_id: uuid.UUID, todo: list[tuple[int, dict]], lanes: int,
    out: dict[int, Any],
) -> None:  # fmt: skip
    """Run `todo` over `lanes` reserved slots, one run per slot at a time; each lane gives its
    slot back when it ends, and one item's fault is that item's result."""
    queue = list(todo)

    async def lane() -> None:
        try:
            while queue:
                i, config = queue.pop(0)
                try:
                    run_id, task = await dispatcher.start_reserved(user_id, config)
                except runs.TooManyActive:
                    out[i] = _busy("fewer strategies")
                    continue
                except runs.InsufficientCredits as exc:
                    out[i] = insufficient_credits(exc.balance, exc.cost)
                    continue
                except Exception:
                    log.exception("bulk: could not start a run")
                    out[i] = ApiError(500, ErrorCode.INTERNAL_ERROR, "the run could not start")
                    continue
                out[i] = run_id
                await task
        finally:
            dispatcher.release(1)  # each lane gives back its own slot when it ends

    await asyncio.gather(*(lane() for _ in range(lanes)))


async def bulk(request: Request) -> Response:
    """Run many strategies over one date range synchronously; one result per strategy."""
    user = await require_user(request)
    started = time.monotonic()
    parsed = translate.parse(await request.body(), v1.BulkBody)
    body = parsed.body
    _check_sources(body.strategy_ids, body.strategy_configs, ("strategy_ids", "strategy_configs"))
    await offload.run(translate.check_shared, body, request.app.state.store)
    key = "strategy_ids" if body.strategy_ids is not None else "strategy_configs"
    items = body.strategy_ids or body.strategy_configs or []
    most = request.app.state.settings.bulk_max
    if len(items) > most:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       f"{key}: at most {most} strategies per bulk request", field=key)  # fmt: skip
    out: dict[int, Any] = {}
    todo = []
    for i, item in enumerate(items):
        try:
            todo.append((i, await _prepare(request, user.id, parsed, item, f"{key}[{i}]")))
        except ApiError as exc:
            out[i] = exc
    fetches = await _fetch_once(request.app.state.store, [c for _, c in todo])
    dispatcher: Dispatcher = request.app.state.dispatcher
    if todo:
        await _check_credits(request, user.id)
        try:
            lanes = await dispatcher.reserve(count=len(todo))
        except Busy:
            raise _busy("bulk requests") from None
        work = asyncio.create_task(_lanes(dispatcher, user.id, todo, lanes, out))
        dispatcher.adopt(work)
        await asyncio.shield(work)
    results = await _bulk_results(request, user.id, items, key, out)
    ok = sum(r["success"] for r in results)
    payload = {
        "success": True, "total": len(items), "succeeded": ok, "failed": len(items) - ok,
        "data_fetches": fetches, "execution_time_seconds": round(time.monotonic() - started, 3),
        "results": results, "warnings": _warnings(parsed),
    }  # fmt: skip
    return JSON(payload, headers=_deprecation(parsed))


async def _bulk_results(
    request: Request, user_id: uuid.UUID, items: list, key: str, out: dict[int, Any]
) -> list[dict[str, Any]]:
    pool = request.app.state.pool
    results = []
    for i, item in enumerate(items):
        ref = {"index": i, **({"strategy_id": str(item)} if key == "strategy_ids" else {})}
        got = out.get(i)
        if isinstance(got, uuid.UUID):
            row = await runs.get(pool, str(got), user_id)
            res = await _results(pool, got) if row["state"] == RunState.COMPLETED else None
            results.append({**ref, **_summary(row, res["metrics"] if res else None)})
            continue
        err = (
            got if isinstance(got, ApiError) else ApiError(500, ErrorCode.INTERNAL_ERROR, "not run")
        )
        name = item.get("name") if isinstance(item, dict) else None
        results.append({**ref, "success": False, "backtest_id": None, "strategy_name": name,
                        "error": err.body()["error"]})  # fmt: skip
    return results


# ---- routes -------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]
CANONICAL = "/api/v1/backtests"
ALIASES = ("/api/v1/backtesting/backtest", "/api/v1/backtesting/backtests")


def _deprecated(handler: Handler, alias: str) -> Handler:
    """The same handler, answering with `Deprecation` and a `Link` to its successor path."""

    def headers(request: Request) -> dict[str, str]:
        # The path as sent (percent-encoded): a header holds Latin-1 only, a path any character.
        successor = CANONICAL + quote(request.url.path[len(alias) :], safe="/")
        return {"Deprecation": "true", "Link": f'<{successor}>; rel="successor-version"'}

    async def wrapped(request: Request) -> Response:
        try:
            response = await handler(request)
        except ApiError as exc:
            exc.headers = {**(exc.headers or {}), **headers(request)}
            raise
        for name, value in headers(request).items():
            old = response.headers.get(name)
            response.headers[name] = f"{old}, {value}" if old and name == "Link" else value
        return response

    return wrapped


_TABLE: list[tuple[str, Handler, str]] = [
    ("", run_backtest, "POST"),
    ("/bulk", bulk, "POST"),
    ("/{backtest_id}", get_backtest, "GET"),
    ("/{backtest_id}/trades", trades, "GET"),
    ("/{backtest_id}/archive", archive, "POST"),
    ("/{backtest_id}/unarchive", unarchive, "POST"),
]

routes = [
    *(Route(CANONICAL + p, h, methods=[m]) for p, h, m in _TABLE),
    *(Route(a + p, _deprecated(h, a), methods=[m]) for a in ALIASES for p, h, m in _TABLE),
    Route("/api/v1/users/me/backtests", history, methods=["GET"]),
]
