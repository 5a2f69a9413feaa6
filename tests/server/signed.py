"""A seed 004 client: every request signed by the documented recipe (server.signing's docstring).

The recipe is written out here again, on purpose, rather than imported: the test checks that
what the README documents is what the server accepts.
"""

import hashlib
import hmac
import time
from typing import Any

import httpx
import orjson


def signature(secret: str, ts: str, method: str, target: str, body: bytes) -> str:
    """hex HMAC-SHA256(secret, "{ts}\\n{METHOD}\\n{path?query}\\n{sha256hex(body)}")."""
    message = f"{ts}\n{method.upper()}\n{target}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class SignedClient:
    """httpx with the three X-PipAI headers on every request."""

    def __init__(self, base_url: str, key: str, secret: str, skew: float = 0.0) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=60)
        self.key, self.secret, self.skew = key, secret, skew

    def headers(self, method: str, target: str, body: bytes, ts: str | None = None) -> dict:
        ts = ts or str(int((time.time() + self.skew) * 1000))  # milliseconds: see server.signing
        return {
            "X-PipAI-API-Key": self.key,
            "X-PipAI-Timestamp": ts,
            "X-PipAI-Signature": signature(self.secret, ts, method, target, body),
            "Content-Type": "application/json",
        }

    async def request(
        self, method: str, target: str, json: Any = None, **kw: Any
    ) -> httpx.Response:
        body = b"" if json is None else orjson.dumps(json)
        headers = {**self.headers(method, target, body), **kw.pop("headers", {})}
        return await self.http.request(method, target, content=body, headers=headers, **kw)

    async def post(self, target: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", target, json, **kw)

    async def get(self, target: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", target, None, **kw)

    async def __aenter__(self) -> "SignedClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
