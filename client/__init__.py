"""The barstream Python SDK: `Client` (blocking) and `AsyncClient` (asyncio).

Both submit, read, list, cancel and archive runs over the v2 REST API and `follow` a run's
event stream, reconnecting with `last_event_id` after a drop so that every event arrives once,
in order. Errors are `BarstreamError`. The package imports only `protocol` of barstream's own
packages, never `server` or `engine`.
"""

from client.aio import AsyncClient, AsyncFollow, AsyncPages
from client.errors import BarstreamError
from client.models import Run, RunResults
from client.stream import Backoff
from client.sync import Client, Follow, Pages
from protocol.events import Event, LogEvent, MetricEvent, ProgressEvent, StateEvent

__all__ = [
    "AsyncClient",
    "AsyncFollow",
    "AsyncPages",
    "Backoff",
    "BarstreamError",
    "Client",
    "Event",
    "Follow",
    "LogEvent",
    "MetricEvent",
    "Pages",
    "ProgressEvent",
    "Run",
    "RunResults",
    "StateEvent",
]
