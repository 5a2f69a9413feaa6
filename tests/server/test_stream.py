"""The WebSocket stream: replay, live tail, resume, auth, close codes, slow subscribers."""

import asyncio
import itertools
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from protocol.events import EVENT_ADAPTER
from tests.server.harness import ServerProcess, backtest, eventually, minute_run
from tests.server.streaming import read_stream

DENIED = "invalid API key or backtest not found"


def slow_run() -> dict[str, Any]:
    """A year of paced 1-minute bars: running for a few seconds, with many progress events."""
    return minute_run()


async def create(
    server: ServerProcess, body: dict[str, Any] | None = None, key: str | None = None
) -> str:
    async with server.client(key) as c:
        r = await c.post("/api/v2/backtests", json=body or slow_run())
        assert r.status_code == 201, r.text
        return r.json()["run_id"]


def stream_url(server: ServerProcess, run_id: str, query: str = "") -> str:
    return f"{server.ws_url}/api/v2/backtests/{run_id}/stream{query}"


def assert_complete_sequence(events: list[dict[str, Any]], run_id: str, final: str) -> None:
    for e in events:
        EVENT_ADAPTER.validate_python(e)  # every event matches the published schema
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["run_id"] == run_id for e in events)
    assert events[0]["type"] == "state" and events[0]["data"]["state"] == "queued"
    assert events[-1]["type"] == "state" and events[-1]["data"]["state"] == final
    terminal = [e for e in events if e["type"] == "state" and e["data"]["state"] == final]
    assert len(terminal) == 1


async def test_full_stream_is_gap_free_and_ends_with_1000(server: ServerProcess) -> None:
    run_id = await create(server)
    events, code, _ = await read_stream(
        stream_url(server, run_id), {"Authorization": f"Bearer {server.key}"}
    )
    assert code == 1000
    assert_complete_sequence(events, run_id, "completed")
    states = [e["data"]["state"] for e in events if e["type"] == "state"]
    assert states == ["queued", "running", "completed"]
    progress = [e["data"]["progress"] for e in events if e["type"] == "progress"]
    assert len(progress) >= 10, "a paced one-year minute run reports progress as it goes"
    assert (
        progress == sorted(progress) and progress[-1] == 1.0 and all(0 < p <= 1 for p in progress)
    )
    assert all(b - a >= 0.01 - 1e-9 for a, b in itertools.pairwise(progress))
    metrics = {e["data"]["name"] for e in events if e["type"] == "metric"}
    assert {"total_return", "sharpe_ratio", "max_drawdown", "win_rate", "profit_factor"} <= metrics
    assert any(e["data"].get("running") for e in events if e["type"] == "metric")
    assert all(e["timestamp"].endswith("Z") for e in events)
    async with server.client() as c:
        status = (await c.get(f"/api/v2/backtests/{run_id}")).json()
    assert status["state"] == events[-1]["data"]["state"]


async def test_three_auth_methods_replay_the_same_events(server: ServerProcess) -> None:
    run_id = await create(server, backtest())
    by_bearer, c1, _ = await read_stream(
        stream_url(server, run_id), {"Authorization": f"Bearer {server.key}"}
    )
    by_header, c2, _ = await read_stream(stream_url(server, run_id), {"X-API-Key": server.key})
    by_query, c3, _ = await read_stream(stream_url(server, run_id, f"?api_key={server.key}"))
    assert c1 == c2 == c3 == 1000
    assert by_bearer == by_header == by_query
    assert_complete_sequence(by_bearer, run_id, "completed")


async def test_bearer_takes_precedence_over_query_key(server: ServerProcess) -> None:
    run_id = await create(server, backtest())
    _, code, reason = await read_stream(
        stream_url(server, run_id, f"?api_key={server.key}"), {"Authorization": "Bearer bs_wrong"}
    )
    assert (code, reason) == (1008, DENIED)


