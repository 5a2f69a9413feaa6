"""Signed requests of the seed 004 surface: HMAC-SHA256 over the timestamp, method, path and body.

Every API key has a signing secret, `bss_` + 43 URL-safe characters, shown once beside the key
when it is created. It is not stored: it is derived as HMAC-SHA256(server secret, key prefix),
where the server secret is 32 random bytes kept in the database (`server_secrets`), so every
node derives the same secrets and a stolen key hash table alone signs nothing.

A request carries three headers:

    X-PipAI-API-Key:   the API key (bs_…)
    X-PipAI-Timestamp: Unix time in seconds, or in milliseconds (13 digits)
    X-PipAI-Signature: hex(HMAC-SHA256(secret, f"{timestamp}\\n{METHOD}\\n{path_and_query}\\n{hex(SHA-256(body))}"))

`path_and_query` is the request path exactly as sent with its query string (`/v1/backtest/jobs?
limit=5`); an empty body hashes as SHA-256 of zero bytes. The timestamp must be within
`window` seconds (default 300) of the server's clock. A signature is accepted once for requests
that change state (POST, PUT, PATCH, DELETE): a replay within the window is refused, so a client
sending the same POST twice within one second signs with a millisecond timestamp.
"""

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import asyncpg

from server.auth import KEY_PREFIX, User, authenticate, lookup_prefix

SECRET_PREFIX = "bss_"
_SERVER_SECRET = "signing"
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TIMESTAMP = re.compile(r"[0-9]{1,13}")  # ASCII digits only (str.isdigit takes "²")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class SignatureError(Exception):
    """A request that is not correctly signed; the message says why."""


_CACHE: dict[int, bytes] = {}


async def server_secret(conn: asyncpg.Connection | asyncpg.Pool) -> bytes:
    """The database's signing secret, created on first use (the same on every node)."""
    if id(conn) in _CACHE:
        return _CACHE[id(conn)]
    await conn.execute(
        "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        _SERVER_SECRET,
        secrets.token_bytes(32),
    )
    value = bytes(
        await conn.fetchval("SELECT value FROM server_secrets WHERE name = $1", _SERVER_SECRET)
    )
    if isinstance(conn, asyncpg.Pool):
        _CACHE[id(conn)] = value  # a pool lives as long as its server
    return value


def derive(master: bytes, key: str) -> str:
    """The signing secret of an API key."""
    digest = hmac.new(master, f"barstream-signing:{lookup_prefix(key)}".encode(), "sha256")
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def string_to_sign(timestamp: str, method: str, path_and_query: str, body: bytes) -> str:
    """What is signed: four lines, the last the body's SHA-256 in hex."""
    return f"{timestamp}\n{method.upper()}\n{path_and_query}\n{hashlib.sha256(body).hexdigest()}"


def sign(secret: str, timestamp: str, method: str, path_and_query: str, body: bytes) -> str:
    """The signature a client sends (hex)."""
    message = string_to_sign(timestamp, method, path_and_query, body).encode()
    return hmac.new(secret.encode(), message, "sha256").hexdigest()


@dataclass(frozen=True)
class Signed:
    """The three signing headers of a request."""

    key: str | None
    timestamp: str | None
    signature: str | None


async def verify(
    pool: asyncpg.Pool,
    headers: Signed,
    method: str,
    path_and_query: str,
    body: bytes,
    *,
    window: float = 300.0,
    now: float | None = None,
) -> User:
    """The user of a correctly signed request, or SignatureError saying what is wrong."""
    missing = [
        name for name, value in (("X-PipAI-API-Key", headers.key),
                                 ("X-PipAI-Timestamp", headers.timestamp),
                                 ("X-PipAI-Signature", headers.signature)) if not value
    ]  # fmt: skip
    if missing:
        raise SignatureError(f"missing header {', '.join(missing)}: requests must be signed")
    assert headers.key and headers.timestamp and headers.signature
    if not _TIMESTAMP.fullmatch(headers.timestamp):
        raise SignatureError("X-PipAI-Timestamp must be Unix time in seconds or milliseconds")
    stamp = int(headers.timestamp) / (1000 if len(headers.timestamp) == 13 else 1)
    skew = stamp - (time.time() if now is None else now)
    if abs(skew) > window:
        raise SignatureError(
            f"X-PipAI-Timestamp is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the"
            f" server's clock; at most {window:g} s are allowed"
        )
    user = (
        await authenticate(pool, headers.key, signed=True)
        if headers.key.startswith(KEY_PREFIX)
        else None
    )
    given = headers.signature.strip().lower()
    expected = ""
    if user is not None:
        secret = derive(await server_secret(pool), headers.key)
        expected = sign(secret, headers.timestamp, method, path_and_query, body)
    # One answer for an unknown key and a wrong signature: whether a key exists does not leak.
    if (
        user is None
        or not _HEX64.fullmatch(given)
        or not hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise SignatureError("invalid API key or signature: the signature does not match")
    if method.upper() in _CHANGES:
        await _once(pool, expected, window)
    return user


async def _once(pool: asyncpg.Pool, signature: str, window: float) -> None:
    """Refuse a state-changing request whose signature was already used."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM signed_requests WHERE seen_at < now() - $1 * interval '1 second'",
            2 * window,
        )
        fresh = await conn.fetchval(
            "INSERT INTO signed_requests (signature) VALUES ($1) ON CONFLICT DO NOTHING"
            " RETURNING true",
            signature,
        )
    if not fresh:
        raise SignatureError("this signed request was already received (a replay)")
