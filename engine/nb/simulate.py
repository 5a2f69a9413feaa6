"""Long-only bar loop for one sleeve, run chunk by chunk with its state in small arrays."""

import numpy as np
from numba import njit

from engine.nb.records import (
    F_CASH,
    F_ENTRY_COST,
    F_ENTRY_PRICE,
    F_PENDING_STOP_DIST,
    F_STOP,
    F_UNITS,
    I_ENTRY_BAR,
    I_FILLS,
    I_PENDING,
    I_PENDING_REASON,
    I_TRIPS,
    PENDING_BUY,
    PENDING_NONE,
    PENDING_SELL,
    REASON_MAX_HOLD,
    REASON_SIGNAL,
    REASON_STOP,
    SIDE_BUY,
    SIDE_SELL,
)


@njit(cache=True)
def add_fill_nb(fills, istate, bar, side, quantity, price, commission):
    """Append one fill record."""
    k = istate[I_FILLS]
    fills[k]["bar"] = bar
    fills[k]["side"] = side
    fills[k]["quantity"] = quantity
    fills[k]["price"] = price
    fills[k]["commission"] = commission
    istate[I_FILLS] = k + 1


@njit(cache=True)
def buy_nb(i, open_price, fee, slip, lot, fstate, istate, fills):
    """Spend all cash on units at bar i's open (with slippage and fee); set the stop."""
    price = open_price * (1.0 + slip)
    cash = fstate[F_CASH]
    units = cash / (price * (1.0 + fee))
    if lot > 0.0:
        units = np.floor(units / lot) * lot
    if units <= 0.0:
        return
    notional = units * price
    commission = notional * fee
    fstate[F_CASH] = max(cash - notional - commission, 0.0)
    fstate[F_UNITS] = units
    fstate[F_ENTRY_PRICE] = price
    fstate[F_ENTRY_COST] = notional + commission
    dist = fstate[F_PENDING_STOP_DIST]
    fstate[F_STOP] = price - dist if dist > 0.0 else np.nan
    istate[I_ENTRY_BAR] = i
    add_fill_nb(fills, istate, i, SIDE_BUY, units, price, commission)


@njit(cache=True)
def sell_nb(i, price, fee, reason, fstate, istate, fills, trips):
    """Sell the whole position at price, record the fill and the round trip."""
    units = fstate[F_UNITS]
    notional = units * price
    commission = notional * fee
    fstate[F_CASH] += notional - commission
    pnl = notional - commission - fstate[F_ENTRY_COST]
    k = istate[I_TRIPS]
    trips[k]["entry_bar"] = istate[I_ENTRY_BAR]
    trips[k]["exit_bar"] = i
    trips[k]["entry_price"] = fstate[F_ENTRY_PRICE]
    trips[k]["exit_price"] = price
    trips[k]["quantity"] = units
    trips[k]["pnl"] = pnl
    trips[k]["ret"] = pnl / fstate[F_ENTRY_COST]
    trips[k]["reason"] = reason
    istate[I_TRIPS] = k + 1
    add_fill_nb(fills, istate, i, SIDE_SELL, units, price, commission)
    fstate[F_UNITS] = 0.0
    fstate[F_STOP] = np.nan
    istate[I_ENTRY_BAR] = -1


@njit(cache=True)
def stop_price_nb(i, open_, low, fstate, istate):
    """Return the stop fill price before slippage at bar i, or NaN if the stop is not hit."""
    stop = fstate[F_STOP]
    if fstate[F_UNITS] <= 0.0 or np.isnan(stop):
        return np.nan
    if i > istate[I_ENTRY_BAR] and open_[i] <= stop:
        return open_[i]
    if low[i] <= stop:
        return stop
    return np.nan


@njit(cache=True)
def decide_nb(i, entry, exit_, stop_dist, max_hold, fstate, istate):
    """At bar i's close, queue an order for the next open."""
    if fstate[F_UNITS] > 0.0:
        held = i - istate[I_ENTRY_BAR] + 1
        if exit_[i]:
            istate[I_PENDING] = PENDING_SELL
            istate[I_PENDING_REASON] = REASON_SIGNAL
        elif max_hold > 0 and held >= max_hold:
            istate[I_PENDING] = PENDING_SELL
            istate[I_PENDING_REASON] = REASON_MAX_HOLD
    elif entry[i]:
        istate[I_PENDING] = PENDING_BUY
        fstate[F_PENDING_STOP_DIST] = stop_dist[i]


@njit(cache=True)
def simulate_chunk_nb(
    i0, i1, open_, high, low, close, entry, exit_, stop_dist,
    fee, slip, max_hold, lot, fstate, istate, fills, trips, equity, cash_out, units_out,
):  # fmt: skip
    """Run bars [i0, i1): fill queued orders at the open, check the stop, mark, then decide."""
    n = open_.shape[0]
    for i in range(i0, i1):
        pending = istate[I_PENDING]
        istate[I_PENDING] = PENDING_NONE
        if pending == PENDING_BUY:
            buy_nb(i, open_[i], fee, slip, lot, fstate, istate, fills)
        elif pending == PENDING_SELL and fstate[F_UNITS] > 0.0:
            reason = istate[I_PENDING_REASON]
            sell_nb(i, open_[i] * (1.0 - slip), fee, reason, fstate, istate, fills, trips)
        stop_fill = stop_price_nb(i, open_, low, fstate, istate)
        if not np.isnan(stop_fill):
            sell_nb(i, stop_fill * (1.0 - slip), fee, REASON_STOP, fstate, istate, fills, trips)
        units = fstate[F_UNITS]
        equity[i] = fstate[F_CASH] + units * close[i]
        cash_out[i] = fstate[F_CASH]
        units_out[i] = units
        if i < n - 1:
            decide_nb(i, entry, exit_, stop_dist, max_hold, fstate, istate)
