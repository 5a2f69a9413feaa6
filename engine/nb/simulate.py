"""The bar loop for one symbol, and the per-position kernels the portfolio loop shares.

Per bar: queued orders fill at the open (next_open mode); protective exits (stops, targets,
liquidation) are checked against the bar's range; the bar's close decides new orders (which fill
at once in close mode); equity is marked at the close.

Speed: helpers take (pos, k) instead of row views and the bar loop calls them only when there
is something to do (an order queued, a position open), because each call of a numba function
with many array arguments costs far more than the few comparisons of a flat bar. A symbol owns
position rows [r0, r1); the account state (cash, counters, open positions) is shared.
The helpers here are inlined into the loops that call them (inline="always"): a fill went
through five nested calls, each passing a dozen arrays, ~0.3 µs a fill (more compile time).
The loop itself is compiled without the runtime's reference counting (_nrt=False; it
allocates nothing): numba increfs and decrefs every array an inlined helper takes, an atomic
operation each, ~36 per fill, which was half of the loop's time.
"""

import numpy as np
from numba import njit

from engine.nb.orders import close_position_nb, fill_rate_nb, open_position_nb, trade_price_nb
from engine.nb.records import (
    D_STOP,
    D_TP,
    D_TRAIL,
    DAY_NS,
    F_CASH,
    I_DAY_ENTRIES,
    I_FILLS,
    I_OPEN,
    I_SKIPPED,
    I_TRIPS,
    K_FILL_CLOSE,
    K_HAS_LEVELS,
    K_LEVERAGE,
    K_MAX_HOLD,
    K_MMR,
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
    P_LIQ,
    P_MARGIN,
    P_RISK,
    P_SIDE,
    P_STOP,
    P_TARGET,
    P_TRAIL,
    P_UNITS,
    REASON_LIQUIDATION,
    REASON_MAX_HOLD,
    REASON_SIGNAL,
    REASON_STOP,
    REASON_TAKE_PROFIT,
    REASON_TRAILING,
    S_PENDING_BAR,
    S_PENDING_SIDE,
    S_SKIPPED,
)
from engine.nb.risk import (
    entry_allowed_nb,
    entry_units_nb,
    level_distance_nb,
    register_loss_nb,
    risk_distance_nb,
)


@njit(cache=True, inline="always")
def stop_level_nb(pos: np.ndarray, k: int) -> tuple[float, int]:
    """Return the tightest of position k's stop, trailing stop and liquidation, and its reason."""
    side, level, reason = pos[k, P_SIDE], pos[k, P_STOP], REASON_STOP
    trail = pos[k, P_TRAIL]
    if trail == trail:
        trail_level = pos[k, P_BEST] - side * trail
        if level != level or side * (trail_level - level) > 0.0:
            level, reason = trail_level, REASON_TRAILING
    liq = pos[k, P_LIQ]
    if liq == liq and (level != level or side * (liq - level) > 0.0):
        level, reason = liq, REASON_LIQUIDATION
    return level, reason


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def close_nb(i, step, pos, k, raw, reason, both, ts, tiers, p, fstate, istate, fills, trips):
    """Close position k at raw price (slippage added) paying the taker rate; book a loss."""
    fill = trade_price_nb(raw, -int(pos[k, P_SIDE]), p[K_SLIP])
    fee = fill_rate_nb(i, False, ts, tiers, fills, istate, fstate)
    pnl = close_position_nb(i, step, pos, k, fill, fee, reason, both, fstate, istate, fills, trips)
    if pnl < 0.0:
        register_loss_nb(step, p, trips, istate)


@njit(cache=True, inline="always")
def check_exits_nb(i, step, o, h, lo, pos, r0, r1, ts, tiers, p, fstate, istate, fills, trips):
    """Close every position whose stop, trailing stop, liquidation or target bar i reaches."""
    for k in range(r0, r1):
        if pos[k, P_UNITS] <= 0.0:
            continue
        price, reason, both = protective_exit_nb(i, pos, k, o, h, lo)
        if price == price:
            close_nb(
                i, step, pos, k, price, reason, both, ts, tiers, p, fstate, istate, fills, trips
            )
        elif pos[k, P_SIDE] > 0:
            pos[k, P_BEST] = max(pos[k, P_BEST], h)
        else:
            pos[k, P_BEST] = min(pos[k, P_BEST], lo)


