"""The wire's resolution names map onto exactly the engine's resolutions."""

from engine.data import BASE_RESOLUTIONS
from protocol.enums import RESOLUTIONS


def test_every_wire_resolution_is_an_engine_resolution_and_back() -> None:
    assert set(RESOLUTIONS.values()) == set(BASE_RESOLUTIONS)
    assert all(RESOLUTIONS[name] == name for name in BASE_RESOLUTIONS if name in RESOLUTIONS)
    spoken = {"tick", "second", "minute", "hour", "day", "week", "month"}  # seed 002's words
    assert set(RESOLUTIONS) == spoken | set(BASE_RESOLUTIONS)
