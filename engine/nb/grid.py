"""The grid bar loop: one resting limit order per slot, flipping between buy and sell on fills.

Slot j lies between price lines j and j + 1. It rests either a buy at line j (holding nothing) or
a sell of the quantity it bought at line j + 1. A filled buy places the slot's sell one line up,
a filled sell places its buy one line down; the new order can fill from the next bar on.

Within a bar, orders fill along an assumed path: open -> low -> high -> close when close >= open,
else open -> high -> low -> close. Orders the open has already crossed fill first, at the open;
then, on the way down, buys from the highest line down; on the way up, sells from the lowest up.
A buy that cash cannot pay (price * quantity plus fee) stays resting and is counted as refused.
"""

import numpy as np
from numba import njit

from engine.nb.resting import (
    BUY,
    N_FILLS,
    N_REFUSED,
    N_TRIPS,
    REASON_GRID,
    SELL,
    add_fill_nb,
    add_trip_nb,
    limit_fill_nb,
)

# slot columns: resting side, buy and sell lines, quantity, the open buy, first active bar
S_SIDE, S_BUY, S_SELL, S_QTY, S_ENTRY, S_ENTRY_FEE, S_ENTRY_BAR, S_ACTIVE = range(8)
S_SIZE = 8
# float state: cash, units held, highest resting buy, lowest resting sell
G_CASH, G_UNITS, G_MAX_BUY, G_MIN_SELL = range(4)
G_SIZE = 4


@njit(cache=True)
def new_slots_nb(levels: np.ndarray, qty: np.ndarray) -> np.ndarray:
    """Return the slot table of a grid: every slot resting a buy at its lower line."""
    n = levels.shape[0] - 1
    slots = np.zeros((n, S_SIZE))
    for j in range(n):
        slots[j, S_SIDE] = BUY
        slots[j, S_BUY] = levels[j]
        slots[j, S_SELL] = levels[j + 1]
        slots[j, S_QTY] = qty[j]
    return slots


@njit(cache=True)
def buy_nb(i, slots, j, price, fee, maker, fstate, istate, fills) -> bool:
    """Fill slot j's buy at price on bar i and rest its sell; False if cash cannot pay."""
    qty = slots[j, S_QTY]
    commission = qty * price * fee
    if qty * price + commission > fstate[G_CASH] * (1.0 + 1e-12):
        istate[N_REFUSED] += 1
        return False
    fstate[G_CASH] = max(fstate[G_CASH] - qty * price - commission, 0.0)
    fstate[G_UNITS] += qty
    slots[j, S_SIDE] = SELL
    slots[j, S_ENTRY] = price
    slots[j, S_ENTRY_FEE] = commission
    slots[j, S_ENTRY_BAR] = i
    slots[j, S_ACTIVE] = i + 1
    add_fill_nb(fills, istate, i, BUY, qty, price, commission, maker)
    return True


@njit(cache=True)
def sell_nb(i, slots, j, price, fee, fstate, istate, fills, trips) -> None:
    """Fill slot j's sell at price on bar i, record the round trip and rest its buy."""
    qty, entry, entry_fee = slots[j, S_QTY], slots[j, S_ENTRY], slots[j, S_ENTRY_FEE]
    commission = qty * price * fee
    fstate[G_CASH] += qty * price - commission
    fstate[G_UNITS] = max(fstate[G_UNITS] - qty, 0.0)
    pnl = qty * (price - entry) - entry_fee - commission
    add_trip_nb(
        trips, istate, np.int64(slots[j, S_ENTRY_BAR]), i, entry, price, qty, pnl,
        qty * entry + entry_fee, REASON_GRID, False,
    )  # fmt: skip
    add_fill_nb(fills, istate, i, SELL, qty, price, commission, True)
    slots[j, S_SIDE] = BUY
    slots[j, S_ACTIVE] = i + 1


@njit(cache=True)
def start_nb(i, o, slots, taker, fstate, istate, fills) -> None:
    """At the first bar's open, buy at market every slot whose buy line is at or above it."""
    for j in range(slots.shape[0]):
        slots[j, S_ACTIVE] = i
        if slots[j, S_BUY] >= o and buy_nb(i, slots, j, o, taker, False, fstate, istate, fills):
            slots[j, S_ACTIVE] = i  # its sell line is above the open: it may fill on this bar
    bounds_nb(slots, fstate)


@njit(cache=True)
def bounds_nb(slots: np.ndarray, fstate: np.ndarray) -> None:
    """Store the highest resting buy and the lowest resting sell."""
    hi, lo = -np.inf, np.inf
    for j in range(slots.shape[0]):
        if slots[j, S_SIDE] == BUY:
            hi = max(hi, slots[j, S_BUY])
        else:
            lo = min(lo, slots[j, S_SELL])
    fstate[G_MAX_BUY] = hi
    fstate[G_MIN_SELL] = lo


@njit(cache=True)
def buys_nb(i, o, h, lo, slots, fee, fstate, istate, fills) -> None:
    """Fill the active resting buys the bar reaches, from the highest line down."""
    for j in range(slots.shape[0] - 1, -1, -1):
        if slots[j, S_SIDE] == BUY and slots[j, S_ACTIVE] <= i:
            price = limit_fill_nb(BUY, slots[j, S_BUY], o, h, lo)
            if price == price:
                buy_nb(i, slots, j, price, fee, True, fstate, istate, fills)


@njit(cache=True)
def sells_nb(i, o, h, lo, slots, fee, fstate, istate, fills, trips) -> None:
    """Fill the active resting sells the bar reaches, from the lowest line up."""
    for j in range(slots.shape[0]):
        if slots[j, S_SIDE] == SELL and slots[j, S_ACTIVE] <= i:
            price = limit_fill_nb(SELL, slots[j, S_SELL], o, h, lo)
            if price == price:
                sell_nb(i, slots, j, price, fee, fstate, istate, fills, trips)


@njit(cache=True)
def grid_bar_nb(i, o, h, lo, c, slots, fee, fstate, istate, fills, trips) -> None:
    """Fill bar i's resting orders in path order."""
    if o <= fstate[G_MAX_BUY]:  # the open crossed buys: they fill first, at the open
        buys_nb(i, o, o, o, slots, fee, fstate, istate, fills)
    if o >= fstate[G_MIN_SELL]:
        sells_nb(i, o, o, o, slots, fee, fstate, istate, fills, trips)
    if c >= o:
        buys_nb(i, o, h, lo, slots, fee, fstate, istate, fills)
        sells_nb(i, o, h, lo, slots, fee, fstate, istate, fills, trips)
    else:
        sells_nb(i, o, h, lo, slots, fee, fstate, istate, fills, trips)
        buys_nb(i, o, h, lo, slots, fee, fstate, istate, fills)
    bounds_nb(slots, fstate)


@njit(cache=True)
def grid_chunk_nb(
    start, end, o, h, lo, c, slots, fee, fstate, istate, fills, trips, eq, cash, units
):
    """Run bars start..end-1; stop early when the records could overflow; return the next bar."""
    room = slots.shape[0]
    for i in range(start, end):
        if fills.shape[0] - istate[N_FILLS] < room or trips.shape[0] - istate[N_TRIPS] < room:
            return i
        if lo[i] <= fstate[G_MAX_BUY] or h[i] >= fstate[G_MIN_SELL]:
            grid_bar_nb(i, o[i], h[i], lo[i], c[i], slots, fee, fstate, istate, fills, trips)
        cash[i] = fstate[G_CASH]
        units[i] = fstate[G_UNITS]
        eq[i] = cash[i] + units[i] * c[i]
    return end
