"""Drive Debian's Chromium with Playwright: launch it, wait on the page, sign in, read the stream.

The page forbids `eval` (its Content-Security-Policy), so waiting polls `page.evaluate` (which
the policy does not restrict) instead of `wait_for_function`, as `eventually()` does for the API.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from playwright.sync_api import BrowserContext, Page, Playwright
from websockets.sync.client import connect

from tests.server.harness import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def launch(playwright: Playwright, profile: Path) -> BrowserContext:
    """Debian's Chromium, headless, with a fresh profile; a clear failure if it cannot start."""
    if not CHROMIUM.exists():
        raise AssertionError(
            f"{CHROMIUM} is missing: ./scripts/test installs Debian's chromium (apt-get install chromium)"
        )
    return playwright.chromium.launch_persistent_context(
        profile,
        executable_path=str(CHROMIUM),
        headless=True,
        args=ARGS,
        viewport={"width": 1280, "height": 900},
    )


def until(page: Page, script: str, timeout: float = 30.0) -> Any:
    """Evaluate `script` in the page until it returns something truthy; return that."""
    end = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not true within {timeout} s: {script}")
        page.wait_for_timeout(25)


@dataclass
class Watched:
    """A page with every URL it asked for and every uncaught error it raised."""

    page: Page
    urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, context: BrowserContext) -> "Watched":
        page = context.new_page()
        watched = cls(page)
        page.on("request", lambda r: watched.urls.append(r.url))
        page.on("websocket", lambda ws: watched.urls.append(ws.url))
        page.on("pageerror", lambda e: watched.errors.append(str(e)))
        return watched

    def foreign(self, origin: str) -> list[str]:
        """URLs outside `origin` (http and ws on the same host and port): none for an offline page."""
        host = origin.split("://", 1)[1]
        return [u for u in self.urls if u.split("://", 1)[-1].split("/", 1)[0] != host]


def sign_in(page: Page, base: str, key: str, hash_path: str = "") -> None:
    """Open the page at `base`, sign in with `key`, then go to `#hash_path` if given."""
    page.goto(f"{base}/")
    page.fill("#key", key)
    page.click("#sign-in")
    page.wait_for_selector("#sign-out")
    if hash_path:
        page.evaluate(f"location.hash = {orjson.dumps(hash_path).decode()}")


def stream_ids(server: ServerProcess, run_id: str) -> list[int]:
    """Every event id of a finished run, read straight from the server's stream."""
    url = f"{server.ws_url}/api/v2/backtests/{run_id}/stream?api_key={server.key}"
    with connect(url, open_timeout=30) as ws:
        return [orjson.loads(raw)["id"] for raw in ws]
