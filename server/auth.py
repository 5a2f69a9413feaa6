"""API keys: random, shown once, stored as a SHA-256 hash, compared in constant time; live keys
cached briefly by that hash (KeyCache)."""

import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass

import asyncpg
from starlette.requests import HTTPConnection

from protocol.errors import ApiError, ErrorCode

KEY_PREFIX = "bs_"
KEYS_CHANNEL = "barstream_keys"  # NOTIFY payload: the prefix of a key revoked just now
_PREFIX_LEN = 12


@dataclass(frozen=True)
class User:
    """The owner behind a key."""

    id: uuid.UUID
    name: str


def new_key() -> str:
    """Return a fresh key: `bs_` and 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _hash(key: str) -> bytes:
    # Keys carry 256 random bits, so a fast hash is enough; no salt or KDF is needed.
    return hashlib.sha256(key.encode()).digest()


def lookup_prefix(key: str) -> str:
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + _PREFIX_LEN]


async def create_key(conn: asyncpg.Connection, user_name: str, *, signed_only: bool = False) -> str:
    """Create the user if needed, store a new key's hash, and return the key (shown once).

    A `signed_only` key authenticates only signed requests (seed 004), never by itself.
    """
    async with conn.transaction():
        user_id = await conn.fetchval(
            "INSERT INTO users (id, name) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            uuid.uuid4(),
            user_name,
        )
        key = new_key()
        await conn.execute(
            "INSERT INTO api_keys (id, user_id, prefix, key_hash, signed_only)"
            " VALUES ($1, $2, $3, $4, $5)",
            uuid.uuid4(),
            user_id,
            lookup_prefix(key),
            _hash(key),
            signed_only,
        )
    return key


async def list_keys(conn: asyncpg.Connection, user_name: str | None) -> list[asyncpg.Record]:
    """Every key (prefix, user, created, revoked or expiring), oldest first; never the key."""
    return await conn.fetch(
        "SELECT k.prefix, u.name AS user, k.created_at, k.revoked_at, k.signed_only,"
        " (k.revoked_at IS NOT NULL AND k.revoked_at <= now()) AS revoked"
        " FROM api_keys k JOIN users u ON u.id = k.user_id"
        " WHERE $1::text IS NULL OR u.name = $1 ORDER BY k.created_at",
        user_name,
    )


async def revoke(conn: asyncpg.Connection, prefix: str, *, after_seconds: float = 0.0) -> bool:
    """Revoke the key with this prefix now (or after a grace period); tell every node, so open
    streams made with it close. Return whether such a live key existed."""
    async with conn.transaction():
        found = await conn.fetchval(
            "UPDATE api_keys SET revoked_at = now() + $2 * interval '1 second'"
            " WHERE prefix = $1 AND (revoked_at IS NULL OR revoked_at > now()) RETURNING true",
            prefix,
            after_seconds,
        )
        if found and after_seconds <= 0:
            await conn.execute("SELECT pg_notify($1, $2)", KEYS_CHANNEL, prefix)
    KEYS.forget(prefix)  # this process at once; other processes and nodes by the NOTIFY
    return bool(found)


async def rotate(conn: asyncpg.Connection, key: str, grace_seconds: float) -> str | None:
    """A new key for the owner of `key`; the old one keeps working for `grace_seconds`.
    None when `key` is not a live key."""
    row = await conn.fetchrow(
        "SELECT u.name, k.key_hash, k.signed_only FROM api_keys k JOIN users u ON u.id = k.user_id"
        " WHERE k.prefix = $1 AND (k.revoked_at IS NULL OR k.revoked_at > now())",
        lookup_prefix(key),
    )
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), _hash(key)):
        return None
    async with conn.transaction():
        new = await create_key(conn, row["name"], signed_only=row["signed_only"])
        await revoke(conn, lookup_prefix(key), after_seconds=grace_seconds)
    return new


async def ensure_first_user(conn: asyncpg.Connection, user_name: str = "local") -> str | None:
    """On an empty database, create the local user and return its key; else None."""
    async with conn.transaction():
        await conn.execute("LOCK TABLE users IN EXCLUSIVE MODE")
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users)"):
            return None
        return await create_key(conn, user_name)


@dataclass(frozen=True)
class _Entry:
    """A live key as the database answered: its owner, until when it may be trusted."""

    user: User
    prefix: str
    signed_only: bool
    until: float  # time.monotonic(): the cache's TTL, or the key's own expiry if sooner


class KeyCache:
    """Live keys recently looked up, by the SHA-256 of the key (never the key itself).

    A hit saves the database query every request made. An entry lasts `ttl` seconds at most,
    and never past the key's own expiry (a rotation's grace). A revocation drops the key's
    entries as soon as its NOTIFY arrives (`forget`, called by the hub); `ttl` bounds how long
    a missed notification (the listener reconnecting) can keep a revoked key working. Only
    live keys are cached: a key made a moment ago works at once.
    """

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[bytes, _Entry] = {}
        self._generation = 0  # bumped by forget: a lookup that raced a revocation stores nothing

    def get(self, digest: bytes) -> _Entry | None:
        """The entry of this key hash while it may be trusted, else None."""
        entry = self._entries.get(digest)
        if entry is not None and time.monotonic() >= entry.until:
            self._entries.pop(digest, None)
            return None
        return entry

    def put(self, digest: bytes, entry: _Entry, generation: int) -> None:
        """Remember a live key, unless a revocation arrived since its lookup began."""
        if self.ttl <= 0 or generation != self._generation:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()  # rare: more live keys in use than the cache holds
        self._entries[digest] = entry

    @property
    def generation(self) -> int:
        return self._generation

    def forget(self, prefix: str) -> None:
        """Drop the entries of the key with this prefix (it was revoked just now)."""
        self._generation += 1
        for digest in [d for d, e in self._entries.items() if e.prefix == prefix]:
            self._entries.pop(digest, None)

    def clear(self) -> None:
        """Drop every entry."""
        self._generation += 1
        self._entries.clear()


# How long a live key is trusted without asking the database (0: ask on every request).
KEY_CACHE_SECONDS = float(os.environ.get("BARSTREAM_KEY_CACHE_SECONDS") or 2.0)
KEYS = KeyCache(KEY_CACHE_SECONDS)


async def authenticate(pool: asyncpg.Pool, key: str | None, *, signed: bool = False) -> User | None:
    """Return the user owning `key`, or None for a missing, unknown or revoked key, or for a
    signed-only key on a request that is not `signed`."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200 or not key.isascii():
        return None
    if "\x00" in key:
        return None  # PostgreSQL refuses NUL in text: a key with one is simply not a key
    digest = _hash(key)
    # A hit matched the SHA-256 of the presented key: timing tells nothing of a stored hash.
    entry = KEYS.get(digest) or await _lookup(pool, key, digest)
    if entry is None or (entry.signed_only and not signed):
        return None
    return entry.user


