"""The event schema of the stream: a discriminated union keyed on `type`."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class _Event(BaseModel):
    id: int
    run_id: str
    timestamp: datetime


class StateEvent(_Event):
    type: Literal["state"]
    data: dict[str, Any]


class ProgressEvent(_Event):
    type: Literal["progress"]
    data: dict[str, Any]


class MetricEvent(_Event):
    type: Literal["metric"]
    data: dict[str, Any]


class LogEvent(_Event):
    type: Literal["log"]
    data: dict[str, Any]


Event = Annotated[StateEvent | ProgressEvent | MetricEvent | LogEvent, Field(discriminator="type")]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
