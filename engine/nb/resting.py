"""Resting orders for the template kernels: fill prices of limit and stop orders, and records.

Fill rules against a bar (open o, high h, low lo), for an order resting before the bar opens:

- limit buy at p: fills when lo <= p, at min(o, p) (a bar that opens at or below p fills at o);
- limit sell at p: fills when h >= p, at max(o, p);
- stop buy at p: fills when h >= p, at max(o, p);
- stop sell at p: fills when lo <= p, at min(o, p).

A market order fills at the bar's open. Limits pay the maker fee, market and stop orders the
taker fee. A price that does not fill is NaN.

Leverage (engine.templates.run): cash may fall to a floor of (1 - leverage) x capital; with a
maintenance margin rate m (NaN: never), the long position is liquidated at the price where
equity = cash + units x price falls to m x units x price (liquidation_price_nb).
"""

import numpy as np
from numba import njit

BUY, SELL = 1, -1
FILL_DTYPE = np.dtype(
    [
        ("bar", np.int64),
        ("side", np.int64),  # BUY or SELL
        ("quantity", np.float64),
        ("price", np.float64),
        ("commission", np.float64),
        ("maker", np.bool_),
    ]
)
TRIP_DTYPE = np.dtype(
    [
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("entry_price", np.float64),  # for DCA: the cycle's average fill price
        ("exit_price", np.float64),
        ("quantity", np.float64),
        ("pnl", np.float64),  # net of the fees of both sides
        ("ret", np.float64),  # pnl / (entry notional + entry fees)
        ("reason", np.int64),
        ("both_hit", np.bool_),
    ]
)
REASON_GRID, REASON_TAKE_PROFIT, REASON_STOP, REASON_LIQUIDATION = range(4)
REASON_NAMES = ("grid", "take_profit", "stop", "liquidation")
# int state slots shared by the template kernels (slot 3 is each kernel's own): fills, round
# trips, refused buys, and 1 + the bar of the liquidation that stopped the run (0: none)
N_FILLS, N_TRIPS, N_REFUSED = range(3)
N_LIQUIDATED = 4
N_SIZE = 5


@njit(cache=True)
def limit_fill_nb(side: int, price: float, o: float, h: float, lo: float) -> float:
    """Return the fill price of a resting limit order on a bar, or NaN if the bar misses it."""
    if side == BUY:
        return min(o, price) if lo <= price else np.nan
    return max(o, price) if h >= price else np.nan


@njit(cache=True)
def stop_fill_nb(side: int, price: float, o: float, h: float, lo: float) -> float:
    """Return the fill price of a resting stop order on a bar, or NaN if the bar misses it."""
    if side == BUY:
        return max(o, price) if h >= price else np.nan
    return min(o, price) if lo <= price else np.nan


@njit(cache=True)
def add_fill_nb(fills, istate, bar, side, quantity, price, commission, maker):
    """Append one fill record."""
    k = istate[N_FILLS]
    fills[k]["bar"] = bar
    fills[k]["side"] = side
    fills[k]["quantity"] = quantity
    fills[k]["price"] = price
    fills[k]["commission"] = commission
    fills[k]["maker"] = maker
    istate[N_FILLS] = k + 1


@njit(cache=True)
def add_trip_nb(trips, istate, entry_bar, exit_bar, entry, exit_, qty, pnl, cost, reason, both):
    """Append one round trip; cost is the entry notional plus entry fees."""
    k = istate[N_TRIPS]
    trips[k]["entry_bar"] = entry_bar
    trips[k]["exit_bar"] = exit_bar
    trips[k]["entry_price"] = entry
    trips[k]["exit_price"] = exit_
    trips[k]["quantity"] = qty
    trips[k]["pnl"] = pnl
    trips[k]["ret"] = pnl / cost if cost > 0.0 else np.nan
    trips[k]["reason"] = reason
    trips[k]["both_hit"] = both
    istate[N_TRIPS] = k + 1


@njit(cache=True)
def liquidation_price_nb(cash: float, units: float, mmr: float) -> float:
    """Return the price at which cash + units x price = mmr x units x price; NaN if none.

    Only a borrowed long (cash < 0) has one: below it equity is under the maintenance margin.
    """
    if mmr != mmr or units <= 0.0 or cash >= 0.0:
        return np.nan
    return -cash / (units * (1.0 - mmr))
