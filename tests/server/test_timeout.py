"""Limits: the maximum run time (even for a worker that does not listen) and active runs per user."""

from collections.abc import Iterator

import pytest

from tests.server.harness import ServerProcess, backtest, eventually, minute_run, serving
from tests.server.streaming import read_stream


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Runs may last one second and a user may have one active; each chunk pauses 30 s."""
    yield from serving(
        tmp_path_factory.mktemp("timeout"),
        workers="1",
        chunk_bars="5000",
        pace_seconds="30",
        max_run_seconds="1",
        cancel_grace_seconds="1",
        max_active_runs="1",
    )


async def test_unresponsive_run_is_stopped_and_fails_with_timeout(strict: ServerProcess) -> None:
    async with strict.client() as c:
        r = await c.post("/api/v2/backtests", json=minute_run(end="2025-01-31T00:00:00Z"))
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
        # One active run is the limit: the next create is refused, and stores nothing.
        more = await c.post("/api/v2/backtests", json=backtest())
        assert more.status_code == 429 and more.headers["retry-after"] == "5"
        assert more.json()["error"]["code"] == "too_many_runs"

        async def ended() -> dict | None:
            s = (await c.get(f"/api/v2/backtests/{run_id}")).json()
            return s if s["state"] in ("failed", "completed") else None

        # The worker sleeps 30 s between chunks, so it cannot see the cancel: it is terminated.
        final = await eventually(ended, timeout=25)
        assert (await c.get("/api/v2/backtests")).headers["x-total-count"] == "1"
    assert final["state"] == "failed"
    assert final["error"]["code"] == "timeout" and "1 s" in final["error"]["message"]
    assert "ignored a cancel" in strict.log()
    events, code, _ = await read_stream(
        f"{strict.ws_url}/api/v2/backtests/{run_id}/stream", {"X-API-Key": strict.key}
    )
    assert code == 1000
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"] == {
        "state": "failed",
        "previous_state": "running",
        "error": final["error"],
    }


async def test_replacement_worker_takes_the_next_run(strict: ServerProcess) -> None:
    async with strict.client() as c:
        r = await c.post("/api/v2/backtests", json=backtest())
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]

        async def ended() -> dict | None:
            s = (await c.get(f"/api/v2/backtests/{run_id}")).json()
            return s if s["state"] in ("failed", "completed") else None

        # The new worker runs it (the pause after its one chunk then outlasts the limit again).
        final = await eventually(ended, timeout=25)
        assert final["started_at"] is not None
    assert final["state"] == "failed" and final["error"]["code"] == "timeout"
    assert strict.log().count("ignored a cancel") == 2
