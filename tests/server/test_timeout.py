"""A run longer than the maximum run time fails with error code `timeout`."""

from collections.abc import Iterator

import pytest

from tests.server.harness import ServerProcess, eventually, serving
from tests.server.streaming import read_stream
from tests.server.test_restart import long_run


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose runs may last one second, with runs paced to last several."""
    yield from serving(
        tmp_path_factory.mktemp("timeout"),
        workers="1",
        chunk_bars="5000",
        pace_seconds="0.05",
        max_run_seconds="1",
        demo_days="400",
    )


async def test_run_over_the_limit_fails_with_timeout(strict: ServerProcess) -> None:
    body = long_run()
    body["end"] = "2025-01-31T00:00:00Z"
    async with strict.client() as c:
        r = await c.post("/api/v2/backtests", json=body)
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]

        async def ended() -> dict | None:
            s = (await c.get(f"/api/v2/backtests/{run_id}")).json()
            return s if s["state"] in ("failed", "completed") else None

        final = await eventually(ended, timeout=60)
    assert final["state"] == "failed"
    assert final["error"]["code"] == "timeout" and "1 s" in final["error"]["message"]
    events, code, _ = await read_stream(
        f"{strict.ws_url}/api/v2/backtests/{run_id}/stream", {"X-API-Key": strict.key}
    )
    assert code == 1000
    assert events[-1]["data"] == {
        "state": "failed",
        "previous_state": "running",
        "error": final["error"],
    }
