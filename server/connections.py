"""The HTTP protocol with guards uvicorn lacks: a header deadline, a request-line limit and
connection caps (in total and per client address).

- A connection must deliver a request's complete headers within `header_timeout` seconds of
  connecting (or of starting the next request): else 408 and closed. Idle keep-alive
  connections are closed by uvicorn's own keep-alive timeout.
- A request line (the URL) longer than `max_url` bytes is answered 414 and closed, a WebSocket
  upgrade included (uvicorn's WebSocket side logged it and kept the socket open).
- A connection beyond `max_connections` in total, or `max_per_client` from one address, is
  answered 503 and closed at once.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.settings import Settings

_REASONS = {408: b"Request Timeout", 414: b"URI Too Long", 503: b"Service Unavailable"}


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the guards in the module docstring."""

    header_timeout = 10.0
    max_url = 8192
    max_connections = 4096
    max_per_client = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        same = sum(
            1 for c in self.connections if getattr(c, "client", None) and c.client[0] == host
        )
        if len(self.connections) > self.max_connections or same > self.max_per_client:
            self._refuse(503, "too many connections; retry shortly")
            return
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.max_url:
            self._refuse(414, f"the request line is longer than {self.max_url} bytes")

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _late(self) -> None:
        self._deadline = None
        self._refuse(408, f"the request headers did not arrive within {self.header_timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with a short text and close; read nothing more."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._disarm()
        body = message.encode()
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))
        )
        self.transport.write(head + body)
        self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedHttpTools]:
    """The guarded protocol class with this server's limits."""
    return type(
        "Guarded",
        (GuardedHttpTools,),
        {
            "header_timeout": settings.header_timeout_seconds,
            "max_connections": settings.max_connections,
            "max_per_client": settings.max_connections_per_client,
        },
    )
