"""A paced server behind a cutting proxy, and Debian's Chromium driven by Playwright."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

from tests.browser.browser import Watched, launch
from tests.server.harness import ServerProcess, serving
from tests.server.proxy import Proxy


@pytest.fixture(scope="package")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose 1-minute runs over a year last several seconds (105 chunks, 40 ms apart)."""
    yield from serving(
        tmp_path_factory.mktemp("web"), chunk_bars="5000", pace_seconds="0.04", workers="2"
    )


@pytest.fixture(scope="package")
def proxy(web: ServerProcess) -> Iterator[Proxy]:
    """The browser's way to the server: `drop_all()` cuts every connection, as a network drop."""
    p = Proxy(web.port).start()
    yield p
    p.stop()


@pytest.fixture(scope="package")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("chromium-profile"))
        yield context
        context.close()


@pytest.fixture
def watched(chromium: BrowserContext, proxy: Proxy) -> Iterator[Watched]:
    """A new tab (so signed out), which must load nothing from elsewhere and raise no error."""
    tab = Watched.open(chromium)
    yield tab
    tab.page.close()
    assert tab.errors == []
    assert tab.foreign(proxy.url) == []


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots."""
    return tmp_path
