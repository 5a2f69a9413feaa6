"""JSON responses written with orjson, and the error handlers that produce them."""

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from protocol import seed003, seed004, v1
from protocol.errors import ApiError, ErrorCode


class JSON(Response):
    """A JSON response rendered by orjson (NaN and infinities are never produced)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def render(path: str, err: ApiError) -> Response:
    """An error in the shape of the surface the request to `path` was made to."""
    if path.startswith("/api/v1/"):
        body = v1.error_body(ErrorCode(err.code), err.message, err.field, err.details)
        return JSON(body, status_code=err.status, headers=err.headers)
    if path.startswith(seed003.PREFIX):
        code, status = seed003.to_seed003(err.code, err.status)
        body = seed003.error_body(code, err.message, err.field, err.details)
        return JSON(body, status_code=status, headers=err.headers)
    if path.startswith("/v1/"):
        status, body = seed004.error_body(ErrorCode(err.code), err.message, err.field)
        return JSON(body, status_code=status, headers=err.headers)
    return JSON(err.body(), status_code=err.status, headers=err.headers)


async def api_error(request: Request, exc: Exception) -> Response:
    """Render an ApiError as its JSON body."""
    assert isinstance(exc, ApiError)
    return render(request.url.path, exc)


_HTTP_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}


def allowed_methods(request: Request) -> str:
    """The methods the request's path takes: those of every route with the path (a path may
    have one route per method, and Starlette's own `Allow` names only the first route's); a
    literal path beats a template (`…/bulk` is POST only, though `…/{backtest_id}` matches it)."""
    found: dict[int, set[str]] = {}
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                found.setdefault(len(route.param_convertors), set()).update(route.methods)
    methods = found[min(found)] if found else set()
    order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    return ", ".join(sorted(methods, key=lambda m: (order.index(m) if m in order else 9, m)))


async def http_error(request: Request, exc: Exception) -> Response:
    """Render Starlette's own errors (unknown route, wrong method) in the same JSON shape; a 405
    keeps its `Allow` header (RFC 9110), naming every method of the path."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.INTERNAL_ERROR)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
    err = ApiError(exc.status_code, code, str(exc.detail), headers=headers or None)
    return render(request.url.path, err)


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """A database outage: 503 with Retry-After, logged once per outage (server.outage)."""
    from server.outage import RETRY_AFTER

    request.app.state.outage.note(exc)
    err = ApiError(
        503, ErrorCode.DATABASE_UNAVAILABLE,
        "the database is unavailable; retry shortly", headers={"Retry-After": RETRY_AFTER},
    )  # fmt: skip
    return render(request.url.path, err)


async def server_error(request: Request, _exc: Exception) -> Response:
    """Render an unexpected failure without leaking its details."""
    return render(
        request.url.path, ApiError(500, ErrorCode.INTERNAL_ERROR, "internal server error")
    )
