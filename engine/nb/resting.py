"""Resting orders for the template kernels: fill prices of limit and stop orders, liquidation.

Fill rules against a bar (open o, high h, low lo), for an order resting before the bar opens:

- limit buy at p: fills when lo <= p, at min(o, p) (a bar that opens at or below p fills at o);
- limit sell at p: fills when h >= p, at max(o, p);
- stop buy at p: fills when h >= p, at max(o, p);
- stop sell at p: fills when lo <= p, at min(o, p).

A market order fills at the bar's open. Limits pay the maker fee, market and stop orders the
taker fee. A price that does not fill is NaN.

The template kernels keep the account state and records of engine.nb.records (cash in F_CASH,
fill and round-trip counts, refused buys in I_SKIPPED) and add their own slots after them.

Leverage (engine.templates.run): cash may fall to a floor of (1 - leverage) x capital; with a
maintenance margin rate m (NaN: never), the long position is liquidated at the price where
equity = cash + units x price falls to m x units x price (liquidation_price_nb).
"""

import numpy as np
from numba import njit

from engine.nb.orders import add_trip_nb
from engine.nb.records import F_SIZE, I_SIZE, LONG, SIDE_BUY

F_UNITS = F_SIZE  # float state slot after the account's: units held
I_LIQUIDATED = I_SIZE  # int state slot: 1 + the bar of the liquidation that stopped the run


@njit(cache=True)
def limit_fill_nb(side: int, price: float, o: float, h: float, lo: float) -> float:
    """Return the fill price of a resting limit order on a bar, or NaN if the bar misses it."""
    if side == SIDE_BUY:
        return min(o, price) if lo <= price else np.nan
    return max(o, price) if h >= price else np.nan


@njit(cache=True)
def stop_fill_nb(side: int, price: float, o: float, h: float, lo: float) -> float:
    """Return the fill price of a resting stop order on a bar, or NaN if the bar misses it."""
    if side == SIDE_BUY:
        return max(o, price) if h >= price else np.nan
    return min(o, price) if lo <= price else np.nan


@njit(cache=True)
def long_trip_nb(trips, istate, entry_bar, i, entry, exit_, qty, pnl, cost, fees, reason, both):
    """Append a long round trip closed at bar i; cost is the entry notional plus entry fees.

    fees: both sides' fees; a template trade has no initial risk, so its r_multiple is NaN.
    """
    ret = pnl / cost if cost > 0.0 else np.nan
    add_trip_nb(
        trips, istate, entry_bar, i, i, LONG, entry, exit_, qty, pnl, ret, np.nan, fees, reason,
        both,
    )  # fmt: skip


@njit(cache=True)
def liquidation_price_nb(cash: float, units: float, mmr: float) -> float:
    """Return the price at which cash + units x price = mmr x units x price; NaN if none.

    Only a borrowed long (cash < 0) has one: below it equity is under the maintenance margin.
    """
    if mmr != mmr or units <= 0.0 or cash >= 0.0:
        return np.nan
    return -cash / (units * (1.0 - mmr))
