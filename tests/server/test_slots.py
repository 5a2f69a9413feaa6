"""The dispatcher's synchronous slots: the limit holds for requests arriving together."""

import asyncio
from types import SimpleNamespace

from server.jobs import Busy, Dispatcher
from server.settings import Settings


async def test_sync_slot_limit_holds_under_concurrency() -> None:
    d = Dispatcher(Settings(sync_slots=1), pool=None, workers=SimpleNamespace(size=3))  # type: ignore[arg-type]

    async def one() -> bool:
        try:
            await d.reserve()
        except Busy:
            return False
        return True

    got = await asyncio.gather(*(one() for _ in range(3)))
    assert sorted(got) == [False, False, True] and d.sync_running == 1
    d.release(1)
    assert d.sync_running == 0 and await one()


async def test_reserve_many_takes_what_is_free_and_gives_it_back() -> None:
    d = Dispatcher(Settings(sync_slots=0), pool=None, workers=SimpleNamespace(size=3))  # type: ignore[arg-type]
    assert await d.reserve(count=5) == 3 and d.sync_running == 3
    try:
        await d.reserve(wait=0.01)
        raise AssertionError("a fourth slot was handed out")
    except Busy:
        pass
    assert d.sync_running == 3
    d.release(3)
    assert await d.reserve(count=2) == 2
