"""Per-key request budgets: a weight allowance per rolling minute, kept in this node's memory.

Each key may spend `budget` weight units in any 60 s window (a request costs its route's
weight). The window slides: spending is recorded with its time and forgotten 60 s later. When a
request would overspend, the caller answers 429 with `Retry-After` set to the seconds until
enough weight has been forgotten. Budgets are per node (several nodes each allow the budget).
"""

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class WeightLimiter:
    """A sliding one-minute weight budget per key."""

    def __init__(self, budget: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._clock = clock
        self._spent: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}

    def take(self, key: str, weight: int = 1) -> int | None:
        """Spend `weight` for `key`; None when allowed, else the seconds to wait (>= 1).

        A budget of 0 or less turns the limit off.
        """
        if self.budget <= 0:
            return None
        now = self._clock()
        spent = self._spent.setdefault(key, deque())
        total = self._totals.get(key, 0)
        while spent and spent[0][0] <= now - WINDOW_SECONDS:
            total -= spent.popleft()[1]
        if total + weight > self.budget:
            self._totals[key] = total
            return self._wait(spent, total + weight - self.budget, now)
        spent.append((now, weight))
        self._totals[key] = total + weight
        return None

    @staticmethod
    def _wait(spent: deque[tuple[float, int]], excess: int, now: float) -> int:
        """Seconds until at least `excess` weight has left the window."""
        freed = 0
        for at, weight in spent:
            freed += weight
            if freed >= excess:
                return max(1, math.ceil(at + WINDOW_SECONDS - now))
        return math.ceil(WINDOW_SECONDS)  # one request heavier than the whole budget
