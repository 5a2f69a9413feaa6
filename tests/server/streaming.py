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
    async with connect(url, additional_headers=headers or {}, open_timeout=30) as ws:
        try:
            async for raw in ws:
                got.append(orjson.loads(raw))
                if limit is not None and len(got) >= limit:
                    return got, None, ""
        except ConnectionClosed:
            pass
        return got, ws.close_code, ws.close_reason
