"""A WebSocket client helper: read a run's stream until the server closes it."""

from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def read_stream(
    url: str, headers: dict[str, str] | None = None, limit: int | None = None
) -> tuple[list[dict[str, Any]], int | None, str]:
    """Return (events, close code, close reason); stop early after `limit` events."""
    got: list[dict[str, Any]] = []
    # max_queue=None: a client that stops early (limit) closes while the server may still have
    # a burst of frames in flight; with websockets' default queue of 16 its reading pauses, the
    # server's close reply sits unread behind them and the close waits out close_timeout (10 s).
    async with connect(
        url, additional_headers=headers or {}, open_timeout=30, max_queue=None
    ) as ws:
        try:
            async for raw in ws:
                got.append(orjson.loads(raw))
                if limit is not None and len(got) >= limit:
                    return got, None, ""
        except ConnectionClosed:
            pass
        return got, ws.close_code, ws.close_reason
