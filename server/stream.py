"""`GET /api/v2/backtests/{run_id}/stream`: backlog replay from `last_event_id`, then live.

Live events come from the run's shared tail on this node (server/tail.py: one reader, each event
encoded once); a subscriber behind it reads the event table with its own cursor, so a slow one
only falls behind: it never slows the run or other subscribers, and holds at most one batch.
"""

import asyncio
import contextlib
import logging
import re
import uuid
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from server import events, runs
from server.auth import authenticate, key_from, lookup_prefix
from server.outage import DB_ERRORS
from server.tail import BATCH, Frame, Tail, Tails, encode

log = logging.getLogger("barstream.stream")

DENIED = "invalid API key or backtest not found"
NORMAL, GOING_AWAY, POLICY, SERVER_ERROR, TRY_AGAIN = 1000, 1001, 1008, 1011, 1013
DROP_AFTER = 1.0  # at shutdown, a peer that has not taken its frames by then is dropped


class Subscriber:
    """One open stream: its cursor and the flags that wake it."""

    def __init__(self, ws: WebSocket, run_id: uuid.UUID, last: int, key: str) -> None:
        self.ws = ws
        self.run_id = run_id
        self.last = last
        self.key = key  # rechecked now and then: a key may expire (rotation) or be revoked
        self.wake = asyncio.Event()
        self.gone = False
        self.shutting_down = False
        self.revoked = False
        self.checked = asyncio.get_running_loop().time()
        self.wire = Wire.of(ws)

    async def push(self, frames: list[Frame], blob: bytes) -> bool:
        """Send frames handed over by the tail while this stream is parked, if that cannot wait
        on the peer (its buffer is below the high-water mark); False leaves the rest to the
        stream's own loop, which then waits on this peer alone."""
        if self.gone or self.shutting_down or self.revoked or self.wire is None:
            return False
        todo = [f for f in frames if f.id > self.last]
        if not todo:
            return True
        if todo[0].id != self.last + 1 or not self.wire.writable.is_set():
            return False
        if not self.wire.open():
            self.gone = True
            return False
        self.wire.send(blob if len(todo) == len(frames) else b"".join(f.wire for f in todo))
        self.last = todo[-1].id
        return not todo[-1].terminal  # after the terminal frame, its loop closes the stream


class Wire:
    """Writes prebuilt frames straight to a connection of uvicorn's sans-I/O WebSocket protocol
    (no extension negotiated, so a frame's bytes are the same for every subscriber): one write
    per subscriber per batch, where the ASGI path would build the frame again for each."""

    def __init__(self, proto: Any) -> None:
        self.proto = proto
        self.writable: asyncio.Event = proto.writable

    @classmethod
    def of(cls, ws: WebSocket) -> "Wire | None":
        """The connection's wire, or None (another server, or compression): then ASGI sends."""
        proto = _protocol(ws)
        conn = getattr(proto, "conn", None)
        if (
            not isinstance(getattr(proto, "writable", None), asyncio.Event)
            or getattr(conn, "extensions", None) != []
            or not all(hasattr(proto, a) for a in ("transport", "disconnected", "close_sent"))
        ):
            return None
        return cls(proto)

    def open(self) -> bool:
        """Whether frames can still be written (nor closed nor lost)."""
        p = self.proto
        return not (p.disconnected or p.close_sent or p.transport.is_closing())

    def send(self, data: bytes) -> None:
        """Write frames' bytes."""
        self.proto.transport.write(data)


