"""Order kernels: fill prices, fee rates, opening and closing one position, their records.

Fees: every fill pays ``notional * rate``, the rate read from a tier table (rows of trailing
30-day traded volume from which the tier applies, maker rate, taker rate; one row for a flat
fee). ``fill_rate_nb`` is the kernel-level way to charge a fill as maker (resting limit order)
or taker (market and stop orders): it rolls the trailing volume to the fill's time first.
"""

import numpy as np
from numba import njit

from engine.nb.records import (
    F_CASH,
    F_VOL30,
    FEE_WINDOW_NS,
    I_FILLS,
    I_OPEN,
    I_TRIPS,
    I_VOL_TAIL,
    NO_EXIT,
    P_COMMISSION,
    P_ENTRY,
    P_ENTRY_BAR,
    P_EXIT,
    P_MARGIN,
    P_RISK,
    P_SIDE,
    P_UNITS,
    SIDE_BUY,
    SIDE_SELL,
    T_MAKER,
    T_MIN_VOLUME,
    T_TAKER,
)


@njit(cache=True)
def trade_price_nb(price: float, direction: int, slip: float) -> float:
    """Return price moved against the trader by slip: up for a buy (+1), down for a sell (-1)."""
    return price * (1.0 + direction * slip)


@njit(cache=True)
def roll_volume_nb(now: int, ts, fills, istate, fstate) -> None:
    """Drop fills at or before now - 30 days from the trailing traded volume."""
    k = istate[I_VOL_TAIL]
    n = istate[I_FILLS]
    while k < n and ts[fills[k]["bar"]] <= now - FEE_WINDOW_NS:
        fstate[F_VOL30] -= fills[k]["quantity"] * fills[k]["price"]
        k += 1
    istate[I_VOL_TAIL] = k


@njit(cache=True)
def fill_rate_nb(i: int, maker: bool, ts, tiers, fills, istate, fstate) -> float:
    """Return the maker or taker fee rate of a fill at bar i, from the trailing-volume tier."""
    col = T_MAKER if maker else T_TAKER
    if tiers.shape[0] == 1:
        return tiers[0, col]
    roll_volume_nb(ts[i], ts, fills, istate, fstate)
    k = 0
    for j in range(1, tiers.shape[0]):
        if fstate[F_VOL30] >= tiers[j, T_MIN_VOLUME]:
            k = j
    return tiers[k, col]


@njit(cache=True)
def add_fill_nb(fills, istate, fstate, bar, side, quantity, price, commission, maker):
    """Append one fill record and count its notional in the trailing volume."""
    k = istate[I_FILLS]
    fills[k]["bar"] = bar
    fills[k]["side"] = side
    fills[k]["quantity"] = quantity
    fills[k]["price"] = price
    fills[k]["commission"] = commission
    fills[k]["maker"] = maker
    istate[I_FILLS] = k + 1
    fstate[F_VOL30] += quantity * price


# The kernels below take (pos, k) rather than a row view `pos[k]`: a view makes numba count
# references on every array argument of the function, which costs tens of ns per call.


@njit(cache=True)
def value_at_nb(pos: np.ndarray, k: int, price: float) -> float:
    """Return what closing position k at price would return to cash before fees."""
    units, entry = pos[k, P_UNITS], pos[k, P_ENTRY]
    return units * (pos[k, P_MARGIN] + pos[k, P_SIDE] * (price - entry))


@njit(cache=True)
def open_position_nb(i, pos, k, side, units, price, fee, leverage, maker, fstate, istate, fills):
    """Fill an entry into free position row k; pay its margin and fee from cash."""
    margin = price / leverage
    commission = units * price * fee
    fstate[F_CASH] = max(fstate[F_CASH] - units * margin - commission, 0.0)
    pos[k, P_SIDE] = side
    pos[k, P_UNITS] = units
    pos[k, P_ENTRY] = price
    pos[k, P_MARGIN] = margin
    pos[k, P_COMMISSION] = commission
    pos[k, P_ENTRY_BAR] = i
    pos[k, P_EXIT] = NO_EXIT
    istate[I_OPEN] += 1
    side_code = SIDE_BUY if side > 0 else SIDE_SELL
    add_fill_nb(fills, istate, fstate, i, side_code, units, price, commission, maker)


@njit(cache=True)
def add_trip_nb(
    trips, istate, entry_bar, exit_bar, step, side, entry, exit_, qty, pnl, ret, r, commission,
    reason, both_hit,
):  # fmt: skip
    """Append one round trip record."""
    k = istate[I_TRIPS]
    trips[k]["entry_bar"] = entry_bar
    trips[k]["exit_bar"] = exit_bar
    trips[k]["exit_step"] = step
    trips[k]["side"] = side
    trips[k]["entry_price"] = entry
    trips[k]["exit_price"] = exit_
    trips[k]["quantity"] = qty
    trips[k]["pnl"] = pnl
    trips[k]["ret"] = ret
    trips[k]["r_multiple"] = r
    trips[k]["commission"] = commission
    trips[k]["reason"] = reason
    trips[k]["both_hit"] = both_hit
    istate[I_TRIPS] = k + 1


@njit(cache=True)
def record_trip_nb(i, step, pos, j, price, pnl, commission, reason, both_hit, trips, istate):
    """Append the round trip of position j closed at bar i (clock step `step`)."""
    units = pos[j, P_UNITS]
    risk = units * pos[j, P_RISK]
    add_trip_nb(
        trips, istate, np.int64(pos[j, P_ENTRY_BAR]), i, step, np.int64(pos[j, P_SIDE]),
        pos[j, P_ENTRY], price, units, pnl, pnl / (units * pos[j, P_MARGIN] + pos[j, P_COMMISSION]),
        pnl / risk if risk > 0.0 else np.nan, pos[j, P_COMMISSION] + commission, reason, both_hit,
    )  # fmt: skip


@njit(cache=True)
def close_position_nb(i, step, pos, k, price, fee, reason, both_hit, fstate, istate, fills, trips):
    """Close position k at price (slippage applied) paying a taker fee rate; return its pnl."""
    units, side = pos[k, P_UNITS], pos[k, P_SIDE]
    commission = units * price * fee
    fstate[F_CASH] += value_at_nb(pos, k, price) - commission
    pnl = side * units * (price - pos[k, P_ENTRY]) - pos[k, P_COMMISSION] - commission
    record_trip_nb(i, step, pos, k, price, pnl, commission, reason, both_hit, trips, istate)
    side_code = SIDE_SELL if side > 0 else SIDE_BUY
    add_fill_nb(fills, istate, fstate, i, side_code, units, price, commission, False)
    for c in range(pos.shape[1]):
        pos[k, c] = 0.0
    pos[k, P_EXIT] = NO_EXIT
    istate[I_OPEN] -= 1
    return pnl
