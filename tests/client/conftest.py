"""Fixtures of the SDK and CLI tests: a user of their own on the shared server, and a proxy."""

from collections.abc import Iterator

import pytest

from tests.server.harness import ServerProcess
from tests.server.proxy import Proxy


@pytest.fixture(scope="session")
def key(server: ServerProcess) -> str:
    """A key of a user only these tests use, so their listings count only their own runs."""
    return server.create_key("sdk-tests")


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[Proxy]:
    """A TCP proxy in front of the shared server whose `drop_all()` cuts every connection."""
    p = Proxy(server.port).start()
    yield p
    p.stop()
