"""The bar loop of a portfolio: many symbols, one cash balance, one clock.

The symbols' bars are concatenated (symbol s owns indices bounds[s, 0] .. bounds[s, 1] - 1) and
the clock is the sorted union of their times. At each clock step, in sorted symbol order within
each phase: symbols with a bar at that time mark their open and fill queued exits; then queued
entries fill (next_open mode); then each checks protective exits, decides at its close and marks
its close; in close mode exits and then entries fill at the close. A symbol without a bar at a
step keeps its last price and does nothing. Positions are valued at their symbol's last price.
Every kernel here allocates nothing and is compiled without reference counting (_nrt=False):
the inlined helpers would otherwise incref and decref each array argument on every call.
"""

import numpy as np
from numba import njit

from engine.nb.records import (
    F_CASH,
    K_FILL_CLOSE,
    K_HAS_LEVELS,
    K_MAX_HOLD,
    P_ENTRY,
    P_MARGIN,
    P_SIDE,
    P_UNITS,
    S_CURSOR,
    S_FLAGGED,
    S_HAS,
    S_OPEN,
    S_PENDING_BAR,
    S_PENDING_SIDE,
    S_ROWS,
)
from engine.nb.simulate import (
    check_exits_nb,
    decide_exits_nb,
    enter_pending_nb,
    fill_exits_nb,
    needs_room_nb,
)


@njit(cache=True, _nrt=False)
def rows_value_nb(pos: np.ndarray, r0: int, r1: int, price: float) -> tuple[float, float, int]:
    """Return (value, net signed units, open count) of rows [r0, r1) at price."""
    value, net, count = 0.0, 0.0, 0
    for k in range(r0, r1):
        units = pos[k, P_UNITS]
        if units > 0.0:
            side = pos[k, P_SIDE]
            value += units * (pos[k, P_MARGIN] + side * (price - pos[k, P_ENTRY]))
            net += side * units
            count += 1
    return value, net, count


@njit(cache=True, _nrt=False)
def others_value_nb(pos: np.ndarray, sstate: np.ndarray, marks: np.ndarray, skip: int) -> float:
    """Return the value of every symbol's positions but skip's, each at its last price."""
    m = pos.shape[0] // sstate.shape[0]
    total = 0.0
    for s in range(sstate.shape[0]):
        if s != skip and sstate[s, S_OPEN] > 0:
            total += rows_value_nb(pos, s * m, s * m + sstate[s, S_ROWS], marks[s])[0]
    return total


@njit(cache=True, _nrt=False)
def recount_nb(pos: np.ndarray, sstate: np.ndarray, s: int) -> None:
    """Recount symbol s's open positions and rows in use after fills."""
    m = pos.shape[0] // sstate.shape[0]
    count, rows = 0, 0
    for k in range(m):
        if pos[s * m + k, P_UNITS] > 0.0:
            count += 1
            rows = k + 1
    sstate[s, S_OPEN] = count
    sstate[s, S_ROWS] = rows


@njit(cache=True, _nrt=False)
def exit_phase_nb(t, prices, ts, tiers, p, fstate, istate, sstate, pos, fills, trips) -> None:
    """Fill the flagged exits of every symbol with a bar at step t, at its price."""
    m = pos.shape[0] // sstate.shape[0]
    for s in range(sstate.shape[0]):
        if sstate[s, S_HAS] != 0 and sstate[s, S_FLAGGED] > 0:
            c = sstate[s, S_CURSOR]
            r0 = s * m
            fill_exits_nb(c, t, prices[c], pos, r0, r0 + sstate[s, S_ROWS], ts, tiers, p, fstate,
                          istate, fills, trips)  # fmt: skip
            sstate[s, S_FLAGGED] = 0
            recount_nb(pos, sstate, s)


@njit(cache=True, _nrt=False)
def entry_phase_nb(t, prices, ts, dist, vol_scale, tiers, p, fstate, istate, sstate, marks, pos,
                   fills) -> None:  # fmt: skip
    """Fill the queued entry of every symbol with a bar at step t, in symbol order."""
    m = pos.shape[0] // sstate.shape[0]
    for s in range(sstate.shape[0]):
        if sstate[s, S_HAS] != 0 and sstate[s, S_PENDING_SIDE] != 0:
            c = sstate[s, S_CURSOR]
            others = others_value_nb(pos, sstate, marks, s)
            enter_pending_nb(c, t, s, prices[c], others, pos, s * m, s * m + m, dist, vol_scale,
                             ts, tiers, p, fstate, istate, sstate, fills)  # fmt: skip
            recount_nb(pos, sstate, s)


@njit(cache=True, _nrt=False)
def open_phase_nb(now, bounds, ts, open_, sstate, marks) -> bool:
    """Mark which symbols have a bar at time now and set their price to its open."""
    any_bar = False
    for s in range(sstate.shape[0]):
        c = sstate[s, S_CURSOR]
        has = c < bounds[s, 1] and ts[c] == now
        sstate[s, S_HAS] = 1 if has else 0
        if has:
            marks[s] = open_[c]
            any_bar = True
    return any_bar


