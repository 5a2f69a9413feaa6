"""The grid bar loop: one resting limit order per slot, flipping between buy and sell on fills.

Slot j lies between price lines j and j + 1. It rests either a buy at line j (holding nothing) or
a sell of the quantity it bought at line j + 1. A filled buy places the slot's sell one line up,
a filled sell places its buy one line down; the new order can fill from the next bar on.

Within a bar, orders fill along an assumed path: open -> low -> high -> close when close >= open,
else open -> high -> low -> close. Orders the open has already crossed fill first, at the open;
then, on the way down, buys from the highest line down; on the way up, sells from the lowest up.
A buy that cash cannot pay (price * quantity plus fee, with cash allowed down to the params'
floor) stays resting and is counted as refused.

Liquidation (params' maintenance rate not NaN): the liquidation price (engine.nb.resting) is
checked along the same path: at the open (an open at or below it liquidates there), before each
buy on the way down (the path reaches it first: liquidation at it), after each buy (the buy put
equity under the maintenance margin: liquidation at the buy's price) and at the bar's low. A
liquidation sells every unit at once (taker fee) as one round trip, cancels every order and
stops the grid for the rest of the run.
"""

import numpy as np
from numba import njit

from engine.nb.orders import add_fill_nb
from engine.nb.records import (
    F_CASH,
    F_SIZE,
    I_FILLS,
    I_SKIPPED,
    I_TRIPS,
    REASON_GRID,
    REASON_LIQUIDATION,
    SIDE_BUY,
    SIDE_SELL,
)
from engine.nb.resting import (
    F_UNITS,
    I_LIQUIDATED,
    limit_fill_nb,
    liquidation_price_nb,
    long_trip_nb,
)

# slot columns: resting side, buy and sell lines, quantity, the open buy, first active bar
S_SIDE, S_BUY, S_SELL, S_QTY, S_ENTRY, S_ENTRY_FEE, S_ENTRY_BAR, S_ACTIVE = range(8)
S_SIZE = 8
# float state after the account's (cash in F_CASH) and units held: highest resting buy, lowest
# resting sell
G_MAX_BUY, G_MIN_SELL = F_SIZE + 1, F_SIZE + 2
G_SIZE = F_SIZE + 3
GI_SIZE = I_LIQUIDATED + 1  # int state: the account's and the liquidation bar
# params: maker and taker fee rates, the lowest cash may go ((1 - leverage) x capital), and the
# maintenance margin rate (NaN: never liquidated)
GP_MAKER, GP_TAKER, GP_FLOOR, GP_MMR = range(4)
GP_SIZE = 4


@njit(cache=True)
def new_slots_nb(levels: np.ndarray, qty: np.ndarray) -> np.ndarray:
    """Return the slot table of a grid: every slot resting a buy at its lower line."""
    n = levels.shape[0] - 1
    slots = np.zeros((n, S_SIZE))
    for j in range(n):
        slots[j, S_SIDE] = SIDE_BUY
        slots[j, S_BUY] = levels[j]
        slots[j, S_SELL] = levels[j + 1]
        slots[j, S_QTY] = qty[j]
    return slots


@njit(cache=True)
def buy_nb(i, slots, j, price, fee, maker, floor, fstate, istate, fills) -> bool:
    """Fill slot j's buy at price on bar i and rest its sell; False if cash cannot pay.

    Cash may go down to floor: the buy is refused when its cost exceeds cash - floor.
    """
    qty = slots[j, S_QTY]
    commission = qty * price * fee
    if qty * price + commission > (fstate[F_CASH] - floor) * (1.0 + 1e-12):
        istate[I_SKIPPED] += 1
        return False
    fstate[F_CASH] = max(fstate[F_CASH] - qty * price - commission, floor)
    fstate[F_UNITS] += qty
    slots[j, S_SIDE] = SIDE_SELL
    slots[j, S_ENTRY] = price
    slots[j, S_ENTRY_FEE] = commission
    slots[j, S_ENTRY_BAR] = i
    slots[j, S_ACTIVE] = i + 1
    add_fill_nb(fills, istate, fstate, i, SIDE_BUY, qty, price, commission, maker)
    return True


