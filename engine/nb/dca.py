"""The DCA bar loop: scheduled market buys at the open, exits of the whole position per cycle.

Per bar: a take profit or stop loss the open has crossed fills at the open; then the scheduled
buy fills at the open (taker fee); then the take profit (a resting limit sell at average cost x
(1 + tp), maker fee) and the stop loss (a resting stop sell at average cost x (1 - sl), taker fee)
are checked against the bar's range with the new average: both in range -> the stop fills and
the round trip is flagged both_hit. An exit sells everything and the next buy starts a new cycle.

Leverage: cash may go down to the params' floor. With a maintenance rate (not NaN) the
liquidation price (engine.nb.resting) is a stop level too: the higher of it and the stop loss
applies (reason ``liquidation`` when it is the liquidation price), checked at the open and then
against the bar's range like the stop. A liquidation stops the DCA: no buy after it.
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
    REASON_LIQUIDATION,
    REASON_STOP,
    REASON_TAKE_PROFIT,
    SIDE_BUY,
    SIDE_SELL,
)
from engine.nb.resting import (
    F_UNITS,
    I_LIQUIDATED,
    limit_fill_nb,
    liquidation_price_nb,
    long_trip_nb,
    stop_fill_nb,
)

# float state after the account's (cash in F_CASH) and units held: the cycle's notional bought
# and its entry fees
D_COST, D_FEES = F_SIZE + 1, F_SIZE + 2
D_SIZE = F_SIZE + 3
I_CYCLE_BAR = I_LIQUIDATED + 1  # int state slot: the bar the cycle's first buy filled
DI_SIZE = I_LIQUIDATED + 2
# params: amount per buy, taker and maker fee rates, take profit and stop fractions (NaN: none),
# the lowest cash may go ((1 - leverage) x capital), maintenance margin rate (NaN: never)
P_AMOUNT, P_TAKER, P_MAKER, P_TP, P_SL, P_FLOOR, P_MMR = range(7)
P_SIZE = 7


@njit(cache=True)
def levels_nb(fstate: np.ndarray, p: np.ndarray) -> tuple[float, float, int]:
    """Return the (stop, take profit, stop reason) of the open cycle; NaN prices where unset.

    The stop is the higher of the stop loss and the liquidation price (reason liquidation).
    """
    avg = fstate[D_COST] / fstate[F_UNITS]
    stop, reason = avg * (1.0 - p[P_SL]), REASON_STOP
    liq = liquidation_price_nb(fstate[F_CASH], fstate[F_UNITS], p[P_MMR])
    if liq == liq and (stop != stop or liq > stop):
        stop, reason = liq, REASON_LIQUIDATION
    return stop, avg * (1.0 + p[P_TP]), reason


@njit(cache=True)
def buy_nb(i, o, p, fstate, istate, fills) -> None:
    """Buy `amount` (or what cash can pay) at the open with the taker fee."""
    fee, floor = p[P_TAKER], p[P_FLOOR]
    spend = min(p[P_AMOUNT], (fstate[F_CASH] - floor) / (1.0 + fee))
    if spend <= 1e-9 * p[P_AMOUNT]:
        istate[I_SKIPPED] += 1
        return
    qty = spend / o
    commission = spend * fee
    fstate[F_CASH] = max(fstate[F_CASH] - spend - commission, floor)
    if fstate[F_UNITS] <= 0.0:
        istate[I_CYCLE_BAR] = i
    fstate[F_UNITS] += qty
    fstate[D_COST] += spend
    fstate[D_FEES] += commission
    add_fill_nb(fills, istate, fstate, i, SIDE_BUY, qty, o, commission, False)


@njit(cache=True)
def sell_all_nb(i, price, fee, maker, reason, both, fstate, istate, fills, trips) -> None:
    """Sell the whole position at price, record the cycle's round trip and reset it."""
    qty, cost, fees = fstate[F_UNITS], fstate[D_COST], fstate[D_FEES]
    commission = qty * price * fee
    fstate[F_CASH] += qty * price - commission
    pnl = qty * price - commission - cost - fees
    long_trip_nb(
        trips, istate, istate[I_CYCLE_BAR], i, cost / qty, price, qty, pnl, cost + fees,
        fees + commission, reason, both,
    )  # fmt: skip
    add_fill_nb(fills, istate, fstate, i, SIDE_SELL, qty, price, commission, maker)
    if reason == REASON_LIQUIDATION:
        istate[I_LIQUIDATED] = i + 1
    fstate[F_UNITS] = 0.0
    fstate[D_COST] = 0.0
    fstate[D_FEES] = 0.0


@njit(cache=True)
def exits_nb(i, o, h, lo, p, fstate, istate, fills, trips) -> None:
    """Fill the stop (or liquidation) or the take profit if the bar (o, h, lo) reaches it.

    The stop first; both in range -> the stop, flagged both_hit.
    """
    stop, target, reason = levels_nb(fstate, p)
    at_stop = stop_fill_nb(SIDE_SELL, stop, o, h, lo)
    at_target = limit_fill_nb(SIDE_SELL, target, o, h, lo)
    if at_stop == at_stop and not (at_target == o and at_stop != o):
        both = at_target == at_target
        sell_all_nb(i, at_stop, p[P_TAKER], False, reason, both, fstate, istate, fills, trips)
    elif at_target == at_target:
        sell_all_nb(
            i, at_target, p[P_MAKER], True, REASON_TAKE_PROFIT, False, fstate, istate, fills, trips
        )


@njit(cache=True)
def dca_chunk_nb(start, end, o, h, lo, c, buy, p, fstate, istate, fills, trips, eq, cash, units):
    """Run bars start..end-1; stop early when the records could overflow; return the next bar."""
    for i in range(start, end):
        if fills.shape[0] - istate[I_FILLS] < 3 or trips.shape[0] - istate[I_TRIPS] < 2:
            return i
        if fstate[F_UNITS] > 0.0:
            exits_nb(i, o[i], o[i], o[i], p, fstate, istate, fills, trips)
        if buy[i] and istate[I_LIQUIDATED] == 0:
            buy_nb(i, o[i], p, fstate, istate, fills)
        if fstate[F_UNITS] > 0.0:
            exits_nb(i, o[i], h[i], lo[i], p, fstate, istate, fills, trips)
        cash[i] = fstate[F_CASH]
        units[i] = fstate[F_UNITS]
        eq[i] = cash[i] + units[i] * c[i]
    return end
