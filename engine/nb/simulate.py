"""The bar loop for one sleeve, run chunk by chunk with its state in small arrays.

Per bar: queued orders fill at the open (next_open mode); protective exits are checked against the
bar's range; the bar's close decides new orders (which fill at once in close mode); equity is
marked at the close.

Speed: helpers take (pos, k) instead of row views and the bar loop calls them only when there
is something to do (an order queued, a position open), because each call of a numba function
with many array arguments costs far more than the few comparisons of a flat bar.
"""

import numpy as np
from numba import njit

from engine.nb.orders import close_position_nb, open_position_nb, trade_price_nb, value_at_nb
from engine.nb.records import (
    D_STOP,
    D_TP,
    D_TRAIL,
    F_CASH,
    I_DAY_ENTRIES,
    I_PENDING_BAR,
    I_PENDING_SIDE,
    I_SKIPPED,
    K_FEE,
    K_FILL_CLOSE,
    K_HAS_LEVELS,
    K_MAX_HOLD,
    K_SLIP,
    K_STOP_PCT,
    K_TP_PCT,
    K_TP_R,
    K_TRAIL_PCT,
    NO_EXIT,
    P_BEST,
    P_ENTRY,
    P_ENTRY_BAR,
    P_EXIT,
    P_RISK,
    P_SIDE,
    P_STOP,
    P_TARGET,
    P_TRAIL,
    P_UNITS,
    REASON_MAX_HOLD,
    REASON_SIGNAL,
    REASON_STOP,
    REASON_TAKE_PROFIT,
    REASON_TRAILING,
)
from engine.nb.risk import (
    entry_allowed_nb,
    entry_units_nb,
    level_distance_nb,
    register_loss_nb,
    risk_distance_nb,
)


@njit(cache=True)
def stop_level_nb(pos: np.ndarray, k: int) -> tuple[float, int]:
    """Return the tighter of position k's fixed and trailing stop levels and its exit reason."""
    side, level, reason = pos[k, P_SIDE], pos[k, P_STOP], REASON_STOP
    trail = pos[k, P_TRAIL]
    if trail == trail:
        trail_level = pos[k, P_BEST] - side * trail
        if level != level or side * (trail_level - level) > 0.0:
            level, reason = trail_level, REASON_TRAILING
    return level, reason


@njit(cache=True)
def protective_exit_nb(i, pos, k, o, h, lo) -> tuple[float, int, bool]:
    """Return (raw exit price, reason, both hit) for position k on bar i; NaN price if none."""
    side = pos[k, P_SIDE]
    level, reason = stop_level_nb(pos, k)
    target = pos[k, P_TARGET]
    if i > pos[k, P_ENTRY_BAR]:
        if level == level and side * (o - level) <= 0.0:
            return o, reason, False
        if target == target and side * (o - target) >= 0.0:
            return o, REASON_TAKE_PROFIT, False
    worst, best = (lo, h) if side > 0 else (h, lo)
    stop_hit = level == level and side * (worst - level) <= 0.0
    target_hit = target == target and side * (best - target) >= 0.0
    if stop_hit:
        return level, reason, target_hit
    if target_hit:
        return target, REASON_TAKE_PROFIT, False
    return np.nan, -1, False


@njit(cache=True)
def check_exits_nb(i, o, h, lo, pos, p, fstate, istate, fills, trips):
    """Close every position whose stop, trailing stop or target bar i reaches; ratchet the rest."""
    for k in range(pos.shape[0]):
        if pos[k, P_UNITS] <= 0.0:
            continue
        price, reason, both = protective_exit_nb(i, pos, k, o, h, lo)
        if price == price:
            fill = trade_price_nb(price, -int(pos[k, P_SIDE]), p[K_SLIP])
            pnl = close_position_nb(
                i, pos, k, fill, p[K_FEE], reason, both, fstate, istate, fills, trips
            )
            if pnl < 0.0:
                register_loss_nb(i, p, trips, istate)
        elif pos[k, P_SIDE] > 0:
            pos[k, P_BEST] = max(pos[k, P_BEST], h)
        else:
            pos[k, P_BEST] = min(pos[k, P_BEST], lo)


@njit(cache=True)
def set_levels_nb(pos, k, dist, sb, p, price, risk):
    """Set position k's stop, target, trailing distance, best price and per-unit risk."""
    side = pos[k, P_SIDE]
    stop = level_distance_nb(dist[sb, D_STOP], p[K_STOP_PCT], price)
    pos[k, P_STOP] = price - side * stop if stop > 0.0 else np.nan
    tp = level_distance_nb(dist[sb, D_TP], p[K_TP_PCT], price)
    if tp != tp and risk > 0.0:
        tp = p[K_TP_R] * risk
    pos[k, P_TARGET] = price + side * tp if tp > 0.0 else np.nan
    trail = level_distance_nb(dist[sb, D_TRAIL], p[K_TRAIL_PCT], price)
    pos[k, P_TRAIL] = trail if trail > 0.0 else np.nan
    pos[k, P_BEST] = price
    pos[k, P_RISK] = risk if risk > 0.0 else 0.0


@njit(cache=True)
def book_nb(pos: np.ndarray, price: float, side: int) -> tuple[float, int, int]:
    """Return (value of open positions at price, open count, free row or -1; -2 if other side)."""
    value, count, free = 0.0, 0, -1
    for k in range(pos.shape[0]):
        if pos[k, P_UNITS] > 0.0:
            if pos[k, P_SIDE] != side:
                return 0.0, 0, -2
            value += value_at_nb(pos, k, price)
            count += 1
        elif free < 0:
            free = k
    return value, count, free


