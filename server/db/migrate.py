"""Ordered SQL migrations, applied once each, under an advisory lock."""

import logging
from importlib import resources

import asyncpg

log = logging.getLogger("barstream.db")

_LOCK_KEY = 0x62617273  # "bars": serialises concurrent starts of several nodes


def _migrations() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) for every file in migrations/, in order."""
    folder = resources.files("server.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied; return their names."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in _migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied.append(name)
            log.info("applied migration %s", name)
    return applied
