"""Prepare the wheel's virtualenv in the background while the tests before the wheel tests run."""

import pytest

from tests.packaging.wheel import REPO, end_background, prepare_in_background


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the build, the install and the compile if other tests run before these: the
    fixture waits for it, then does the same (finding it all done)."""
    here = REPO / "tests" / "packaging"
    first = next((i for i, t in enumerate(session.items) if t.path.is_relative_to(here)), None)
    if first:
        prepare_in_background()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a preparation still going (the session ended before reaching the wheel tests)."""
    end_background(stop=True)
