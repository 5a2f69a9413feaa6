"""Readiness, the symbol list and the signal catalog."""

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import describe_signals
from protocol.times import iso_ns
from server.auth import require_user
from server.responses import JSON


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
    """What can be backtested: name, aliases, stored and coarser resolutions, range, calendar."""
    await require_user(request)
    infos = await asyncio.to_thread(request.app.state.store.symbols)
    items = [
        {
            "name": i.name,
            "aliases": i.aliases,
            "resolutions": i.resolutions,
            "base_resolution": i.base_resolution,
            "first_bar": iso_ns(i.first_ts, "auto"),
            "last_bar": iso_ns(i.last_ts, "auto"),
            "bar_count": i.bar_count,
            "gaps": i.gaps,
            "calendar": i.calendar,
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


async def templates(request: Request) -> Response:
    """The template catalog: params as JSON Schema, whether several symbols may be traded."""
    await require_user(request)
    from engine import describe_templates

    items = describe_templates()
    return JSON({"items": items, "total": len(items)})


async def openapi(_request: Request) -> Response:
    """The OpenAPI 3.1 document (no key needed)."""
    from server.openapi import document

    return JSON(document())


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/api/v2/symbols", symbols, methods=["GET"]),
    Route("/api/v2/signals", signals, methods=["GET"]),
    Route("/api/v2/templates", templates, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
