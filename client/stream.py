"""Following a run's event stream, without I/O: reconnect delays, the id check, close codes.

The sync and async followers share these rules:

- Every event is validated against the protocol's schema and must carry the next id
  (`last + 1`). An id at or below the last one yielded is a replay and is dropped; a higher one
  is a gap and raises `BarstreamError(code="event_gap")`: nothing is ever yielded twice or skipped.
- The follower ends after the terminal state event, or when the server closes normally (1000).
- A refusal (1008: a bad key, an unknown run, a malformed `last_event_id`; or a 4xx answer to
  the handshake) raises at once, never retries.
- Anything else (a dropped connection, 1001 going away, 1011, 1013 try again later, a refused
  TCP connection, a timeout, a 5xx handshake) reconnects with `last_event_id` after a `Backoff` delay.
"""

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from client.errors import BarstreamError
from protocol.enums import TERMINAL_STATES
from protocol.events import EVENT_ADAPTER, Event

__all__ = ["RETRYABLE", "Backoff", "EventSequence", "Outcome", "ReconnectHook", "classify"]

POLICY = 1008
NORMAL = 1000
RETRYABLE: tuple[type[BaseException], ...] = (
    ConnectionClosed,
    InvalidHandshake,
    OSError,
    TimeoutError,
)
# Called before each reconnect with (consecutive failures, delay in seconds, what went wrong).
ReconnectHook = Callable[[int, float, BaseException], None]


@dataclass(frozen=True)
class Backoff:
    """Waits between reconnects: exponential, half fixed and half random, bounded in size and count.

    The n-th consecutive failure waits between d/2 and d seconds, d = min(most, initial *
    factor^(n-1)); after `attempts` consecutive failures the follower gives up
    (`stream_unavailable`). An event received resets the count.
    """

    initial: float = 0.25
    factor: float = 2.0
    most: float = 10.0
    attempts: int = 12

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """The wait before reconnecting after `failures` consecutive failures (1-based)."""
        full = min(self.most, self.initial * self.factor ** max(failures - 1, 0))
        return full / 2 + rand() * full / 2

    def exhausted(self, failures: int) -> bool:
        """True once `failures` consecutive failures are too many to try again."""
        return failures > self.attempts


class EventSequence:
    """The ids seen so far on one run's stream: accepts the next event, drops replays, refuses gaps."""

    def __init__(self, run_id: str, last_event_id: int = 0) -> None:
        self.run_id = run_id
        self.last = last_event_id
        self.done = False

    def accept(self, raw: str | bytes) -> Event | None:
        """The parsed event if it is the next one, None for a replayed one; raise on a gap."""
        try:
            event = EVENT_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            raise BarstreamError(
                None,
                "invalid_event",
                f"the stream sent an invalid event: {exc}",
                run_id=self.run_id,
            ) from exc
        if event.id <= self.last:
            return None
        if event.id != self.last + 1:
            raise BarstreamError(
                None,
                "event_gap",
                f"event {event.id} came after event {self.last}: events "
                f"{self.last + 1}..{event.id - 1} are missing",
                run_id=self.run_id,
            )
        self.last = event.id
        if event.type == "state" and event.data.state in TERMINAL_STATES:
            self.done = True
        return event


class Outcome(enum.Enum):
    """What to do after a connection ended or could not be made."""

    END = "end"
    RETRY = "retry"
    REFUSED = "refused"


def classify(exc: BaseException) -> Outcome:
    """END for a normal close by the server, REFUSED for 1008 or a 4xx handshake, else RETRY."""
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is None or not exc.rcvd_then_sent:
            return Outcome.RETRY  # dropped, or closed from this side
        if exc.rcvd.code == NORMAL:
            return Outcome.END
        return Outcome.REFUSED if exc.rcvd.code == POLICY else Outcome.RETRY
    if isinstance(exc, InvalidStatus) and 400 <= exc.response.status_code < 500:
        return Outcome.REFUSED
    return Outcome.RETRY


def refusal(exc: BaseException, run_id: str) -> BarstreamError:
    """The error for a refused stream when the REST API does not explain it better."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return BarstreamError(status, "stream_refused", f"the stream answered HTTP {status}")
    reason = exc.rcvd.reason if isinstance(exc, ConnectionClosed) and exc.rcvd else ""
    return BarstreamError(None, "stream_refused", reason or "the stream was refused", run_id=run_id)


def unavailable(run_id: str, failures: int, exc: BaseException) -> BarstreamError:
    """The error after too many failed reconnects."""
    return BarstreamError(
        None,
        "stream_unavailable",
        f"the stream of run {run_id} failed {failures} times in a row; last: {exc!r}",
        run_id=run_id,
    )
