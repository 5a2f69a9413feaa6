"""One shared server for the API and stream tests; modules needing restarts start their own."""

from collections.abc import Iterator

import pytest

from tests.server.harness import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A running server with small chunks and paced 1-minute runs, so runs can be watched."""
    srv = ServerProcess(
        tmp_path_factory.mktemp("shared"),
        env={
            "BARSTREAM_CHUNK_BARS": "5000",
            "BARSTREAM_PACE_SECONDS": "0.02",
            "BARSTREAM_WORKERS": "2",
        },
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def other_key(server: ServerProcess) -> str:
    """A key of a second user, made with the CLI while the server runs."""
    return server.create_key("other")
