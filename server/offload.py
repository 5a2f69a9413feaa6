"""CPU-bound request work (checking a run, expanding a sweep) off the event loop, one at a time.

Threads keep the loop free only if few of them fight it for the interpreter lock: ten sweep
expansions at once made /healthz wait 160-330 ms on average; one at a time, the loop gets the
lock every switch interval. Requests beyond the bound wait their turn (their own latency grows;
everyone else's does not).
"""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_LIMITS: dict[int, asyncio.Semaphore] = {}
CONCURRENT = 1


async def run(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `func` in a thread, at most CONCURRENT at a time per event loop."""
    loop = id(asyncio.get_running_loop())
    limit = _LIMITS.setdefault(loop, asyncio.Semaphore(CONCURRENT))
    async with limit:
        return await asyncio.to_thread(func, *args, **kwargs)