class Streams:
    """The open streams of this server, so a shutdown can close them with 1001."""

    def __init__(self) -> None:
        self.open: set[Subscriber] = set()
        self.tails: Tails | None = None  # made by the first stream, once the pool and hub exist
        self._keys: dict[str, tuple[float, asyncio.Task[bool]]] = {}

    def revoke(self, prefix: str) -> None:
        """Close every stream opened with the key of this prefix (1008)."""
        for sub in self.open:
            if lookup_prefix(sub.key) == prefix:
                sub.revoked = True
                sub.wake.set()

    def shutdown(self) -> None:
        """Tell every stream to close with 1001."""
        for sub in self.open:
            sub.shutting_down = True
            sub.wake.set()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until every stream has closed (or the timeout passes); drop the connections of
        those still open after DROP_AFTER: their peers stopped reading, so their sends wait."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        dropped = False
        while self.open and loop.time() < start + timeout:
            if not dropped and loop.time() >= start + min(DROP_AFTER, timeout / 2):
                dropped = True
                for sub in list(self.open):
                    _abort(sub.ws)
            await asyncio.sleep(0.02)

    async def key_valid(self, key: str, pool: object) -> bool:
        """Whether `key` still authenticates, asked at most once per KEY_CACHE_SECONDS for all
        the streams opened with it."""
        now = asyncio.get_running_loop().time()
        known = self._keys.get(key)
        if known is None or now - known[0] >= KEY_CACHE_SECONDS or known[1].cancelled():
            for k, (at, _) in list(self._keys.items()):
                if now - at >= KEY_RECHECK_SECONDS:
                    del self._keys[k]
            task = asyncio.create_task(_authenticates(pool, key))
            known = self._keys[key] = (now, task)
        try:
            return await asyncio.shield(known[1])
        except BaseException:
            if self._keys.get(key) is known:
                del self._keys[key]  # a failed check is not remembered
            raise


async def _authenticates(pool: object, key: str) -> bool:
    return await authenticate(pool, key) is not None  # type: ignore[arg-type]


def _protocol(ws: WebSocket) -> object | None:
    """uvicorn's protocol object of the connection: its protocols hand the app their bound
    `receive`. None under another server."""
    return getattr(ws._receive, "__self__", None)


def _abort(ws: WebSocket) -> None:
    """Drop the connection at once: its pending send fails and its handler ends."""
    transport = getattr(_protocol(ws), "transport", None)
    if transport is not None:
        transport.abort()


_ID = re.compile(r"[0-9]{1,19}")  # plain ASCII digits (int() also takes "+5", " 5", "1_000")
_MAX_ID = 2**63 - 1  # event ids are bigint


def _last_event_id(ws: WebSocket) -> int | None:
    raw = ws.query_params.get("last_event_id")
    if raw is None or raw == "":
        return 0
    if not _ID.fullmatch(raw) or int(raw) > _MAX_ID:
        return None
    return int(raw)


async def _read_until_gone(sub: Subscriber) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            msg = await sub.ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
    sub.gone = True
    sub.wake.set()


KEY_RECHECK_SECONDS = 5.0  # a key that expires (a rotation's grace) stops its streams this soon
KEY_CACHE_SECONDS = 1.0  # one check of a key serves every stream opened with it this long


async def _revoked(sub: Subscriber, streams: Streams, pool: object) -> bool:
    """Whether the stream's key was revoked (told by NOTIFY) or has expired (checked now and
    then)."""
    now = asyncio.get_running_loop().time()
    if not sub.revoked and now - sub.checked >= KEY_RECHECK_SECONDS - KEY_CACHE_SECONDS:
        sub.checked = now
        sub.revoked = not await streams.key_valid(sub.key, pool)
    return sub.revoked


async def _stop_code(sub: Subscriber, streams: Streams, pool: object) -> int | None:
    """The close code if the stream must stop now, else None."""
    if sub.gone:
        return NORMAL
    if sub.shutting_down:
        return GOING_AWAY
    if await _revoked(sub, streams, pool):
        return POLICY
    return None


async def _frames(sub: Subscriber, tail: Tail, pool: object) -> list[Frame]:
    """What the subscriber sends next: from the tail, or from its own cursor when behind it."""
    frames = tail.after(sub.last)
    if frames is not None:
        return frames
    batch = await events.fetch_after(pool, sub.run_id, sub.last, BATCH)  # type: ignore[arg-type]
    return [encode(ev) for ev in batch]


WIRE_BATCH = 64  # frames per write on the direct path


