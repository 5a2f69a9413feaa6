"""Start-up and shut-down, in order: database, first key, data, workers, hub, dispatcher."""

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette

from engine.data import BarStore, DemoUpdate, demo_end_ns, update_demo_data
from server import outage
from server.auth import KEYS, ensure_first_user
from server.db.pool import Database
from server.hub import Hub
from server.jobs import Dispatcher
from server.signing import derive, server_secret
from server.stream import Streams
from server.workers import WorkerPool

log = logging.getLogger("barstream")


_DEMO_LOCK = 0x62617274  # one node at a time tops up the demo data of a shared bar store


async def _update_demo(pool: asyncpg.Pool, store: BarStore, end: str | None) -> DemoUpdate:
    """Generate or top up the demo data, one node at a time (nodes may share the bar store)."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _DEMO_LOCK)
        try:
            return await asyncio.to_thread(update_demo_data, store, demo_end_ns(end))
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _DEMO_LOCK)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """Bring every part up before the first request and down after the last (or a failed start)."""
    settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        db = Database(settings)
        stack.push_async_callback(db.close)
        pool = await db.open()
        async with pool.acquire() as conn:
            key = await ensure_first_user(conn)
        if key is not None:
            # Printed, never logged: this is the only time the key exists in clear.
            print(f"barstream: created user 'local'; its API key (shown once): {key}", flush=True)
            secret = derive(await server_secret(pool), key)
            print(f"barstream: its signing secret for seed 004 requests (shown once): {secret}",
                  flush=True)  # fmt: skip
        store = BarStore(settings.bars_dir)
        demo = await _update_demo(pool, store, settings.demo_end)
        if demo.summary():
            log.info("%s", demo.summary())
        workers = WorkerPool(settings.workers)
        stack.push_async_callback(workers.close)
        await workers.start()
        hub = Hub(db.dsn)
        stack.push_async_callback(hub.stop)
        await hub.start()
        if db.embedded is not None:
            # An embedded database stops with its node: runs left running (by it, or by nodes
            # sharing it on this machine) were cut off then.
            await pool.execute("UPDATE runs SET lease_expires_at = now() WHERE state = 'running'")
            await pool.execute(
                "UPDATE sweep_shards SET lease_expires_at = now() WHERE state = 'running'"
            )
            log.info("other nodes on this machine may share it: DATABASE_URL=%s", db.dsn)
        writer = await db.open_writer(2 * workers.size + 2)
        dispatcher = Dispatcher(settings, writer, workers)
        stack.push_async_callback(dispatcher.stop)
        hub.on_cancel(dispatcher.cancel)
        hub.on_work(dispatcher.woken)
        streams = Streams()
        hub.on_revoke(streams.revoke)
        hub.on_revoke(KEYS.forget)  # REST stops trusting a revoked key's cache entry
        stack.push_async_callback(streams.wait_closed)
        stack.callback(streams.shutdown)
        app.state.pool, app.state.store, app.state.workers = pool, store, workers
        app.state.hub, app.state.dispatcher, app.state.streams = hub, dispatcher, streams
        app.state.dsn = db.dsn
        dispatcher.start()
        watcher = asyncio.create_task(outage.watch(db, app.state.outage), name="db-watch")
        stack.callback(watcher.cancel)
        log.info("barstream ready with %d workers", workers.size)
        yield
    print("barstream: stopped", file=sys.stderr, flush=True)
