"""Slow, silent and unauthenticated connections are not held forever (issue 14, defect 4)."""

import socket
from collections.abc import Iterator

import pytest

from tests.server.harness import ServerProcess, serving


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Headers must arrive within 2 s; at most 4 connections per client address."""
    yield from serving(
        tmp_path_factory.mktemp("guarded"), workers="1", header_timeout_seconds="2",
        max_connections_per_client="4",
    )  # fmt: skip


def raw(srv: ServerProcess, payload: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    if payload:
        s.sendall(payload)
    return s


def answer(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the socket (30 s at most)."""
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    return got


def test_a_silent_connection_is_closed(guarded: ServerProcess) -> None:
    with raw(guarded) as s:
        assert answer(s).startswith(b"HTTP/1.1 408")


def test_partial_headers_are_closed(guarded: ServerProcess) -> None:
    with raw(guarded, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") as s:
        assert answer(s).startswith(b"HTTP/1.1 408")


def test_an_over_long_upgrade_request_line_is_answered_and_closed(guarded: ServerProcess) -> None:
    line = b"GET /api/v2/backtests/x/stream?" + b"a" * 20_000 + b" HTTP/1.1\r\n"
    headers = (b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
    with raw(guarded, line + headers) as s:
        assert answer(s).startswith(b"HTTP/1.1 414")


def test_connections_per_client_are_capped(guarded: ServerProcess) -> None:
    held = [raw(guarded) for _ in range(4)]
    try:
        with raw(guarded) as extra:
            assert answer(extra).startswith(b"HTTP/1.1 503")
    finally:
        for s in held:
            s.close()
    with raw(guarded, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") as s:
        assert answer(s).startswith(b"HTTP/1.1 200")  # room again once they are gone
