"""Order kernels: fill prices, opening and closing one position, and the records they leave."""

import numpy as np
from numba import njit

from engine.nb.records import (
    F_CASH,
    I_FILLS,
    I_TRIPS,
    NO_EXIT,
    P_COMMISSION,
    P_ENTRY,
    P_ENTRY_BAR,
    P_EXIT,
    P_RISK,
    P_SIDE,
    P_UNITS,
    SIDE_BUY,
    SIDE_SELL,
)


@njit(cache=True)
def trade_price_nb(price: float, direction: int, slip: float) -> float:
    """Return price moved against the trader by slip: up for a buy (+1), down for a sell (-1)."""
    return price * (1.0 + direction * slip)


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
def position_value_nb(row: np.ndarray, price: float) -> float:
    """Return what closing a position at price would return to cash before fees."""
    units, entry = row[P_UNITS], row[P_ENTRY]
    return units * (entry + row[P_SIDE] * (price - entry))


# The kernels below take (pos, k) rather than a row view `pos[k]`: a view makes numba count
# references on every array argument of the function, which costs tens of ns per call.


@njit(cache=True)
def value_at_nb(pos: np.ndarray, k: int, price: float) -> float:
    """Return what closing position k at price would return to cash before fees."""
    units, entry = pos[k, P_UNITS], pos[k, P_ENTRY]
    return units * (entry + pos[k, P_SIDE] * (price - entry))


@njit(cache=True)
def open_position_nb(i, pos, k, side, units, price, fee, fstate, istate, fills):
    """Fill an entry into free position row k and pay its notional and fee from cash."""
    notional = units * price
    commission = notional * fee
    fstate[F_CASH] = max(fstate[F_CASH] - notional - commission, 0.0)
    pos[k, P_SIDE] = side
    pos[k, P_UNITS] = units
    pos[k, P_ENTRY] = price
    pos[k, P_COMMISSION] = commission
    pos[k, P_ENTRY_BAR] = i
    pos[k, P_EXIT] = NO_EXIT
    add_fill_nb(fills, istate, i, SIDE_BUY if side > 0 else SIDE_SELL, units, price, commission)


@njit(cache=True)
def record_trip_nb(i, pos, j, price, pnl, reason, both_hit, trips, istate):
    """Append the round trip of position j closed at bar i."""
    k = istate[I_TRIPS]
    units, entry = pos[j, P_UNITS], pos[j, P_ENTRY]
    trips[k]["entry_bar"] = np.int64(pos[j, P_ENTRY_BAR])
    trips[k]["exit_bar"] = i
    trips[k]["side"] = np.int64(pos[j, P_SIDE])
    trips[k]["entry_price"] = entry
    trips[k]["exit_price"] = price
    trips[k]["quantity"] = units
    trips[k]["pnl"] = pnl
    trips[k]["ret"] = pnl / (units * entry + pos[j, P_COMMISSION])
    risk = units * pos[j, P_RISK]
    trips[k]["r_multiple"] = pnl / risk if risk > 0.0 else np.nan
    trips[k]["reason"] = reason
    trips[k]["both_hit"] = both_hit
    istate[I_TRIPS] = k + 1


@njit(cache=True)
def close_position_nb(i, pos, k, price, fee, reason, both_hit, fstate, istate, fills, trips):
    """Close position k at price (slippage already applied); return its pnl."""
    units, side = pos[k, P_UNITS], pos[k, P_SIDE]
    commission = units * price * fee
    fstate[F_CASH] += value_at_nb(pos, k, price) - commission
    pnl = side * units * (price - pos[k, P_ENTRY]) - pos[k, P_COMMISSION] - commission
    record_trip_nb(i, pos, k, price, pnl, reason, both_hit, trips, istate)
    add_fill_nb(fills, istate, i, SIDE_SELL if side > 0 else SIDE_BUY, units, price, commission)
    for c in range(pos.shape[1]):
        pos[k, c] = 0.0
    pos[k, P_EXIT] = NO_EXIT
    return pnl
