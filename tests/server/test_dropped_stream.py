"""A stream cut in the network mid-run (tests/server/proxy.py) resumes with last_event_id."""

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.server.harness import ServerProcess, minute_run
from tests.server.proxy import Proxy


async def test_a_cut_stream_resumes_without_a_gap(server: ServerProcess) -> None:
    proxy = Proxy(server.port).start()
    try:
        async with server.client() as c:
            run_id = (await c.post("/api/v2/backtests", json=minute_run())).json()["run_id"]
        url = f"{proxy.ws_url}/api/v2/backtests/{run_id}/stream?api_key={server.key}"
        seen: list[int] = []
        drops = 0
        while True:
            last = f"&last_event_id={seen[-1]}" if seen else ""
            try:
                async with connect(url + last, open_timeout=30) as ws:
                    async for raw in ws:
                        event = orjson.loads(raw)
                        seen.append(event["id"])
                        if len(seen) in (3, 12) and drops < 2:
                            drops += 1
                            assert proxy.drop_all() >= 1
                    break  # closed normally after the terminal state
            except ConnectionClosed as exc:
                assert exc.rcvd is None  # cut, not closed by the server
        assert drops == 2
        assert seen == list(range(1, len(seen) + 1))
    finally:
        proxy.stop()
