"""Request bodies: JSON only (415 otherwise) and a size limit, enforced before a handler reads
the body."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol.errors import ApiError, ErrorCode
from server.responses import render

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _json_type(value: bytes | None) -> bool:
    """No Content-Type (a bodiless POST), application/json, or an application/…+json type."""
    if value is None:
        return True
    kind = value.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )


class BodyLimit:
    """Answer 413 when a request body is larger than `max_bytes`, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if scope["method"] in _WITH_BODY and not _json_type(headers.get(b"content-type")):
            err = ApiError(
                415, ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "request bodies are JSON: send Content-Type: application/json",
            )  # fmt: skip
            await render(scope["path"], err)(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, self._message())
        await render(scope["path"], err)(scope, receive, send)
