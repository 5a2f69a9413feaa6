"""Fee models: every model becomes a tier table the kernels read (see engine.nb.orders).

- ``none``: no fee. ``fixed_bps``: ``fee_bps`` on every fill, maker or taker.
- ``tiered_maker_taker``: maker and taker rates by the account's traded notional over the 30 days
  before the fill (fills with a time after fill time - 30 days, in the run's quote currency).
  ``fee_tiers`` overrides DEFAULT_TIERS, a Binance-like spot VIP 0-3 table (without token
  discounts): from 0 -> 10 / 10 bps, 1M -> 9 / 10, 5M -> 8 / 10, 20M -> 4.2 / 6 (maker / taker).
- ``match_exchange``: the base maker and taker rates of ``venue`` from engine/venues.json.

Market orders, stops, targets and liquidations pay the taker rate; resting limit orders (the
templates' grid orders) pay the maker rate.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

FEE_MODELS = ("none", "fixed_bps", "tiered_maker_taker", "match_exchange")
TIER_KEYS = ("min_volume_30d", "maker_bps", "taker_bps")
DEFAULT_TIERS: tuple[dict[str, float], ...] = (
    {"min_volume_30d": 0.0, "maker_bps": 10.0, "taker_bps": 10.0},
    {"min_volume_30d": 1_000_000.0, "maker_bps": 9.0, "taker_bps": 10.0},
    {"min_volume_30d": 5_000_000.0, "maker_bps": 8.0, "taker_bps": 10.0},
    {"min_volume_30d": 20_000_000.0, "maker_bps": 4.2, "taker_bps": 6.0},
)
VENUES_PATH = Path(__file__).with_name("venues.json")


@cache
def venues() -> dict[str, dict[str, Any]]:
    """Return the shipped venue table: name -> maker_bps, taker_bps, source."""
    table = json.loads(VENUES_PATH.read_text())
    return {k: v for k, v in table.items() if not k.startswith("_")}


def check_tiers(tiers: list[dict[str, float]]) -> None:
    """Raise ValueError naming fee_tiers[k].min_volume_30d unless the tiers start at 0 and ascend.

    Each tier's keys and bounds are checked by its declaration (engine.execution.FEE_TIER).
    """
    last = -1.0
    for k, tier in enumerate(tiers):
        volume = tier["min_volume_30d"]
        if volume <= last or (k == 0 and volume != 0):
            raise ValueError(f"fee_tiers[{k}].min_volume_30d: tiers start at 0 and strictly ascend")
        last = volume


def check_venue(venue: Any) -> None:
    """Raise ValueError naming venue unless it is in the shipped table."""
    if venue not in venues():
        known = ", ".join(sorted(venues()))
        raise ValueError(f"venue: unknown venue {venue!r} (known: {known})")


def fee_table(
    model: str, fee_bps: float, tiers: Any = None, venue: str | None = None
) -> np.ndarray:
    """Return the (k, 3) table of (min 30-day volume, maker rate, taker rate) for a fee model."""
    if model == "none":
        return np.zeros((1, 3))
    if model == "fixed_bps":
        rate = fee_bps / 1e4
        return np.array([[0.0, rate, rate]])
    if model == "match_exchange":
        check_venue(venue)
        v = venues()[venue]  # type: ignore[index]
        return np.array([[0.0, v["maker_bps"] / 1e4, v["taker_bps"] / 1e4]])
    rows = DEFAULT_TIERS if tiers is None else tiers
    return np.array(
        [[t["min_volume_30d"], t["maker_bps"] / 1e4, t["taker_bps"] / 1e4] for t in rows]
    )
