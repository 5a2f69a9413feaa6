"""The compiled form of templates that run on kernels of their own: grid and DCA plans."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GridPlan:
    """A grid of resting limit orders; slot j buys at levels[j] and sells at levels[j + 1]."""

    levels: tuple[float, ...]  # ascending price lines, lower_price first, upper_price last
    order_size: float | None = None  # base units per order; None: capital split over the slots

    @property
    def slots(self) -> int:
        """Return the number of buy/sell slots (one fewer than the levels)."""
        return len(self.levels) - 1


@dataclass(frozen=True)
class DcaPlan:
    """Periodic market buys of `amount` quote, with an optional take profit and stop loss."""

    amount: float
    interval: str | None = "1d"  # calendar period: 1h, 4h, 1d, 1w (Monday) or 1M, in UTC
    every_bars: int | None = None  # buy every N bars instead of once per calendar period
    take_profit: float | None = None  # fraction above the average cost: 0.05 = 5%
    stop_loss: float | None = None  # fraction below the average cost: 0.1 = 10%
