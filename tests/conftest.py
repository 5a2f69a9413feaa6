"""One shared server for every suite that talks to a running server (tests/server, tests/client);
modules needing restarts start their own."""

from collections.abc import Iterator

import pytest

from tests.server.harness import ServerProcess, serving


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A running server with small chunks and paced 1-minute runs, so runs can be watched."""
    yield from serving(
        tmp_path_factory.mktemp("shared"), chunk_bars="5000", pace_seconds="0.02", workers="2"
    )


@pytest.fixture(scope="session")
def other_key(server: ServerProcess) -> str:
    """A key of a second user, made with the CLI while the server runs."""
    return server.create_key("other")
