"""Wake-ups for stream subscribers and run cancellations, across processes and nodes.

LISTEN/NOTIFY is only a wake-up: a woken subscriber reads what it missed from the event table.
The listener holds its own connection, reconnects after a drop, and subscribers also poll, so a
lost notification delays an event by at most one poll interval and never loses it.
"""

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable

import asyncpg

from server.auth import KEYS_CHANNEL
from server.events import CANCEL_CHANNEL, EVENTS_CHANNEL

log = logging.getLogger("barstream.hub")
WORK_CHANNEL = "barstream_work"  # new work any node may claim (a sweep's shards)


class Hub:
    """Maps run ids to the asyncio events of their subscribers."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._subs: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._cancel_handlers: list[Callable[[uuid.UUID], None]] = []
        self._revoke_handlers: list[Callable[[str], None]] = []
        self._work_handlers: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    def subscribe(self, run_id: uuid.UUID, wake: asyncio.Event | None = None) -> asyncio.Event:
        """Register a subscriber; its event is set whenever the run has new events."""
        wake = wake or asyncio.Event()
        self._subs[run_id].add(wake)
        return wake

    def unsubscribe(self, run_id: uuid.UUID, wake: asyncio.Event) -> None:
        """Forget a subscriber."""
        subs = self._subs.get(run_id)
        if subs is not None:
            subs.discard(wake)
            if not subs:
                del self._subs[run_id]

    def wake(self, run_id: uuid.UUID) -> None:
        """Wake every local subscriber of a run."""
        for ev in self._subs.get(run_id, ()):
            ev.set()

    def on_cancel(self, handler: Callable[[uuid.UUID], None]) -> None:
        """Call `handler(run_id)` when any node asks for a run to be cancelled."""
        self._cancel_handlers.append(handler)

    def on_work(self, handler: Callable[[], None]) -> None:
        """Call `handler()` when any node makes work every node may claim."""
        self._work_handlers.append(handler)

    def on_revoke(self, handler: Callable[[str], None]) -> None:
        """Call `handler(key_prefix)` when a key is revoked (by any node or the CLI)."""
        self._revoke_handlers.append(handler)

    async def start(self) -> None:
        """Start listening; return once the first connection is up."""
        self._task = asyncio.create_task(self._listen_forever(), name="hub-listener")
        await asyncio.wait_for(self._connected.wait(), timeout=30)

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        if channel == WORK_CHANNEL:
            for wake in self._work_handlers:
                wake()
            return
        if channel == KEYS_CHANNEL:
            for revoked in self._revoke_handlers:
                revoked(payload)
            return
        run_id = uuid.UUID(payload.split(":", 1)[0])
        if channel == EVENTS_CHANNEL:
            self.wake(run_id)
        elif channel == CANCEL_CHANNEL:
            for handler in self._cancel_handlers:
                handler(run_id)

    async def _listen_forever(self) -> None:
        failing = False
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                await conn.add_listener(EVENTS_CHANNEL, self._notified)
                await conn.add_listener(CANCEL_CHANNEL, self._notified)
                await conn.add_listener(KEYS_CHANNEL, self._notified)
                await conn.add_listener(WORK_CHANNEL, self._notified)
                self._connected.set()
                if failing:
                    log.warning("listener connection back")
                    failing = False
                # Wake everyone: anything committed while we were disconnected is caught up.
                for run_id in list(self._subs):
                    self.wake(run_id)
                await lost.wait()
                log.warning("listener connection lost; reconnecting")
            except Exception as exc:
                if not failing:  # once per outage, not once a second
                    log.warning("listener connection failed: %s; retrying every second", exc)
                failing = True
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(1.0)