async def _lookup(pool: asyncpg.Pool, key: str, digest: bytes) -> _Entry | None:
    """Ask the database for a live key; cache what it says."""
    generation = KEYS.generation
    row = await pool.fetchrow(
        "SELECT k.key_hash, k.signed_only, u.id, u.name,"
        " extract(epoch FROM k.revoked_at - now())::float8 AS left"
        " FROM api_keys k JOIN users u ON u.id = k.user_id"
        " WHERE k.prefix = $1 AND (k.revoked_at IS NULL OR k.revoked_at > now())",
        lookup_prefix(key),
    )
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), digest):
        return None
    left = KEYS.ttl if row["left"] is None else min(KEYS.ttl, row["left"])
    entry = _Entry(
        User(id=row["id"], name=row["name"]),
        lookup_prefix(key),
        row["signed_only"],
        time.monotonic() + left,
    )
    KEYS.put(digest, entry, generation)
    return entry


def key_from(conn: HTTPConnection, *, allow_query: bool = False) -> str | None:
    """Read the key: `Authorization: Bearer`, then `X-API-Key`, then (streams only) `?api_key=`."""
    auth = conn.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if conn.headers.get("x-api-key"):
        return conn.headers["x-api-key"].strip()
    if allow_query:
        return conn.query_params.get("api_key") or None
    return None


async def require_user(conn: HTTPConnection) -> User:
    """Authenticate a REST request or raise 401."""
    user = await authenticate(conn.app.state.pool, key_from(conn))
    if user is None:
        raise ApiError(
            401,
            ErrorCode.UNAUTHORIZED,
            "missing or invalid API key: send Authorization: Bearer KEY or X-API-Key: KEY",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user