@njit(cache=True, _nrt=False)
def close_phase_nb(t, bounds, open_, high, low, close, le, lx, se, sx, ts, tiers, p, fstate,
                   istate, sstate, marks, pos, fills, trips) -> None:  # fmt: skip
    """Check protective exits, decide at the close and mark the close of each symbol with a bar."""
    m = pos.shape[0] // sstate.shape[0]
    at_close = p[K_FILL_CLOSE] > 0.0
    max_hold = p[K_MAX_HOLD]
    levels = p[K_HAS_LEVELS] > 0.0
    offset = 0 if at_close else 1
    for s in range(sstate.shape[0]):
        if sstate[s, S_HAS] == 0:
            continue
        c = sstate[s, S_CURSOR]
        r0 = s * m
        if sstate[s, S_OPEN] > 0 and levels:
            check_exits_nb(c, t, open_[c], high[c], low[c], pos, r0, r0 + sstate[s, S_ROWS], ts,
                           tiers, p, fstate, istate, fills, trips)  # fmt: skip
            recount_nb(pos, sstate, s)
        if at_close or c < bounds[s, 1] - 1:
            if sstate[s, S_OPEN] > 0 and (lx[c] or sx[c] or max_hold > 0):
                sstate[s, S_FLAGGED] = decide_exits_nb(c, lx, sx, pos, r0, r0 + sstate[s, S_ROWS],
                                                       max_hold, offset)  # fmt: skip
            if le[c] != se[c]:
                sstate[s, S_PENDING_SIDE] = 1 if le[c] else -1
                sstate[s, S_PENDING_BAR] = c
        marks[s] = close[c]


@njit(cache=True, _nrt=False)
def mark_phase_nb(t, pos, sstate, marks, fstate, equity, cash_out, in_market) -> None:
    """Advance the cursors of symbols with a bar; record equity, cash and whether in the market."""
    m = pos.shape[0] // sstate.shape[0]
    value, count = 0.0, 0
    for s in range(sstate.shape[0]):
        sstate[s, S_CURSOR] += sstate[s, S_HAS]
        if sstate[s, S_OPEN] > 0:
            v, _, n = rows_value_nb(pos, s * m, s * m + sstate[s, S_ROWS], marks[s])
            value += v
            count += n
    equity[t] = fstate[F_CASH] + value
    cash_out[t] = fstate[F_CASH]
    in_market[t] = count > 0


@njit(cache=True, _nrt=False)
def snapshot_nb(j, pos, sstate, marks, snap_units, snap_marks) -> None:
    """Record every symbol's net signed units and last price in snapshot row j."""
    m = pos.shape[0] // sstate.shape[0]
    for s in range(sstate.shape[0]):
        snap_units[j, s] = rows_value_nb(pos, s * m, s * m + sstate[s, S_ROWS], marks[s])[1]
        snap_marks[j, s] = marks[s]


@njit(cache=True, _nrt=False)
def simulate_portfolio_nb(
    t0, t1, clock, bounds, ts, open_, high, low, close, le, lx, se, sx, dist, vol_scale, tiers,
    p, fstate, istate, sstate, marks, pos, fills, trips, equity, cash_out, in_market,
    snap_steps, snap_units, snap_marks,
) -> int:  # fmt: skip
    """Run clock steps [t0, t1); return where it stopped (t1, or earlier to grow records)."""
    room = 3 * pos.shape[0] + 3 * sstate.shape[0] + 2
    at_close = p[K_FILL_CLOSE] > 0.0
    j = np.searchsorted(snap_steps, t0)
    for t in range(t0, t1):
        if needs_room_nb(fills, trips, istate, room):
            return t
        if open_phase_nb(clock[t], bounds, ts, open_, sstate, marks) and not at_close:
            exit_phase_nb(t, open_, ts, tiers, p, fstate, istate, sstate, pos, fills, trips)
            entry_phase_nb(t, open_, ts, dist, vol_scale, tiers, p, fstate, istate, sstate, marks,
                           pos, fills)  # fmt: skip
        close_phase_nb(t, bounds, open_, high, low, close, le, lx, se, sx, ts, tiers, p, fstate,
                       istate, sstate, marks, pos, fills, trips)  # fmt: skip
        if at_close:
            exit_phase_nb(t, close, ts, tiers, p, fstate, istate, sstate, pos, fills, trips)
            entry_phase_nb(t, close, ts, dist, vol_scale, tiers, p, fstate, istate, sstate, marks,
                           pos, fills)  # fmt: skip
        mark_phase_nb(t, pos, sstate, marks, fstate, equity, cash_out, in_market)
        if j < snap_steps.shape[0] and snap_steps[j] == t:
            snapshot_nb(j, pos, sstate, marks, snap_units, snap_marks)
            j += 1
    return t1


@njit(cache=True, nogil=True)
def union_clock_nb(ts: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return (sorted union of the runs ts[lo[s]:hi[s]], whether every run was sorted).

    A k-way merge: each clock time is the smallest time at any run's cursor, and every cursor
    at that time advances; S runs cost S comparisons per clock time, no sort. An unsorted run
    returns (empty, False) and the caller sorts instead.
    """
    runs = lo.shape[0]
    cur = lo.copy()
    out = np.empty((hi - lo).sum(), dtype=np.int64)
    for s in range(runs):
        for i in range(lo[s] + 1, hi[s]):
            if ts[i] < ts[i - 1]:
                return out[:0], False
    n = 0
    while True:
        found, now = False, 0
        for s in range(runs):
            c = cur[s]
            if c < hi[s] and (not found or ts[c] < now):
                found, now = True, ts[c]
        if not found:
            return out[:n], True
        out[n] = now
        n += 1
        for s in range(runs):
            c = cur[s]
            while c < hi[s] and ts[c] == now:
                c += 1
            cur[s] = c
