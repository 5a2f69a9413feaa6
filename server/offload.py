"""CPU-bound request work (checking a run, expanding a sweep) off the event loop, one at a time.

Threads keep the loop free only if few of them fight it for the interpreter lock: ten sweep
expansions at once made /healthz wait 160-330 ms on average; one at a time, the loop gets the
lock every switch interval. Requests beyond the bound wait their turn (their own latency grows;
everyone else's does not).

The bound is a lane: CONCURRENT long-lived threads taking jobs from one queue. A thread starts
the next job as soon as the last one ends, without waiting for the event loop to hand it over
(asyncio.to_thread behind a semaphore paid two interpreter-lock handoffs and a loop iteration
per job, which capped small checks at a few hundred a second while the loop was busy).
"""

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
CONCURRENT = 1
_Job = tuple[contextvars.Context, Callable[[], Any], asyncio.AbstractEventLoop, asyncio.Future]
_LANES: dict[int, "queue.SimpleQueue[_Job]"] = {}
_GUARD = threading.Lock()


def _settle(future: asyncio.Future, value: Any, error: BaseException | None) -> None:
    if future.done():
        return  # the request went away
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _work(jobs: "queue.SimpleQueue[_Job]") -> None:
    """One lane thread: run jobs in arrival order, forever."""
    while True:
        ctx, call, loop, future = jobs.get()
        value, error = None, None
        try:
            value = ctx.run(call)
        except BaseException as exc:  # handed to the awaiting request, whatever it is
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits for this answer
            loop.call_soon_threadsafe(_settle, future, value, error)
        del value, error, future, call, ctx  # let the answer go before the next get blocks


def _lane(loop: asyncio.AbstractEventLoop) -> "queue.SimpleQueue[_Job]":
    """This loop's job queue, its threads started on first use."""
    with _GUARD:
        jobs = _LANES.get(id(loop))
        if jobs is None:
            jobs = _LANES[id(loop)] = queue.SimpleQueue()
            for i in range(CONCURRENT):
                name = f"offload-{i}"
                threading.Thread(target=_work, args=(jobs,), name=name, daemon=True).start()
        return jobs


async def run(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `func` in a lane thread, at most CONCURRENT at a time per event loop."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    _lane(loop).put((contextvars.copy_context(), lambda: func(*args, **kwargs), loop, future))
    return await future
