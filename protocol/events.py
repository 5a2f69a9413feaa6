"""The event schema of the stream: a discriminated union keyed on `type`."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from protocol.enums import RunState
from protocol.results import RunError


class StateData(BaseModel):
    state: RunState
    previous_state: RunState | None
    error: RunError | None = None


class ProgressData(BaseModel):
    progress: float = Field(ge=0, le=1)
    phase: str | None = None
    eta_seconds: float | None = None


class MetricData(BaseModel):
    name: str
    value: float | None
    running: bool = False


class LogData(BaseModel):
    message: str
    level: str = "info"


class _Event(BaseModel):
    id: int = Field(ge=1)
    run_id: str
    timestamp: datetime


class StateEvent(_Event):
    type: Literal["state"]
    data: StateData


class ProgressEvent(_Event):
    type: Literal["progress"]
    data: ProgressData


class MetricEvent(_Event):
    type: Literal["metric"]
    data: MetricData


class LogEvent(_Event):
    type: Literal["log"]
    data: LogData


Event = Annotated[StateEvent | ProgressEvent | MetricEvent | LogEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
