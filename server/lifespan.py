"""Start-up and shut-down, in order: database, first key, data, workers, hub, dispatcher."""

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from engine.data.demo import demo_end_ns, update_demo_data
from engine.data.store import BarStore
from server import outage
from server.auth import ensure_first_user
from server.db.pool import Database
from server.hub import Hub
from server.jobs import Dispatcher
from server.signing import derive, server_secret
from server.stream import Streams
from server.workers import WorkerPool

log = logging.getLogger("barstream")


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
        demo = await asyncio.to_thread(update_demo_data, store, demo_end_ns(settings.demo_end))
        if demo.summary():
            log.info("%s", demo.summary())
        workers = WorkerPool(settings.workers)
        stack.push_async_callback(workers.close)
        await workers.start()
        hub = Hub(db.dsn)
        stack.push_async_callback(hub.stop)
        await hub.start()
        if db.embedded is not None:
            # An embedded database has one server: runs it left running were orphaned by its exit.
            await pool.execute("UPDATE runs SET lease_expires_at = now() WHERE state = 'running'")
        writer = await db.open_writer(2 * workers.size + 2)
        dispatcher = Dispatcher(settings, writer, workers)
        stack.push_async_callback(dispatcher.stop)
        hub.on_cancel(dispatcher.cancel)
        streams = Streams()
        hub.on_revoke(streams.revoke)
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
