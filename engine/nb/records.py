"""Record dtypes, state slots and parameter slots shared by the simulation kernels and run.py."""

import numpy as np

FILL_DTYPE = np.dtype(
    [
        ("bar", np.int64),
        ("side", np.int64),  # SIDE_BUY or SIDE_SELL
        ("quantity", np.float64),
        ("price", np.float64),
        ("commission", np.float64),
    ]
)
TRIP_DTYPE = np.dtype(
    [
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("side", np.int64),  # LONG or SHORT
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("quantity", np.float64),
        ("pnl", np.float64),
        ("ret", np.float64),
        ("r_multiple", np.float64),  # NaN when the trade had no initial risk
        ("reason", np.int64),
        ("both_hit", np.bool_),
    ]
)

SIDE_BUY, SIDE_SELL = 0, 1
LONG, SHORT = 1, -1
REASON_SIGNAL, REASON_STOP, REASON_TAKE_PROFIT, REASON_TRAILING, REASON_MAX_HOLD = range(5)
REASON_NAMES = ("signal", "stop", "take_profit", "trailing_stop", "max_hold")
NO_EXIT = -1.0

# float state slots
F_CASH, F_INITIAL = range(2)
F_SIZE = 2
# int state slots: pending entry (side 0 = none, signal bar), counters, cooldown ends, day
(
    I_PENDING_SIDE,
    I_PENDING_BAR,
    I_FILLS,
    I_TRIPS,
    I_DAY,
    I_DAY_ENTRIES,
    I_BLOCK_SHORT,
    I_BLOCK_LONG,
    I_SKIPPED,
) = range(9)
I_SIZE = 9

# position slots, one row per open position (P_UNITS == 0: free row)
(
    P_SIDE,
    P_UNITS,
    P_ENTRY,
    P_COMMISSION,
    P_STOP,
    P_TARGET,
    P_TRAIL,
    P_BEST,
    P_ENTRY_BAR,
    P_RISK,
    P_EXIT,
) = range(11)
P_SIZE = 11

# parameter slots of the float64 params array the kernel reads
(
    K_FEE,
    K_SLIP,
    K_FILL_CLOSE,
    K_SIZING,
    K_SIZE,
    K_LOT,
    K_MIN_EQUITY,
    K_MIN_AMOUNT,
    K_MAX_PER_DAY,
    K_RISK,
    K_MAX_UNITS,
    K_MAX_AMOUNT,
    K_MAX_HOLD,
    K_STOP_PCT,
    K_TP_PCT,
    K_TP_R,
    K_TRAIL_PCT,
    K_CD_SHORT_LIMIT,
    K_CD_SHORT_WINDOW,
    K_CD_SHORT_BARS,
    K_CD_LONG_LIMIT,
    K_CD_LONG_WINDOW,
    K_CD_LONG_BARS,
    K_HAS_LEVELS,  # 1.0 when any stop, target or trailing stop can be set: else exits are skipped
) = range(24)
K_SIZE_OF = 24
SIZING_RISK, SIZING_FRACTION, SIZING_UNITS, SIZING_AMOUNT = range(4)
# columns of the per-bar distance array (absolute price distances, NaN when not ATR-based)
D_STOP, D_TP, D_TRAIL = range(3)


def new_state(cash: float, max_positions: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return fresh (float, int, positions) state arrays for a flat sleeve holding cash."""
    fstate = np.zeros(F_SIZE)
    fstate[F_CASH] = cash
    fstate[F_INITIAL] = cash
    istate = np.zeros(I_SIZE, dtype=np.int64)
    istate[I_PENDING_BAR] = -1
    istate[I_DAY] = np.iinfo(np.int64).min
    istate[I_BLOCK_SHORT] = -1
    istate[I_BLOCK_LONG] = -1
    pos = np.zeros((max_positions, P_SIZE))
    pos[:, P_EXIT] = NO_EXIT
    return fstate, istate, pos


def new_params() -> np.ndarray:
    """Return a params array with everything off: no fees, all-in fraction sizing, no limits."""
    p = np.zeros(K_SIZE_OF)
    p[K_SIZING] = SIZING_FRACTION
    p[K_SIZE] = 1.0
    p[K_MAX_PER_DAY] = np.inf
    p[K_MAX_UNITS] = np.inf
    p[K_MAX_AMOUNT] = np.inf
    p[K_HAS_LEVELS] = 1.0  # callers that know no level can be set turn exit checks off
    for k in (K_STOP_PCT, K_TP_PCT, K_TP_R, K_TRAIL_PCT):
        p[k] = np.nan
    return p
