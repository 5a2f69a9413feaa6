"""Enumerations shared by every API surface."""

from enum import StrEnum


class RunState(StrEnum):
    """Lifecycle of a run: queued → running → completed | failed | cancelled."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED})


class EventType(StrEnum):
    """The four event types of the stream."""

    STATE = "state"
    PROGRESS = "progress"
    METRIC = "metric"
    LOG = "log"


# Wire names of a resolution → the bar interval the engine runs on.
RESOLUTIONS: dict[str, str] = {
    "tick": "tick",
    "second": "1s",
    "minute": "1m",
    "hour": "1h",
    "day": "1d",
    "week": "1w",
    "month": "1M",
    "1s": "1s",
    "1m": "1m",
    "5m": "5m",
    "15m": "15m",
    "1h": "1h",
    "4h": "4h",
    "1d": "1d",
    "1w": "1w",
    "1M": "1M",
}
