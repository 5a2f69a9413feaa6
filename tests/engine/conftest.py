"""Shared fixtures for engine tests."""

import numpy as np
import pytest

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import Bars


@pytest.fixture(scope="session")
def demo_bars() -> Bars:
    """A few thousand real-looking 1-minute BTC bars from the demo generator."""
    return generate_bars(
        DEMO_SYMBOLS[1], 1_704_067_200_000_000_000, 5_000, np.random.default_rng(3)
    )
