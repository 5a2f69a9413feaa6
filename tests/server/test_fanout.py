"""Fan-out: many subscribers share one reader per run and node; a subscriber that stops reading
neither holds up the others nor a shutdown."""

import asyncio
import base64
import contextlib
import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.server.harness import ServerProcess, backtest, eventually, minute_run, serving
from tests.server.streaming import read_stream

PADDING = 100_000  # log events slipped in before a finished run's own: ~20 MB of backlog


def dsn(srv: ServerProcess) -> str:
    """The embedded PostgreSQL's socket URI."""
    return f"postgresql://postgres@/postgres?host={(srv.data_dir / 'pg').resolve()}"


async def finished_run(srv: ServerProcess) -> str:
    """A completed hourly run."""
    async with srv.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]

        async def done() -> bool:
            return (await c.get(f"/api/v2/backtests/{run_id}")).json()["state"] == "completed"

        await eventually(done, timeout=60)
    return run_id


async def pad(srv: ServerProcess, run_id: str, n: int = PADDING) -> None:
    """Put `n` log events before the run's own (ids shift up by n), so a stream from 0 has a
    backlog far larger than any socket buffer."""
    conn = await asyncpg.connect(dsn(srv))
    try:
        async with conn.transaction():
            await conn.execute("UPDATE events SET id = id + $2 WHERE run_id = $1", run_id, n)
            await conn.execute(
                "INSERT INTO events (run_id, id, type, ts, data) "
                "SELECT $1, g, 'log', now(), jsonb_build_object('level', 'info', "
                "'message', 'padding ' || g || ' ' || repeat('x', 120)) "
                "FROM generate_series(1, $2::bigint) g",
                run_id,
                n,
            )
            await conn.execute(
                "UPDATE runs SET last_event_id = last_event_id + $2 WHERE id = $1", run_id, n
            )
    finally:
        await conn.close()


def silent_subscriber(srv: ServerProcess, path: str) -> socket.socket:
    """Open a WebSocket with a tiny receive buffer, read the 101 answer, then read nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"X-API-Key: {srv.key}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)  # byte by byte: nothing past the headers is taken off the socket
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def queued_bytes(sock: socket.socket) -> int:
    """Bytes waiting in the socket's receive buffer (FIONREAD)."""
    import fcntl
    import termios

    return struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"))[0]


@pytest.fixture
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server this test may stop."""
    yield from serving(
        tmp_path_factory.mktemp("fanout-stop"), workers="1", chunk_bars="5000", pace_seconds="0.05"
    )


async def test_a_subscriber_that_stops_reading_does_not_hold_up_shutdown(
    own: ServerProcess,
) -> None:
    """Issue 14: a subscriber that read nothing while its backlog was sent kept its stream's
    send waiting at shutdown: the server waited out uvicorn's 10 s after its own 5 s, then
    cancelled the stream with an ERROR and a traceback. Now it is dropped within the grace."""
    run_id = await finished_run(own)
    await pad(own, run_id)
    silent = silent_subscriber(own, f"/api/v2/backtests/{run_id}/stream")
    async with own.client() as c:
        live = (await c.post("/api/v2/backtests", json=minute_run())).json()["run_id"]
    url = f"{own.ws_url}/api/v2/backtests/{live}/stream"
    try:
        async with connect(url, additional_headers={"X-API-Key": own.key}) as reader:
            await reader.recv()  # a reading subscriber, live

            async def stuck() -> bool:
                return queued_bytes(silent) > 0

            await eventually(stuck, timeout=30)
            await asyncio.sleep(1.0)  # the server's buffers fill behind it
            before = len(own.log())
            started = time.monotonic()
            code = await asyncio.to_thread(own.stop, signal.SIGTERM)
            took = time.monotonic() - started
            with contextlib.suppress(ConnectionClosed):
                async for _ in reader:
                    pass
        assert code in (0, -signal.SIGTERM)
        assert reader.close_code == 1001
        shutdown = own.log()[before:]
        assert "Shutting down" in shutdown
        assert "Traceback" not in shutdown
        assert "timeout graceful shutdown exceeded" not in shutdown
        # The bug took the stream grace (5 s) plus uvicorn's own 10 s before anything else.
        assert took < 15, f"shutdown took {took:.1f} s"
    finally:
        silent.close()


def _ids(events: list[dict[str, Any]]) -> list[int]:
    return [e["id"] for e in events]


_ = (orjson, read_stream)
