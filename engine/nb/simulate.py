"""The bar loop for one sleeve, run chunk by chunk with its state in small arrays.

Per bar: queued orders fill at the open (next_open mode); protective exits are checked against the
bar's range; the bar's close decides new orders (which fill at once in close mode); equity is
marked at the close.
"""

import numpy as np
from numba import njit

from engine.nb.orders import close_position_nb, open_position_nb, position_value_nb, trade_price_nb
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
    K_MAX_HOLD,
    K_SLIP,
    K_STOP_PCT,
    K_TP_PCT,
    K_TP_R,
    K_TRAIL_PCT,
    NO_EXIT,
    P_BEST,
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
def stop_level_nb(row: np.ndarray) -> tuple[float, int]:
    """Return the tighter of the fixed and trailing stop levels and its exit reason."""
    side, level, reason = row[P_SIDE], row[P_STOP], REASON_STOP
    trail = row[P_TRAIL]
    if trail == trail:
        trail_level = row[P_BEST] - side * trail
        if level != level or side * (trail_level - level) > 0.0:
            level, reason = trail_level, REASON_TRAILING
    return level, reason


@njit(cache=True)
def protective_exit_nb(i, row, o, h, lo) -> tuple[float, int, bool]:
    """Return (raw exit price, reason, both hit) for bar i, or NaN price when nothing is hit."""
    side = row[P_SIDE]
    level, reason = stop_level_nb(row)
    target = row[P_TARGET]
    if i > row[P_ENTRY_BAR]:
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
        row = pos[k]
        if row[P_UNITS] <= 0.0:
            continue
        price, reason, both = protective_exit_nb(i, row, o, h, lo)
        if price == price:
            fill = trade_price_nb(price, -int(row[P_SIDE]), p[K_SLIP])
            pnl = close_position_nb(
                i, row, fill, p[K_FEE], reason, both, fstate, istate, fills, trips
            )
            if pnl < 0.0:
                register_loss_nb(i, p, trips, istate)
        elif row[P_SIDE] > 0:
            row[P_BEST] = max(row[P_BEST], h)
        else:
            row[P_BEST] = min(row[P_BEST], lo)


@njit(cache=True)
def set_levels_nb(row, dist_row, p, price, risk):
    """Set a new position's stop, target, trailing distance, best price and per-unit risk."""
    side = row[P_SIDE]
    stop = level_distance_nb(dist_row[D_STOP], p[K_STOP_PCT], price)
    row[P_STOP] = price - side * stop if stop > 0.0 else np.nan
    tp = level_distance_nb(dist_row[D_TP], p[K_TP_PCT], price)
    if tp != tp and risk > 0.0:
        tp = p[K_TP_R] * risk
    row[P_TARGET] = price + side * tp if tp > 0.0 else np.nan
    trail = level_distance_nb(dist_row[D_TRAIL], p[K_TRAIL_PCT], price)
    row[P_TRAIL] = trail if trail > 0.0 else np.nan
    row[P_BEST] = price
    row[P_RISK] = risk if risk > 0.0 else 0.0


@njit(cache=True)
def book_nb(pos: np.ndarray, price: float, side: int) -> tuple[float, int, int]:
    """Return (value of open positions at price, open count, free row or -1; -2 if other side)."""
    value, count, free = 0.0, 0, -1
    for k in range(pos.shape[0]):
        if pos[k, P_UNITS] > 0.0:
            if pos[k, P_SIDE] != side:
                return 0.0, 0, -2
            value += position_value_nb(pos[k], price)
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
    risk = risk_distance_nb(dist[sb], p, price)
    units = entry_units_nb(p, fstate, equity, price, fee, risk, vol_scale[sb])
    if units <= 0.0:
        istate[I_SKIPPED] += 1
        return
    row = pos[free]
    open_position_nb(i, row, side, units, price, fee, fstate, istate, fills)
    set_levels_nb(row, dist[sb], p, price, risk)
    istate[I_DAY_ENTRIES] += 1


@njit(cache=True)
def fill_pending_nb(i, raw, pos, dist, vol_scale, day, p, fstate, istate, fills, trips):
    """Fill queued exits, then a queued entry, at raw price (before slippage) on bar i."""
    for k in range(pos.shape[0]):
        row = pos[k]
        if row[P_UNITS] > 0.0 and row[P_EXIT] != NO_EXIT:
            fill = trade_price_nb(raw, -int(row[P_SIDE]), p[K_SLIP])
            reason = int(row[P_EXIT])
            pnl = close_position_nb(
                i, row, fill, p[K_FEE], reason, False, fstate, istate, fills, trips
            )
            if pnl < 0.0:
                register_loss_nb(i, p, trips, istate)
    side = istate[I_PENDING_SIDE]
    if side != 0:
        istate[I_PENDING_SIDE] = 0
        sb = istate[I_PENDING_BAR]
        try_entry_nb(i, side, sb, raw, pos, dist, vol_scale, day, p, fstate, istate, fills)


@njit(cache=True)
def decide_nb(i, le, lx, se, sx, pos, p, istate):
    """At bar i's close, flag exits (signal, max hold) and queue at most one entry."""
    max_hold = p[K_MAX_HOLD]
    offset = 0 if p[K_FILL_CLOSE] > 0.0 else 1
    for k in range(pos.shape[0]):
        row = pos[k]
        if row[P_UNITS] <= 0.0 or row[P_EXIT] != NO_EXIT:
            continue
        if lx[i] if row[P_SIDE] > 0 else sx[i]:
            row[P_EXIT] = REASON_SIGNAL
        elif max_hold > 0 and i - row[P_ENTRY_BAR] + offset >= max_hold:
            row[P_EXIT] = REASON_MAX_HOLD
    if le[i] != se[i]:
        istate[I_PENDING_SIDE] = 1 if le[i] else -1
        istate[I_PENDING_BAR] = i


@njit(cache=True)
def mark_nb(i, close, pos, fstate, equity, cash_out, units_out):
    """Record equity (cash + positions at the close), cash and net signed units at bar i."""
    value, net = 0.0, 0.0
    for k in range(pos.shape[0]):
        if pos[k, P_UNITS] > 0.0:
            value += position_value_nb(pos[k], close[i])
            net += pos[k, P_SIDE] * pos[k, P_UNITS]
    equity[i] = fstate[F_CASH] + value
    cash_out[i] = fstate[F_CASH]
    units_out[i] = net


@njit(cache=True)
def simulate_chunk_nb(
    i0, i1, open_, high, low, close, le, lx, se, sx, dist, vol_scale, day,
    p, fstate, istate, pos, fills, trips, equity, cash_out, units_out,
):  # fmt: skip
    """Run bars [i0, i1): fill at the open, check protective exits, decide, mark."""
    n = open_.shape[0]
    at_close = p[K_FILL_CLOSE] > 0.0
    for i in range(i0, i1):
        if not at_close:
            fill_pending_nb(i, open_[i], pos, dist, vol_scale, day, p, fstate, istate, fills, trips)
        check_exits_nb(i, open_[i], high[i], low[i], pos, p, fstate, istate, fills, trips)
        if at_close or i < n - 1:
            decide_nb(i, le, lx, se, sx, pos, p, istate)
        if at_close:
            fill_pending_nb(i, close[i], pos, dist, vol_scale, day, p, fstate, istate, fills, trips)
        mark_nb(i, close, pos, fstate, equity, cash_out, units_out)
