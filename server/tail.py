"""The shared tail of a run's events on this node: one reader, each event encoded once.

Per node and per run, one reader task fetches new events (woken by the hub's NOTIFY, or by a
poll) into a bounded window of encoded frames that every subscriber of the run on this node
reads. A subscriber behind the window (an old `last_event_id`, a slow consumer) reads the event
table with its own cursor until it is back inside it. So the database work per event is one
fetch per node, whatever the number of subscribers, and the window bounds the memory.
"""

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import orjson

from protocol.enums import TERMINAL_STATES, EventType, RunState
from server import events
from server.hub import Hub

BATCH = 500  # events per query
WINDOW = 1024  # frames a tail keeps at least; it trims to this once it holds twice as many


@dataclass(frozen=True, slots=True)
class Frame:
    """One event as sent: its id, its JSON text, the WebSocket text frame carrying it (a server's
    frames are unmasked, so these bytes are the same for every subscriber), and whether it ends
    the run."""

    id: int
    text: str
    wire: bytes
    terminal: bool


def encode(ev: dict[str, Any]) -> Frame:
    """The wire form of an event from `events.fetch_after`."""
    terminal = ev["type"] == EventType.STATE and ev["data"]["state"] in TERMINAL_STATES
    data = orjson.dumps(ev)
    n = len(data)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return Frame(ev["id"], data.decode(), head + data, terminal)


class Live(Protocol):
    """A subscriber parked at the head of the tail, to which new frames are handed directly."""

    wake: asyncio.Event

    async def push(self, frames: list[Frame], blob: bytes) -> bool:
        """Send `frames` (`blob`: their bytes joined) at once if that cannot wait on the peer;
        False leaves them (and any after them) to the subscriber's own loop."""
        ...


class Tail:
    """The recent frames of one run, fetched once for all of its subscribers on this node."""

    def __init__(self, run_id: uuid.UUID, pool: asyncpg.Pool, poll: float, window: int) -> None:
        self.run_id = run_id
        self.pool = pool
        self.poll = poll
        self.window = window
        self.frames: list[Frame] = []  # ids base+1 .. last, contiguous
        self.base = 0  # the id just before the first frame held
        self.last = 0  # the highest id fetched
        self.final: int | None = None  # the run's last id, once it has ended
        self.failed: BaseException | None = None
        self.wake = asyncio.Event()  # set by the hub when the run has new events
        self.watchers: set[asyncio.Event] = set()  # wake-ups of subscribers not parked
        self.live: set[Live] = set()  # parked subscribers: frames are pushed to them
        self.ready = asyncio.Event()
        self.users = 0
        self.task: asyncio.Task[None] | None = None
        self.opening: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start at the run's current last id; read on only while the run has not ended."""
        try:
            row = await self.pool.fetchrow(
                "SELECT state, last_event_id FROM runs WHERE id = $1", self.run_id
            )
            self.base = self.last = row["last_event_id"]
            if RunState(row["state"]).terminal:
                self.final = self.last
            elif self.users > 0:
                self.task = asyncio.create_task(self._read(), name=f"tail-{self.run_id}")
        except Exception as exc:
            self.failed = exc
        finally:
            self.ready.set()

    def after(self, cursor: int) -> list[Frame] | None:
        """The frames after `cursor`, or None when the cursor is behind the window."""
        if cursor < self.base:
            return None
        return self.frames[cursor - self.base :]

    async def _read(self) -> None:
        try:
            while self.final is None:
                self.wake.clear()
                while await self._fetch() == BATCH and self.final is None:
                    pass
                if self.final is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), self.poll)
        except Exception as exc:  # told to every subscriber, which closes as it would have
            self.failed = exc
            for sub in self.live:
                sub.wake.set()
            self.live.clear()
            self._wake_watchers()

    async def _fetch(self) -> int:
        batch = await events.fetch_after(self.pool, self.run_id, self.last, BATCH)
        fresh = []
        for ev in batch:
            frame = encode(ev)
            fresh.append(frame)
            self.last = frame.id
            if frame.terminal:
                self.final = frame.id
                break
        self.frames += fresh
        if len(self.frames) >= 2 * self.window:
            drop = len(self.frames) - self.window
            del self.frames[:drop]
            self.base += drop
        if fresh:
            await self._push(fresh)
            self._wake_watchers()
        return len(batch)

    async def _push(self, fresh: list[Frame]) -> None:
        # Parked subscribers take new frames from here, in one pass with no task switch per
        # subscriber: the per-event cost is then a send per subscriber, as for a bare broadcast.
        blob = b"".join(f.wire for f in fresh)  # joined once for all
        for sub in list(self.live):
            if not await sub.push(fresh, blob):
                self.live.discard(sub)
                sub.wake.set()

    def _wake_watchers(self) -> None:
        for wake in self.watchers:
            wake.set()

    def park(self, sub: Live) -> None:
        """Hand new frames to `sub` directly until `unpark` (it is not woken for them)."""
        self.watchers.discard(sub.wake)
        self.live.add(sub)

    def unpark(self, sub: Live) -> None:
        """Back to being woken for new frames."""
        self.live.discard(sub)
        self.watchers.add(sub.wake)


class Tails:
    """The tails of this node, one per run with subscribers, dropped with the last of them."""

    def __init__(self, pool: asyncpg.Pool, hub: Hub, poll: float, window: int = WINDOW) -> None:
        self.pool = pool
        self.hub = hub
        self.poll = poll
        self.window = window
        self._tails: dict[uuid.UUID, Tail] = {}

    async def join(self, run_id: uuid.UUID, wake: asyncio.Event) -> Tail:
        """The run's tail (started if need be), with `wake` set whenever it has new frames."""
        tail = self._tails.get(run_id)
        if tail is None or tail.failed is not None:
            tail = Tail(run_id, self.pool, self.poll, self.window)
            self._tails[run_id] = tail
            self.hub.subscribe(run_id, tail.wake)
            tail.opening = asyncio.create_task(tail.start())
        tail.users += 1
        tail.watchers.add(wake)
        try:
            await tail.ready.wait()
        except BaseException:
            self.leave(tail, wake)
            raise
        return tail

    def leave(self, tail: Tail, wake: asyncio.Event) -> None:
        """Forget a subscriber; stop the tail with its last one."""
        tail.watchers.discard(wake)
        tail.users -= 1
        if tail.users > 0:
            return
        for task in (tail.opening, tail.task):
            if task is not None:
                task.cancel()
        self.hub.unsubscribe(tail.run_id, tail.wake)
        if self._tails.get(tail.run_id) is tail:
            del self._tails[tail.run_id]

    def __len__(self) -> int:
        return len(self._tails)