@njit(cache=True)
def sell_nb(i, slots, j, price, fee, fstate, istate, fills, trips) -> None:
    """Fill slot j's sell at price on bar i, record the round trip and rest its buy."""
    qty, entry, entry_fee = slots[j, S_QTY], slots[j, S_ENTRY], slots[j, S_ENTRY_FEE]
    commission = qty * price * fee
    fstate[F_CASH] += qty * price - commission
    fstate[F_UNITS] = max(fstate[F_UNITS] - qty, 0.0)
    pnl = qty * (price - entry) - entry_fee - commission
    long_trip_nb(
        trips, istate, np.int64(slots[j, S_ENTRY_BAR]), i, entry, price, qty, pnl,
        qty * entry + entry_fee, entry_fee + commission, REASON_GRID, False,
    )  # fmt: skip
    add_fill_nb(fills, istate, fstate, i, SIDE_SELL, qty, price, commission, True)
    slots[j, S_SIDE] = SIDE_BUY
    slots[j, S_ACTIVE] = i + 1


@njit(cache=True)
def liquidate_nb(i, price, slots, p, fstate, istate, fills, trips) -> None:
    """Sell every held unit at price (taker) as one round trip, cancel every order, stop."""
    qty, notional, cost, fees, first = 0.0, 0.0, 0.0, 0.0, np.int64(i)
    for j in range(slots.shape[0]):
        if slots[j, S_SIDE] == SIDE_SELL:
            q = slots[j, S_QTY]
            qty += q
            notional += q * slots[j, S_ENTRY]
            cost += q * slots[j, S_ENTRY] + slots[j, S_ENTRY_FEE]
            fees += slots[j, S_ENTRY_FEE]
            first = min(first, np.int64(slots[j, S_ENTRY_BAR]))
        slots[j, S_SIDE] = SIDE_BUY  # holding nothing, resting nothing: the grid has stopped
        slots[j, S_ACTIVE] = np.inf
    commission = qty * price * p[GP_TAKER]
    fstate[F_CASH] += qty * price - commission
    fstate[F_UNITS] = 0.0
    fstate[G_MAX_BUY] = -np.inf
    fstate[G_MIN_SELL] = np.inf
    long_trip_nb(
        trips, istate, first, i, notional / qty, price, qty, qty * price - commission - cost,
        cost, fees + commission, REASON_LIQUIDATION, False,
    )  # fmt: skip
    add_fill_nb(fills, istate, fstate, i, SIDE_SELL, qty, price, commission, False)
    istate[I_LIQUIDATED] = i + 1


@njit(cache=True)
def start_nb(i, o, slots, p, fstate, istate, fills) -> None:
    """At the first bar's open, buy at market every slot whose buy line is at or above it."""
    taker, floor = p[GP_TAKER], p[GP_FLOOR]
    for j in range(slots.shape[0]):
        slots[j, S_ACTIVE] = i
        if slots[j, S_BUY] >= o and buy_nb(
            i, slots, j, o, taker, False, floor, fstate, istate, fills
        ):
            slots[j, S_ACTIVE] = i  # its sell line is above the open: it may fill on this bar
    bounds_nb(slots, fstate)


@njit(cache=True)
def bounds_nb(slots: np.ndarray, fstate: np.ndarray) -> None:
    """Store the highest resting buy and the lowest resting sell."""
    hi, lo = -np.inf, np.inf
    for j in range(slots.shape[0]):
        if slots[j, S_SIDE] == SIDE_BUY:
            hi = max(hi, slots[j, S_BUY])
        else:
            lo = min(lo, slots[j, S_SELL])
    fstate[G_MAX_BUY] = hi
    fstate[G_MIN_SELL] = lo


@njit(cache=True)
def liq_price_nb(fstate: np.ndarray, p: np.ndarray) -> float:
    """Return the grid's liquidation price now, NaN if none."""
    return liquidation_price_nb(fstate[F_CASH], fstate[F_UNITS], p[GP_MMR])