async def _send(sub: Subscriber, frames: list[Frame]) -> int | None:
    """Send frames in order; the close code once the stream must end, else None."""
    for i, frame in enumerate(frames):  # nothing after the terminal frame
        if frame.terminal:
            frames = frames[: i + 1]
            break
    step = WIRE_BATCH if sub.wire is not None else 1
    for at in range(0, len(frames), step):
        if sub.shutting_down:
            return GOING_AWAY
        chunk = frames[at : at + step]
        if not await _deliver(sub, chunk):
            sub.gone = True  # the client went away
            return NORMAL
        sub.last = chunk[-1].id
        if chunk[-1].terminal:
            return NORMAL
    return None


async def _deliver(sub: Subscriber, chunk: list[Frame]) -> bool:
    """Send a chunk (one frame through ASGI); False once the connection is gone."""
    if sub.wire is None:
        try:
            await sub.ws.send_text(chunk[0].text)
        except (WebSocketDisconnect, ConnectionError):
            return False
        return True
    await sub.wire.writable.wait()  # the peer's share of memory: the transport's high-water mark
    if not sub.wire.open():
        return False
    sub.wire.send(b"".join(f.wire for f in chunk))
    return True


async def _pump(sub: Subscriber, tail: Tail, streams: Streams, pool: object, poll: float) -> int:
    """Send events until the terminal state is sent; return the close code to use."""
    while True:
        sub.wake.clear()  # before reading the tail: a frame published after this wakes us
        if (code := await _stop_code(sub, streams, pool)) is not None:
            return code
        frames = await _frames(sub, tail, pool)
        if frames:
            if (code := await _send(sub, frames)) is not None:
                return code
            continue
        if tail.failed is not None:
            raise tail.failed
        if tail.final is not None and sub.last >= tail.final:
            return NORMAL
        tail.park(sub)
        try:
            async with asyncio.timeout(poll):
                await sub.wake.wait()
        except TimeoutError:
            pass
        finally:
            tail.unpark(sub)


async def stream(ws: WebSocket) -> None:
    """Authenticate, check ownership, replay the backlog, follow live, close after the end."""
    await ws.accept()  # accept first, so a refusal is a close code and not an HTTP 403
    state = ws.app.state
    key = key_from(ws, allow_query=True)
    try:
        user = await authenticate(state.pool, key)
        row = await runs.get(state.pool, ws.path_params["run_id"], user.id) if user else None
    except DB_ERRORS as exc:
        state.outage.note(exc)
        await ws.close(TRY_AGAIN, "database unavailable; try again later")
        return
    if row is None:
        await ws.close(POLICY, DENIED)
        return
    last = _last_event_id(ws)
    if last is None:
        await ws.close(POLICY, "last_event_id must be a non-negative integer")
        return
    sub = Subscriber(ws, row["id"], last, key or "")
    streams: Streams = state.streams
    if streams.tails is None:
        streams.tails = Tails(state.pool, state.hub, state.settings.poll_seconds)
    streams.open.add(sub)
    reader = asyncio.create_task(_read_until_gone(sub))
    code = SERVER_ERROR
    tail: Tail | None = None
    try:
        tail = await streams.tails.join(sub.run_id, sub.wake)
        code = await _pump(sub, tail, streams, state.pool, state.settings.poll_seconds)
    except WebSocketDisconnect:
        code = NORMAL
        sub.gone = True
    except DB_ERRORS as exc:  # the client resumes with last_event_id once it is back
        state.outage.note(exc)
        code = TRY_AGAIN
    except Exception:
        log.exception("stream of run %s failed", sub.run_id)
        code = SERVER_ERROR
    finally:
        if tail is not None:
            streams.tails.leave(tail, sub.wake)
        streams.open.discard(sub)
        if not sub.gone and ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                reason = {GOING_AWAY: "server shutting down", POLICY: "API key revoked",
                          TRY_AGAIN: "database unavailable; try again later"}  # fmt: skip
                await ws.close(code, reason.get(code, ""))
        reader.cancel()


routes = [WebSocketRoute("/api/v2/backtests/{run_id}/stream", stream)]
