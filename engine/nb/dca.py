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

from engine.nb.resting import BUY as SIDE_BUY
from engine.nb.resting import (
    N_FILLS,
    N_LIQUIDATED,
    N_REFUSED,
    N_TRIPS,
    REASON_LIQUIDATION,
    REASON_STOP,
    REASON_TAKE_PROFIT,
    SELL,
    add_fill_nb,
    add_trip_nb,
    limit_fill_nb,
    liquidation_price_nb,
    stop_fill_nb,
)

# float state: cash, units, the cycle's notional bought and its entry fees
D_CASH, D_UNITS, D_COST, D_FEES = range(4)
D_SIZE = 4
N_CYCLE_BAR = 3  # int state slot after the shared counters: the bar the cycle's first buy filled
# params: amount per buy, taker and maker fee rates, take profit and stop fractions (NaN: none),
# the lowest cash may go ((1 - leverage) x capital), maintenance margin rate (NaN: never)
P_AMOUNT, P_TAKER, P_MAKER, P_TP, P_SL, P_FLOOR, P_MMR = range(7)
P_SIZE = 7


@njit(cache=True)
def levels_nb(fstate: np.ndarray, p: np.ndarray) -> tuple[float, float, int]:
    """Return the (stop, take profit, stop reason) of the open cycle; NaN prices where unset.

    The stop is the higher of the stop loss and the liquidation price (reason liquidation).
    """
    avg = fstate[D_COST] / fstate[D_UNITS]
    stop, reason = avg * (1.0 - p[P_SL]), REASON_STOP
    liq = liquidation_price_nb(fstate[D_CASH], fstate[D_UNITS], p[P_MMR])
    if liq == liq and (stop != stop or liq > stop):
        stop, reason = liq, REASON_LIQUIDATION
    return stop, avg * (1.0 + p[P_TP]), reason


@njit(cache=True)
def buy_nb(i, o, p, fstate, istate, fills) -> None:
    """Buy `amount` (or what cash can pay) at the open with the taker fee."""
    fee, floor = p[P_TAKER], p[P_FLOOR]
    spend = min(p[P_AMOUNT], (fstate[D_CASH] - floor) / (1.0 + fee))
    if spend <= 1e-9 * p[P_AMOUNT]:
        istate[N_REFUSED] += 1
        return
    qty = spend / o
    commission = spend * fee
    fstate[D_CASH] = max(fstate[D_CASH] - spend - commission, floor)
    if fstate[D_UNITS] <= 0.0:
        istate[N_CYCLE_BAR] = i
    fstate[D_UNITS] += qty
    fstate[D_COST] += spend
    fstate[D_FEES] += commission
    add_fill_nb(fills, istate, i, SIDE_BUY, qty, o, commission, False)


@njit(cache=True)
def sell_all_nb(i, price, fee, maker, reason, both, fstate, istate, fills, trips) -> None:
    """Sell the whole position at price, record the cycle's round trip and reset it."""
    qty, cost, fees = fstate[D_UNITS], fstate[D_COST], fstate[D_FEES]
    commission = qty * price * fee
    fstate[D_CASH] += qty * price - commission
    pnl = qty * price - commission - cost - fees
    add_trip_nb(
        trips, istate, istate[N_CYCLE_BAR], i, cost / qty, price, qty, pnl, cost + fees,
        reason, both,
    )  # fmt: skip
    add_fill_nb(fills, istate, i, SELL, qty, price, commission, maker)
    if reason == REASON_LIQUIDATION:
        istate[N_LIQUIDATED] = i + 1
    fstate[D_UNITS] = 0.0
    fstate[D_COST] = 0.0
    fstate[D_FEES] = 0.0


@njit(cache=True)
def exits_nb(i, o, h, lo, p, fstate, istate, fills, trips) -> None:
    """Fill the stop (or liquidation) or the take profit if the bar (o, h, lo) reaches it.

    The stop first; both in range -> the stop, flagged both_hit.
    """
    stop, target, reason = levels_nb(fstate, p)
    at_stop = stop_fill_nb(SELL, stop, o, h, lo)
    at_target = limit_fill_nb(SELL, target, o, h, lo)
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
        if fills.shape[0] - istate[N_FILLS] < 3 or trips.shape[0] - istate[N_TRIPS] < 2:
            return i
        if fstate[D_UNITS] > 0.0:
            exits_nb(i, o[i], o[i], o[i], p, fstate, istate, fills, trips)
        if buy[i] and istate[N_LIQUIDATED] == 0:
            buy_nb(i, o[i], p, fstate, istate, fills)
        if fstate[D_UNITS] > 0.0:
            exits_nb(i, o[i], h[i], lo[i], p, fstate, istate, fills, trips)
        cash[i] = fstate[D_CASH]
        units[i] = fstate[D_UNITS]
        eq[i] = cash[i] + units[i] * c[i]
    return end
