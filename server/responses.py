"""JSON responses written with orjson, and the error handlers that produce them."""

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from protocol.errors import ApiError, ErrorCode


class JSON(Response):
    """A JSON response rendered by orjson (NaN and infinities are never produced)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def api_error(_request: Request, exc: Exception) -> Response:
    """Render an ApiError as its JSON body."""
    assert isinstance(exc, ApiError)
    return JSON(exc.body(), status_code=exc.status, headers=exc.headers)


_HTTP_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.NOT_FOUND}


async def http_error(_request: Request, exc: Exception) -> Response:
    """Render Starlette's own errors (unknown route, wrong method) in the same JSON shape."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.INTERNAL_ERROR)
    return JSON(
        ApiError(exc.status_code, code, str(exc.detail)).body(), status_code=exc.status_code
    )


async def server_error(_request: Request, _exc: Exception) -> Response:
    """Render an unexpected failure without leaking its details."""
    return JSON(
        ApiError(500, ErrorCode.INTERNAL_ERROR, "internal server error").body(), status_code=500
    )