@njit(cache=True, inline="always")
def liquidation_price_nb(pos: np.ndarray, k: int, mmr: float) -> float:
    """Return the price at which position k's margin plus pnl equals mmr x its notional."""
    if mmr != mmr:
        return np.nan
    entry, margin = pos[k, P_ENTRY], pos[k, P_MARGIN]
    if pos[k, P_SIDE] > 0:
        return (entry - margin) / (1.0 - mmr) if entry > margin else np.nan
    return (entry + margin) / (1.0 + mmr)


@njit(cache=True, inline="always")
def set_levels_nb(pos, k, dist, sb, p, price, risk):
    """Set position k's stop, target, trailing distance, liquidation, best price and risk."""
    side = pos[k, P_SIDE]
    stop = level_distance_nb(dist[sb, D_STOP], p[K_STOP_PCT], price)
    pos[k, P_STOP] = price - side * stop if stop > 0.0 else np.nan
    tp = level_distance_nb(dist[sb, D_TP], p[K_TP_PCT], price)
    if tp != tp and risk > 0.0:
        tp = p[K_TP_R] * risk
    pos[k, P_TARGET] = price + side * tp if tp > 0.0 else np.nan
    trail = level_distance_nb(dist[sb, D_TRAIL], p[K_TRAIL_PCT], price)
    pos[k, P_TRAIL] = trail if trail > 0.0 else np.nan
    pos[k, P_LIQ] = liquidation_price_nb(pos, k, p[K_MMR])
    pos[k, P_BEST] = price
    pos[k, P_RISK] = risk if risk > 0.0 else 0.0


@njit(cache=True, inline="always")
def book_nb(pos: np.ndarray, r0: int, r1: int, price: float, side: int) -> tuple[float, int]:
    """Return (value of rows [r0, r1) at price, first free row); free row -2 if other side."""
    value, free = 0.0, -1
    for k in range(r0, r1):
        if pos[k, P_UNITS] > 0.0:
            if pos[k, P_SIDE] != side:
                return 0.0, -2
            value += pos[k, P_UNITS] * (
                pos[k, P_MARGIN] + pos[k, P_SIDE] * (price - pos[k, P_ENTRY])
            )
        elif free < 0:
            free = k
    return value, free


