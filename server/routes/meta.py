"""Readiness, the symbol list and the signal catalog."""

import asyncio
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.strategy.catalog import describe_signals
from protocol.enums import RESOLUTIONS
from server.auth import require_user
from server.responses import JSON

_NS = 1_000_000_000


def _iso_ns(ns: int) -> str:
    return datetime.fromtimestamp(ns / _NS, UTC).isoformat().replace("+00:00", "Z")


async def healthz(request: Request) -> Response:
    """200 once the database answers and every worker is up; 503 otherwise."""
    state = request.app.state
    checks = {"database": False, "workers": False}
    try:
        checks["database"] = await asyncio.wait_for(state.pool.fetchval("SELECT true"), 2.0)
    except (OSError, TimeoutError, Exception):
        checks["database"] = False
    checks["workers"] = state.workers.alive()
    ok = all(checks.values())
    return JSON({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)


async def symbols(request: Request) -> Response:
    """What can be backtested: name, aliases, resolutions, first and last bar."""
    await require_user(request)
    infos = await asyncio.to_thread(request.app.state.store.symbols)
    wire = [k for k, v in RESOLUTIONS.items() if v is not None]
    items = [
        {
            "name": i.name,
            "aliases": i.aliases,
            "resolutions": wire,
            "base_resolution": i.base_resolution,
            "first_bar": _iso_ns(i.first_ts),
            "last_bar": _iso_ns(i.last_ts),
            "bar_count": i.bar_count,
            "synthetic": i.synthetic,
            "description": i.description,
        }
        for i in infos
    ]
    return JSON({"items": items, "total": len(items)})


async def signals(request: Request) -> Response:
    """The signal catalog with params, defaults, roles and meaning."""
    await require_user(request)
    items = describe_signals()
    return JSON({"items": items, "total": len(items)})


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/api/v2/symbols", symbols, methods=["GET"]),
    Route("/api/v2/signals", signals, methods=["GET"]),
]
