"""Risk kernels: entry sizing and caps, entry gates, loss cooldowns, volatility scaling."""

import numpy as np
from numba import njit

from engine.nb.records import (
    D_STOP,
    D_TRAIL,
    F_CASH,
    I_BLOCK_LONG,
    I_BLOCK_SHORT,
    I_DAY,
    I_DAY_ENTRIES,
    I_OPEN,
    I_TRIPS,
    K_CD_LONG_BARS,
    K_CD_LONG_LIMIT,
    K_CD_LONG_WINDOW,
    K_CD_SHORT_BARS,
    K_CD_SHORT_LIMIT,
    K_CD_SHORT_WINDOW,
    K_LEVERAGE,
    K_LOT,
    K_MAX_AMOUNT,
    K_MAX_PER_DAY,
    K_MAX_POS,
    K_MAX_UNITS,
    K_MIN_AMOUNT,
    K_MIN_EQUITY,
    K_RISK,
    K_SHARE,
    K_SIZE,
    K_SIZING,
    K_STOP_PCT,
    K_TRAIL_PCT,
    SIZING_AMOUNT,
    SIZING_FRACTION,
    SIZING_RISK,
)


@njit(cache=True, nogil=True)
def atr_distances_nb(atr: np.ndarray, multiples: np.ndarray) -> np.ndarray:
    """Return the (n, 3) distances multiples[c] * atr (NaN where multiples[c] is NaN), row by
    row in one pass (no full-NaN array overwritten column by column)."""
    out = np.empty((atr.shape[0], 3))
    for i in range(atr.shape[0]):
        for c in range(3):
            out[i, c] = multiples[c] * atr[i] if multiples[c] == multiples[c] else np.nan
    return out


@njit(cache=True)
def level_distance_nb(absolute: float, pct: float, price: float) -> float:
    """Return an absolute distance if set, else pct of price, else NaN."""
    if absolute == absolute:
        return absolute
    return pct * price


@njit(cache=True)
def risk_distance_nb(dist: np.ndarray, sb: int, p: np.ndarray, price: float) -> float:
    """Return the per-unit distance to the nearer of the stop and trailing stop (NaN if none)."""
    stop = level_distance_nb(dist[sb, D_STOP], p[K_STOP_PCT], price)
    trail = level_distance_nb(dist[sb, D_TRAIL], p[K_TRAIL_PCT], price)
    if not trail > 0.0:
        return stop if stop > 0.0 else np.nan
    if not stop > 0.0:
        return trail
    return min(stop, trail)


@njit(cache=True)
def raw_units_nb(p: np.ndarray, equity: float, price: float, fee: float, risk: float) -> float:
    """Return units before caps for the sizing mode; NaN when risk sizing has no stop distance."""
    mode = p[K_SIZING]
    if mode == SIZING_RISK:
        return p[K_RISK] * equity / risk if risk > 0.0 else np.nan
    if mode == SIZING_FRACTION:  # size x the symbol's share of buying power, fee included
        lev = p[K_LEVERAGE]
        return p[K_SIZE] * equity * (p[K_SHARE] * lev) / (price * (1.0 + fee * lev))
    if mode == SIZING_AMOUNT:
        return p[K_SIZE] / price
    return p[K_SIZE]


@njit(cache=True)
def capped_units_nb(units: float, p: np.ndarray, cash: float, price: float, fee: float) -> float:
    """Cap units by max units, max amount and buying power, floor to the lot; 0 if too small."""
    lev = p[K_LEVERAGE]
    buying = cash * lev / (price * (1.0 + fee * lev))  # margin and fee must fit in cash
    units = min(units, p[K_MAX_UNITS], p[K_MAX_AMOUNT] / price, buying)
    lot = p[K_LOT]
    if lot > 0.0:
        units = np.floor(units / lot) * lot
    if not units > 0.0 or units * price < p[K_MIN_AMOUNT]:
        return 0.0
    return units


@njit(cache=True)
def entry_units_nb(p, fstate, equity, price, fee, risk, vol_scale):
    """Return the units of a new entry at price, 0 when it must be skipped."""
    units = raw_units_nb(p, equity, price, fee, risk) * vol_scale
    if units != units:
        return 0.0
    return capped_units_nb(units, p, fstate[F_CASH], price, fee)


@njit(cache=True)
def entry_allowed_nb(step, day, p, istate, equity):
    """Return whether a new entry may fill at a clock step (balance, positions, day, cooldowns)."""
    if equity < p[K_MIN_EQUITY] or istate[I_OPEN] >= p[K_MAX_POS]:
        return False
    if step <= istate[I_BLOCK_SHORT] or step <= istate[I_BLOCK_LONG]:
        return False
    if day != istate[I_DAY]:
        istate[I_DAY] = day
        istate[I_DAY_ENTRIES] = 0
    return istate[I_DAY_ENTRIES] < p[K_MAX_PER_DAY]


@njit(cache=True)
def losses_since_nb(trips, n_trips: int, first_step: int) -> int:
    """Count losing round trips (pnl < 0) that closed at or after clock step first_step."""
    count = 0
    for k in range(n_trips - 1, -1, -1):
        if trips[k]["exit_step"] < first_step:
            break
        if trips[k]["pnl"] < 0.0:
            count += 1
    return count


@njit(cache=True)
def trip_tier_nb(i, limit, window, bars, trips, istate, slot):
    """Block entries through step i + bars when limit losses closed within the last window steps."""
    if limit <= 0 or bars <= 0:
        return
    if losses_since_nb(trips, istate[I_TRIPS], i - int(window) + 1) >= limit:
        istate[slot] = max(istate[slot], i + int(bars))


@njit(cache=True)
def register_loss_nb(i, p, trips, istate):
    """Check both cooldown tiers after a losing round trip closed at clock step i."""
    trip_tier_nb(
        i, p[K_CD_SHORT_LIMIT], p[K_CD_SHORT_WINDOW], p[K_CD_SHORT_BARS], trips, istate,
        I_BLOCK_SHORT,
    )  # fmt: skip
    trip_tier_nb(
        i, p[K_CD_LONG_LIMIT], p[K_CD_LONG_WINDOW], p[K_CD_LONG_BARS], trips, istate, I_BLOCK_LONG
    )


@njit(cache=True)
def rolling_return_std_nb(close: np.ndarray, window: int) -> np.ndarray:
    """Return the sample stddev of the last `window` close-to-close returns; NaN before."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    for i in range(window, n):
        r = close[i - window + 1 : i + 1] / close[i - window : i] - 1.0
        out[i] = np.std(r) * np.sqrt(window / (window - 1.0)) if window > 1 else 0.0
    return out


@njit(cache=True)
def vol_scale_nb(realised: np.ndarray, target: float) -> np.ndarray:
    """Return min(1, target / realised) per bar; 1 where realised is undefined or zero."""
    out = np.ones(realised.shape[0])
    for i in range(realised.shape[0]):
        v = realised[i]
        if v > 0.0:
            out[i] = min(1.0, target / v)
    return out