@njit(cache=True, inline="always")
def try_entry_nb(i, step, side, sb, raw, others, pos, r0, r1, dist, vol_scale, ts, tiers, p,
                 fstate, istate, fills) -> bool:  # fmt: skip
    """Open a position at bar i (taker) if the gates and sizing allow; count a refusal."""
    value, free = book_nb(pos, r0, r1, raw, side)
    equity = fstate[F_CASH] + value + others
    if free < 0 or not entry_allowed_nb(step, ts[i] // DAY_NS, p, istate, equity):
        istate[I_SKIPPED] += 1
        return False
    fee = fill_rate_nb(i, False, ts, tiers, fills, istate, fstate)
    price = trade_price_nb(raw, side, p[K_SLIP])
    ds = sb if dist.shape[0] > 1 else 0  # one row: no ATR-based level, the same for every bar
    risk = risk_distance_nb(dist, ds, p, price)
    scale = vol_scale[sb] if vol_scale.shape[0] > 1 else vol_scale[0]
    units = entry_units_nb(p, fstate, equity, price, fee, risk, scale)
    if units <= 0.0:
        istate[I_SKIPPED] += 1
        return False
    open_position_nb(i, pos, free, side, units, price, fee, p[K_LEVERAGE], False, fstate, istate,
                     fills)  # fmt: skip
    set_levels_nb(pos, free, dist, ds, p, price, risk)
    istate[I_DAY_ENTRIES] += 1
    return True


@njit(cache=True, inline="always")
def fill_exits_nb(i, step, raw, pos, r0, r1, ts, tiers, p, fstate, istate, fills, trips):
    """Fill the exits flagged on rows [r0, r1) at raw price (before slippage) on bar i."""
    for k in range(r0, r1):
        if pos[k, P_UNITS] <= 0.0 or pos[k, P_EXIT] == NO_EXIT:
            continue
        reason = int(pos[k, P_EXIT])
        close_nb(i, step, pos, k, raw, reason, False, ts, tiers, p, fstate, istate, fills, trips)


@njit(cache=True, inline="always")
def enter_pending_nb(i, step, s, raw, others, pos, r0, r1, dist, vol_scale, ts, tiers, p, fstate,
                     istate, sstate, fills) -> None:  # fmt: skip
    """Fill symbol s's queued entry, if any, at raw price on bar i."""
    side = sstate[s, S_PENDING_SIDE]
    if side != 0:
        sstate[s, S_PENDING_SIDE] = 0
        sb = sstate[s, S_PENDING_BAR]
        if not try_entry_nb(i, step, side, sb, raw, others, pos, r0, r1, dist, vol_scale, ts,
                            tiers, p, fstate, istate, fills):  # fmt: skip
            sstate[s, S_SKIPPED] += 1


@njit(cache=True, inline="always")
def fill_pending_nb(i, raw, pos, m, dist, vol_scale, ts, tiers, p, fstate, istate, sstate, fills,
                    trips) -> None:  # fmt: skip
    """Fill the one symbol's queued exits, then its queued entry, at raw price on bar i."""
    fill_exits_nb(i, i, raw, pos, 0, m, ts, tiers, p, fstate, istate, fills, trips)
    enter_pending_nb(i, i, 0, raw, 0.0, pos, 0, m, dist, vol_scale, ts, tiers, p, fstate, istate,
                     sstate, fills)  # fmt: skip


@njit(cache=True, inline="always")
def decide_exits_nb(i, lx, sx, pos, r0, r1, max_hold, offset) -> int:
    """At bar i's close, flag signal and max-hold exits on rows [r0, r1); return how many."""
    flagged = 0
    for k in range(r0, r1):
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


@njit(cache=True, inline="always")
def needs_room_nb(fills, trips, istate, room: int) -> bool:
    """Return whether the fill or round-trip records have fewer than room free slots."""
    return istate[I_FILLS] + room > fills.shape[0] or istate[I_TRIPS] + room > trips.shape[0]


@njit(cache=True, nogil=True, _nrt=False)
def simulate_chunk_nb(
    i0, i1, ts, open_, high, low, close, le, lx, se, sx, dist, vol_scale, tiers,
    p, fstate, istate, sstate, pos, fills, trips, equity, cash_out, units_out,
) -> int:  # fmt: skip
    """Run one symbol's bars [i0, i1); return where it stopped (i1, or earlier to grow records)."""
    n = open_.shape[0]
    m = pos.shape[0]
    room = 3 * m + 2
    at_close = p[K_FILL_CLOSE] > 0.0
    max_hold = p[K_MAX_HOLD]
    levels = p[K_HAS_LEVELS] > 0.0
    offset = 0 if at_close else 1
    n_open = istate[I_OPEN]
    flagged = n_open  # unknown at a chunk start: let fill_pending_nb look
    for i in range(i0, i1):
        busy = flagged > 0 or sstate[0, S_PENDING_SIDE] != 0
        if (busy or n_open != 0 or at_close) and needs_room_nb(fills, trips, istate, room):
            return i
        if not at_close and busy:
            fill_pending_nb(i, open_[i], pos, m, dist, vol_scale, ts, tiers, p, fstate, istate,
                            sstate, fills, trips)  # fmt: skip
            n_open = -1
        if n_open != 0 and levels:
            check_exits_nb(i, i, open_[i], high[i], low[i], pos, 0, m, ts, tiers, p, fstate,
                           istate, fills, trips)  # fmt: skip
        flagged = 0
        if at_close or i < n - 1:
            # Flags set at a close are filled before the next decision, so with no exit signal
            # and no max hold nothing can be flagged: skip the call.
            if n_open != 0 and (lx[i] or sx[i] or max_hold > 0):
                flagged = decide_exits_nb(i, lx, sx, pos, 0, m, max_hold, offset)
            if le[i] != se[i]:
                sstate[0, S_PENDING_SIDE] = 1 if le[i] else -1
                sstate[0, S_PENDING_BAR] = i
        if at_close and (flagged > 0 or sstate[0, S_PENDING_SIDE] != 0):
            fill_pending_nb(i, close[i], pos, m, dist, vol_scale, ts, tiers, p, fstate, istate,
                            sstate, fills, trips)  # fmt: skip
            n_open = -1
        value, net = 0.0, 0.0
        if n_open != 0:  # else flat all bar long: no fill happened, nothing is open
            n_open = 0
            for k in range(m):  # inline: a call here would cost more than the loop
                units = pos[k, P_UNITS]
                if units > 0.0:
                    side = pos[k, P_SIDE]
                    value += units * (pos[k, P_MARGIN] + side * (close[i] - pos[k, P_ENTRY]))
                    net += side * units
                    n_open += 1
        equity[i] = fstate[F_CASH] + value
        cash_out[i] = fstate[F_CASH]
        units_out[i] = net
    return i1