async def test_denials_close_1008_with_one_reason(server: ServerProcess, other_key: str) -> None:
    run_id = await create(server, backtest())
    cases = [
        (stream_url(server, run_id), {}),
        (stream_url(server, run_id), {"X-API-Key": "bs_not_a_key"}),
        (stream_url(server, "00000000-0000-0000-0000-000000000000"), {"X-API-Key": server.key}),
        (stream_url(server, "garbage"), {"X-API-Key": server.key}),
        (stream_url(server, run_id), {"X-API-Key": other_key}),
    ]
    for url, headers in cases:
        events, code, reason = await read_stream(url, headers)
        assert (events, code, reason) == ([], 1008, DENIED), url


async def test_reconnect_with_last_event_id_misses_nothing(server: ServerProcess) -> None:
    run_id = await create(server)
    headers = {"X-API-Key": server.key}
    first, _, _ = await read_stream(stream_url(server, run_id), headers, limit=5)
    last = first[-1]["id"]
    rest, code, _ = await read_stream(stream_url(server, run_id, f"?last_event_id={last}"), headers)
    assert code == 1000
    assert rest[0]["id"] == last + 1
    assert_complete_sequence(first + rest, run_id, "completed")


async def test_reconnect_many_times_while_live(server: ServerProcess) -> None:
    run_id = await create(server)
    headers = {"X-API-Key": server.key}
    seen: list[dict[str, Any]] = []
    code = None
    while code != 1000:
        query = f"?last_event_id={seen[-1]['id']}" if seen else ""
        got, code, _ = await read_stream(stream_url(server, run_id, query), headers, limit=3)
        seen += got
    assert_complete_sequence(seen, run_id, "completed")


async def test_resume_after_the_end_closes_at_once(server: ServerProcess) -> None:
    run_id = await create(server, backtest())
    events, _, _ = await read_stream(stream_url(server, run_id), {"X-API-Key": server.key})
    again, code, _ = await read_stream(
        stream_url(server, run_id, f"?last_event_id={events[-1]['id']}"), {"X-API-Key": server.key}
    )
    assert (again, code) == ([], 1000)
    tail, code, _ = await read_stream(
        stream_url(server, run_id, f"?last_event_id={events[-1]['id'] - 2}"),
        {"X-API-Key": server.key},
    )
    assert tail == events[-2:] and code == 1000
    _, code, _ = await read_stream(
        stream_url(server, run_id, "?last_event_id=-1"), {"X-API-Key": server.key}
    )
    assert code == 1008


async def test_slow_subscriber_holds_up_nobody(server: ServerProcess) -> None:
    run_id = await create(server)
    headers = {"X-API-Key": server.key}
    async with connect(
        stream_url(server, run_id), additional_headers=headers, max_queue=1
    ) as stalled:
        # This subscriber reads nothing while the run goes to the end and another reads it all.
        fast, code, _ = await read_stream(stream_url(server, run_id), headers)
        assert code == 1000
        assert_complete_sequence(fast, run_id, "completed")
        got = [await stalled.recv() for _ in range(len(fast))]
    assert [orjson.loads(g) for g in got] == fast


async def test_cancel_ends_the_stream(server: ServerProcess) -> None:
    run_id = await create(server)
    headers = {"X-API-Key": server.key}

    async def cancel_when_running() -> None:
        async with server.client() as c:

            async def running() -> bool:
                return (await c.get(f"/api/v2/backtests/{run_id}")).json()["state"] == "running"

            await eventually(running)
            assert (await c.post(f"/api/v2/backtests/{run_id}/cancel")).status_code == 202

    (events, code, _), _ = await asyncio.gather(
        read_stream(stream_url(server, run_id), headers), cancel_when_running()
    )
    assert code == 1000
    assert_complete_sequence(events, run_id, "cancelled")
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as c:
        assert (await c.get(f"/api/v2/backtests/{run_id}")).json()["state"] == "cancelled"