@njit(cache=True)
def try_entry_nb(i, side, sb, raw, pos, dist, vol_scale, day, p, fstate, istate, fills):
    """Open a position at bar i if the gates and sizing allow it, else count a skip."""
    value, count, free = book_nb(pos, raw, side)
    equity = fstate[F_CASH] + value
    if free < 0 or not entry_allowed_nb(i, day[i], p, istate, equity, count, pos.shape[0]):
        istate[I_SKIPPED] += 1
        return
    fee = p[K_FEE]
    price = trade_price_nb(raw, side, p[K_SLIP])
    risk = risk_distance_nb(dist, sb, p, price)
    units = entry_units_nb(p, fstate, equity, price, fee, risk, vol_scale[sb])
    if units <= 0.0:
        istate[I_SKIPPED] += 1
        return
    open_position_nb(i, pos, free, side, units, price, fee, fstate, istate, fills)
    set_levels_nb(pos, free, dist, sb, p, price, risk)
    istate[I_DAY_ENTRIES] += 1


@njit(cache=True)
def fill_pending_nb(i, raw, pos, dist, vol_scale, day, p, fstate, istate, fills, trips):
    """Fill queued exits, then a queued entry, at raw price (before slippage) on bar i."""
    for k in range(pos.shape[0]):
        if pos[k, P_UNITS] <= 0.0 or pos[k, P_EXIT] == NO_EXIT:
            continue
        fill = trade_price_nb(raw, -int(pos[k, P_SIDE]), p[K_SLIP])
        reason = int(pos[k, P_EXIT])
        pnl = close_position_nb(
            i, pos, k, fill, p[K_FEE], reason, False, fstate, istate, fills, trips
        )
        if pnl < 0.0:
            register_loss_nb(i, p, trips, istate)
    side = istate[I_PENDING_SIDE]
    if side != 0:
        istate[I_PENDING_SIDE] = 0
        sb = istate[I_PENDING_BAR]
        try_entry_nb(i, side, sb, raw, pos, dist, vol_scale, day, p, fstate, istate, fills)


@njit(cache=True)
def decide_exits_nb(i, lx, sx, pos, max_hold, offset) -> int:
    """At bar i's close, flag signal and max-hold exits; return how many positions exit."""
    flagged = 0
    for k in range(pos.shape[0]):
        if pos[k, P_UNITS] <= 0.0:
            continue
        if pos[k, P_EXIT] != NO_EXIT:
            flagged += 1
        elif lx[i] if pos[k, P_SIDE] > 0 else sx[i]:
            pos[k, P_EXIT] = REASON_SIGNAL
            flagged += 1
        elif max_hold > 0 and i - pos[k, P_ENTRY_BAR] + offset >= max_hold:
            pos[k, P_EXIT] = REASON_MAX_HOLD
            flagged += 1
    return flagged


@njit(cache=True)
def simulate_chunk_nb(
    i0, i1, open_, high, low, close, le, lx, se, sx, dist, vol_scale, day,
    p, fstate, istate, pos, fills, trips, equity, cash_out, units_out,
):  # fmt: skip
    """Run bars [i0, i1): fill at the open, check protective exits, decide, mark."""
    n = open_.shape[0]
    at_close = p[K_FILL_CLOSE] > 0.0
    max_hold = p[K_MAX_HOLD]
    levels = p[K_HAS_LEVELS] > 0.0
    offset = 0 if at_close else 1
    n_open = 0
    for k in range(pos.shape[0]):
        if pos[k, P_UNITS] > 0.0:
            n_open += 1
    flagged = n_open  # unknown at a chunk start: let fill_pending_nb look
    for i in range(i0, i1):
        if not at_close and (flagged > 0 or istate[I_PENDING_SIDE] != 0):
            fill_pending_nb(i, open_[i], pos, dist, vol_scale, day, p, fstate, istate, fills, trips)
            n_open = -1
        if n_open != 0 and levels:
            check_exits_nb(i, open_[i], high[i], low[i], pos, p, fstate, istate, fills, trips)
        flagged = 0
        if at_close or i < n - 1:
            # Flags set at a close are filled before the next decision, so with no exit signal
            # and no max hold nothing can be flagged: skip the call.
            if n_open != 0 and (lx[i] or sx[i] or max_hold > 0):
                flagged = decide_exits_nb(i, lx, sx, pos, max_hold, offset)
            if le[i] != se[i]:
                istate[I_PENDING_SIDE] = 1 if le[i] else -1
                istate[I_PENDING_BAR] = i
        if at_close and (flagged > 0 or istate[I_PENDING_SIDE] != 0):
            fill_pending_nb(i, close[i], pos, dist, vol_scale, day, p, fstate, istate, fills, trips)
            n_open = -1
        value, net = 0.0, 0.0
        if n_open != 0:  # else flat all bar long: no fill happened, nothing is open
            n_open = 0
            for k in range(pos.shape[0]):  # inline: a call here would cost more than the loop
                units = pos[k, P_UNITS]
                if units > 0.0:
                    entry, side = pos[k, P_ENTRY], pos[k, P_SIDE]
                    value += units * (entry + side * (close[i] - entry))  # as value_at_nb
                    net += side * units
                    n_open += 1
        equity[i] = fstate[F_CASH] + value
        cash_out[i] = fstate[F_CASH]
        units_out[i] = net