@njit(cache=True)
def buys_nb(i, top, o, h, lo, slots, p, fstate, istate, fills, trips) -> bool:
    """Fill the active resting buys a fall from top to lo reaches, from the highest line down.

    Returns True if the position was liquidated on the way (then nothing more fills).
    """
    fee, floor, cur = p[GP_MAKER], p[GP_FLOOR], top
    for j in range(slots.shape[0] - 1, -1, -1):
        if slots[j, S_SIDE] == SIDE_BUY and slots[j, S_ACTIVE] <= i:
            price = limit_fill_nb(SIDE_BUY, slots[j, S_BUY], o, h, lo)
            if price == price:
                liq = liq_price_nb(fstate, p)
                if liq >= price:  # reached on the way down to this line
                    liquidate_nb(i, min(liq, cur), slots, p, fstate, istate, fills, trips)
                    return True
                cur = price
                buy_nb(i, slots, j, price, fee, True, floor, fstate, istate, fills)
                if liq_price_nb(fstate, p) >= price:  # the buy itself breached maintenance
                    liquidate_nb(i, price, slots, p, fstate, istate, fills, trips)
                    return True
    liq = liq_price_nb(fstate, p)
    if lo <= liq:
        liquidate_nb(i, min(liq, cur), slots, p, fstate, istate, fills, trips)
        return True
    return False


@njit(cache=True)
def sells_nb(i, o, h, lo, slots, fee, fstate, istate, fills, trips) -> None:
    """Fill the active resting sells the bar reaches, from the lowest line up."""
    for j in range(slots.shape[0]):
        if slots[j, S_SIDE] == SIDE_SELL and slots[j, S_ACTIVE] <= i:
            price = limit_fill_nb(SIDE_SELL, slots[j, S_SELL], o, h, lo)
            if price == price:
                sell_nb(i, slots, j, price, fee, fstate, istate, fills, trips)


@njit(cache=True)
def grid_bar_nb(i, o, h, lo, c, slots, p, fstate, istate, fills, trips) -> None:
    """Fill bar i's resting orders in path order, liquidating where the path reaches it."""
    fee = p[GP_MAKER]
    if o <= liq_price_nb(fstate, p):  # opened at or through the liquidation price
        liquidate_nb(i, o, slots, p, fstate, istate, fills, trips)
        return
    # the open crossed buys: they fill first, at the open
    if o <= fstate[G_MAX_BUY] and buys_nb(i, o, o, o, o, slots, p, fstate, istate, fills, trips):
        return
    if o >= fstate[G_MIN_SELL]:
        sells_nb(i, o, o, o, slots, fee, fstate, istate, fills, trips)
    if c >= o:
        if buys_nb(i, o, o, h, lo, slots, p, fstate, istate, fills, trips):
            return
        sells_nb(i, o, h, lo, slots, fee, fstate, istate, fills, trips)
    else:
        sells_nb(i, o, h, lo, slots, fee, fstate, istate, fills, trips)
        if buys_nb(i, h, o, h, lo, slots, p, fstate, istate, fills, trips):
            return
    bounds_nb(slots, fstate)


@njit(cache=True)
def grid_chunk_nb(start, end, o, h, lo, c, slots, p, fstate, istate, fills, trips, eq, cash, units):
    """Run bars start..end-1; stop early when the records could overflow; return the next bar."""
    room = slots.shape[0] + 1  # a fill per slot and a liquidation
    for i in range(start, end):
        if fills.shape[0] - istate[I_FILLS] < room or trips.shape[0] - istate[I_TRIPS] < room:
            return i
        if istate[I_LIQUIDATED] == 0 and (
            lo[i] <= fstate[G_MAX_BUY]
            or h[i] >= fstate[G_MIN_SELL]
            or lo[i] <= liq_price_nb(fstate, p)
        ):
            grid_bar_nb(i, o[i], h[i], lo[i], c[i], slots, p, fstate, istate, fills, trips)
        cash[i] = fstate[F_CASH]
        units[i] = fstate[F_UNITS]
        eq[i] = cash[i] + units[i] * c[i]
    return end
