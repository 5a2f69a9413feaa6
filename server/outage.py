"""Database outages: recognised as such, answered 503, logged once per change of state."""

import asyncio
import logging
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from server.db.pool import Database

log = logging.getLogger("barstream.db")

# What a request meets while PostgreSQL is down or restarting: refused or broken connections,
# a pool that cannot connect, a server shutting down or starting up. A backend that sees its
# postmaster die (or is terminated) sends FATAL to its idle connection before closing it; a
# pool can hand that connection out in between, and asyncpg then raises InternalClientError.
DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InternalClientError,
)
RETRY_AFTER = "2"


class Outage:
    """Whether the database is reachable, as last seen; one log line per change."""

    def __init__(self) -> None:
        self.down = False

    def note(self, exc: BaseException) -> None:
        """A database call failed with `exc`."""
        if not self.down:
            self.down = True
            log.warning("database unavailable (%s: %s); answering 503 until it is back",
                        type(exc).__name__, str(exc)[:200] or "no detail")  # fmt: skip

    def recovered(self) -> None:
        """A database call succeeded."""
        if self.down:
            self.down = False
            log.warning("database available again")


async def watch(db: "Database", outage: Outage, every: float = 1.0) -> None:
    """Probe the database every `every` seconds; restart an embedded PostgreSQL that died
    (backing off from 1 s to 30 s between failed restarts), then probe again at once."""
    backoff = 1.0
    while True:
        try:
            assert db.pool is not None
            await asyncio.wait_for(db.pool.fetchval("SELECT 1"), 2.0)
        except (*DB_ERRORS, TimeoutError) as exc:
            outage.note(exc)
        else:
            outage.recovered()
            await asyncio.sleep(every)
            continue
        if db.embedded is None or db.embedded.running():
            await asyncio.sleep(every)
            continue
        try:
            await asyncio.to_thread(db.embedded.restart)
            log.warning("restarted the embedded PostgreSQL")
            backoff = 1.0
        except Exception as exc:
            log.warning("could not restart the embedded PostgreSQL (%s); retrying in %.0f s",
                        str(exc)[:200], backoff)  # fmt: skip
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, 30.0)
