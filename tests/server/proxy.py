"""A TCP proxy in front of a test server that can cut every open connection on demand.

Clients (a browser, the SDK, the CLI) talk to the proxy's port; `drop_all()` closes both ends of
every connection passing through it at that moment, as a network drop or a server-side close
would, while new connections keep working. It runs its own event loop in a thread, so sync and
async tests can use it alike.
"""

import asyncio
import contextlib
import socket
import threading


class Proxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target>."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.drops = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> "Proxy":
        """Listen on a free port; return self."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    async def _listen(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._serve, sock=sock)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    def drop_all(self) -> int:
        """Close every connection open now (both sides); return how many were cut."""

        async def cut() -> int:
            open_now = list(self._writers)
            for w in open_now:
                with contextlib.suppress(Exception):
                    w.transport.abort()
            return len(open_now) // 2

        cut_count = asyncio.run_coroutine_threadsafe(cut(), self._loop).result(10)
        self.drops += 1
        return cut_count

    def open_connections(self) -> int:
        """How many client connections pass through now."""
        return len(self._writers) // 2

    def stop(self) -> None:
        """Close everything and end the thread."""
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self.drop_all()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(Exception):
        writer.close()
