"""The database: embedded or external PostgreSQL, a migrated asyncpg pool."""

import asyncpg
import orjson

from server.db.embedded import EmbeddedPostgres
from server.db.migrate import migrate
from server.settings import Settings


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


class Database:
    """Owns the PostgreSQL server (when embedded) and the connection pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedPostgres | None = None
        self.dsn = settings.database_url or ""
        self.pool: asyncpg.Pool | None = None
        self.writer: asyncpg.Pool | None = None

    async def open(self, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
        """Start or attach to PostgreSQL, apply migrations and open the pool."""
        if not self.dsn:
            self.embedded = EmbeddedPostgres(self.settings.pg_dir)
            self.dsn = self.embedded.start()
        conn = await asyncpg.connect(self.dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=min_size, max_size=max_size, init=_init_connection
        )
        return self.pool

    async def open_writer(self, size: int) -> asyncpg.Pool:
        """A second pool for the run writers, so request and stream load never delays a lease."""
        self.writer = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=size, init=_init_connection
        )
        return self.writer

    async def close(self) -> None:
        """Close the pools and release the embedded server."""
        for pool in (self.writer, self.pool):
            if pool is not None:
                await pool.close()
        self.pool = self.writer = None
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
