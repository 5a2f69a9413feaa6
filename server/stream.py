"""`GET /api/v2/backtests/{run_id}/stream`: backlog replay from `last_event_id`, then live.

Each subscriber reads the event table with its own cursor, so a slow one only falls behind:
it never slows the run or other subscribers, and holds at most one batch in memory.
"""

import asyncio
import contextlib
import logging
import re
import uuid

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from protocol.enums import TERMINAL_STATES, RunState
from server import events, runs
from server.auth import authenticate, key_from, lookup_prefix
from server.outage import DB_ERRORS

log = logging.getLogger("barstream.stream")

BATCH = 500
DENIED = "invalid API key or backtest not found"
NORMAL, GOING_AWAY, POLICY, SERVER_ERROR, TRY_AGAIN = 1000, 1001, 1008, 1011, 1013


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


class Streams:
    """The open streams of this server, so a shutdown can close them with 1001."""

    def __init__(self) -> None:
        self.open: set[Subscriber] = set()

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
        """Wait until every stream has closed (or the timeout passes)."""
        end = asyncio.get_running_loop().time() + timeout
        while self.open and asyncio.get_running_loop().time() < end:
            await asyncio.sleep(0.02)


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


async def _revoked(sub: Subscriber, pool: object) -> bool:
    """Whether the stream's key was revoked (told by NOTIFY) or has expired (checked now and
    then)."""
    now = asyncio.get_running_loop().time()
    if not sub.revoked and now - sub.checked >= KEY_RECHECK_SECONDS:
        sub.checked = now
        sub.revoked = await authenticate(pool, sub.key) is None  # type: ignore[arg-type]
    return sub.revoked


async def _pump(sub: Subscriber, pool: object, poll: float) -> int:
    """Send events until the terminal state is sent; return the close code to use."""
    while True:
        sub.wake.clear()
        batch = await events.fetch_after(pool, sub.run_id, sub.last, BATCH)  # type: ignore[arg-type]
        for ev in batch:
            try:
                await sub.ws.send_text(orjson.dumps(ev).decode())
            except (WebSocketDisconnect, ConnectionError):  # the client went away
                sub.gone = True
                return NORMAL
            sub.last = ev["id"]
            if ev["type"] == "state" and ev["data"]["state"] in TERMINAL_STATES:
                return NORMAL
        if len(batch) == BATCH:
            continue
        if not batch:
            row = await pool.fetchrow(
                "SELECT state, last_event_id FROM runs WHERE id = $1", sub.run_id
            )  # type: ignore[attr-defined]
            if RunState(row["state"]).terminal and sub.last >= row["last_event_id"]:
                return NORMAL
        if sub.gone:
            return NORMAL
        if sub.shutting_down:
            return GOING_AWAY
        if await _revoked(sub, pool):
            return POLICY
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sub.wake.wait(), poll)
        if sub.gone:
            return NORMAL
        if sub.shutting_down:
            return GOING_AWAY
        if await _revoked(sub, pool):
            return POLICY


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
    state.streams.open.add(sub)
    state.hub.subscribe(sub.run_id, sub.wake)
    reader = asyncio.create_task(_read_until_gone(sub))
    code = SERVER_ERROR
    try:
        code = await _pump(sub, state.pool, state.settings.poll_seconds)
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
        state.hub.unsubscribe(sub.run_id, sub.wake)
        state.streams.open.discard(sub)
        if not sub.gone and ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                reason = {GOING_AWAY: "server shutting down", POLICY: "API key revoked",
                          TRY_AGAIN: "database unavailable; try again later"}  # fmt: skip
                await ws.close(code, reason.get(code, ""))
        reader.cancel()


routes = [WebSocketRoute("/api/v2/backtests/{run_id}/stream", stream)]
