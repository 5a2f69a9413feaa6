"""The event models produce the stream's data exactly as DESIGN.md §3 and the README show it."""

import orjson
import pytest

from protocol.enums import EventType, RunState
from protocol.errors import ErrorCode
from protocol.events import (
    EVENT_ADAPTER,
    LogData,
    MetricData,
    ProgressData,
    StateData,
    wire_data,
)
from protocol.results import RunError


def _json(items: list) -> list[bytes]:
    return [orjson.dumps(d) for d in wire_data(items)]


def test_each_kind_of_event_data_is_written_as_documented() -> None:
    items = [
        StateData(state=RunState.QUEUED, previous_state=None),
        StateData(state=RunState.RUNNING, previous_state=RunState.QUEUED),
        ProgressData(progress=0.45, phase="simulate", eta_seconds=3.1),
        ProgressData(progress=0.02, phase="load"),
        MetricData(name="sharpe_ratio", value=1.23, running=True),
        MetricData(name="sharpe_ratio", value=None),
        LogData(message="restarted", level="warning"),
        StateData(
            state=RunState.FAILED,
            previous_state=RunState.RUNNING,
            error=RunError(code=ErrorCode.TIMEOUT, message="too long"),
        ),
    ]
    assert _json(items) == [
        b'{"state":"queued","previous_state":null}',
        b'{"state":"running","previous_state":"queued"}',
        b'{"progress":0.45,"phase":"simulate","eta_seconds":3.1}',
        b'{"progress":0.02,"phase":"load"}',
        b'{"name":"sharpe_ratio","value":1.23,"running":true}',
        b'{"name":"sharpe_ratio","value":null}',
        b'{"message":"restarted","level":"warning"}',
        b'{"state":"failed","previous_state":"running","error":{"code":"timeout","message":"too long"}}',
    ]


def test_an_optional_field_at_its_default_stays_off_the_wire_however_it_was_given() -> None:
    items = [
        StateData(state=RunState.CANCELLED, previous_state=RunState.QUEUED, error=None),
        ProgressData(progress=0.5, phase="simulate", eta_seconds=None),
        MetricData(name="equity", value=1.5, running=False),
    ]
    assert _json(items) == [
        b'{"state":"cancelled","previous_state":"queued"}',
        b'{"progress":0.5,"phase":"simulate"}',
        b'{"name":"equity","value":1.5}',
    ]


def test_a_log_line_always_carries_its_level() -> None:
    assert _json([LogData(message="m"), LogData(message="w", level="warning")]) == [
        b'{"message":"m","level":"info"}',
        b'{"message":"w","level":"warning"}',
    ]


def test_a_count_metric_stays_an_integer() -> None:
    assert _json([MetricData(name="trade_count", value=12)]) == [
        b'{"name":"trade_count","value":12}'
    ]


def test_each_data_model_names_its_event_type_and_the_union_agrees() -> None:
    kinds = {StateData: "state", ProgressData: "progress", MetricData: "metric", LogData: "log"}
    assert {m.type for m in kinds} == set(EventType)
    for model, kind in kinds.items():
        assert model.type == kind
        (data,) = wire_data([model.model_construct(**_sample(kind))])
        event = {"id": 1, "run_id": "r", "type": kind, "timestamp": "2026-01-01T00:00:00.000Z"}
        assert isinstance(EVENT_ADAPTER.validate_python({**event, "data": data}).data, model)


def _sample(kind: str) -> dict:
    return {
        "state": {"state": RunState.QUEUED, "previous_state": None},
        "progress": {"progress": 0.5},
        "metric": {"name": "m", "value": 1.0},
        "log": {"message": "m", "level": "info"},
    }[kind]


def test_data_out_of_its_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="progress"):
        ProgressData(progress=1.5)
    with pytest.raises(ValueError, match="state"):
        StateData(state="paused", previous_state=None)
