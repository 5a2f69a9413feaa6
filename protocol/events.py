"""The event schema of the stream: a discriminated union keyed on `type`.

Each data model names its event type (`StateData.type` is `EventType.STATE`, …), so whoever
appends an event gives only its data and the type on the wire follows from it. An optional field
is left out of the wire while it holds its default (`error`, `eta_seconds`, `running: false`);
a log line's `level` is always on it.
"""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, TypeAdapter, model_serializer

from protocol.enums import EventType, RunState
from protocol.results import RunError


class StateData(BaseModel):
    type: ClassVar[EventType] = EventType.STATE
    state: RunState
    previous_state: RunState | None
    error: RunError | None = None


class ProgressData(BaseModel):
    type: ClassVar[EventType] = EventType.PROGRESS
    progress: float = Field(ge=0, le=1)
    phase: str | None = None
    eta_seconds: float | None = None


class MetricData(BaseModel):
    type: ClassVar[EventType] = EventType.METRIC
    name: str
    value: int | float | None  # counts stay integers, as in the results
    running: bool = False


class LogData(BaseModel):
    type: ClassVar[EventType] = EventType.LOG
    message: str
    level: str = "info"

    @model_serializer(mode="wrap")
    def _with_level(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The level is on the wire even at its default."""
        return {**handler(self), "level": self.level}


EventData = StateData | ProgressData | MetricData | LogData
"""The data of one event; its class decides the event's type."""

_DATA_LIST: TypeAdapter[list[EventData]] = TypeAdapter(list[EventData])


def wire_data(items: list[EventData]) -> list[dict[str, Any]]:
    """Each event's data as the stream carries it, optional fields left out at their default
    (enums stay members, which orjson writes as their values)."""
    return _DATA_LIST.dump_python(items, exclude_defaults=True)


class _Event(BaseModel):
    id: int = Field(ge=1)
    run_id: str
    timestamp: datetime


class StateEvent(_Event):
    type: Literal[EventType.STATE]
    data: StateData


class ProgressEvent(_Event):
    type: Literal[EventType.PROGRESS]
    data: ProgressData


class MetricEvent(_Event):
    type: Literal[EventType.METRIC]
    data: MetricData


class LogEvent(_Event):
    type: Literal[EventType.LOG]
    data: LogData


Event = Annotated[StateEvent | ProgressEvent | MetricEvent | LogEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
