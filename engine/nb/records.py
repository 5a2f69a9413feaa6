"""Record dtypes, state slots and parameter slots shared by the simulation kernels and run.py."""

import numpy as np

from engine.data.periods import DAY_NS

FILL_DTYPE = np.dtype(
    [
        ("bar", np.int64),  # index into the run's (concatenated) bar arrays
        ("side", np.int64),  # SIDE_BUY or SIDE_SELL
        ("quantity", np.float64),
        ("price", np.float64),
        ("commission", np.float64),
        ("maker", np.bool_),  # charged the maker rate (resting limit orders)
    ]
)
TRIP_DTYPE = np.dtype(
    [
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("exit_step", np.int64),  # clock step of the exit: cooldown windows count these
        ("side", np.int64),  # LONG or SHORT
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("quantity", np.float64),
        ("pnl", np.float64),
        ("ret", np.float64),
        ("r_multiple", np.float64),  # NaN when the trade had no initial risk
        ("commission", np.float64),  # entry and exit fees
        ("reason", np.int64),
        ("both_hit", np.bool_),
    ]
)

SIDE_BUY, SIDE_SELL = 0, 1
LONG, SHORT = 1, -1
(
    REASON_SIGNAL,
    REASON_STOP,
    REASON_TAKE_PROFIT,
    REASON_TRAILING,
    REASON_MAX_HOLD,
    REASON_LIQUIDATION,
    REASON_GRID,  # a grid slot's sell (template order plans)
) = range(7)
REASON_NAMES = (
    "signal", "stop", "take_profit", "trailing_stop", "max_hold", "liquidation", "grid",
)  # fmt: skip
NO_EXIT = -1.0
FEE_WINDOW_NS = 30 * DAY_NS  # trailing traded volume of tiered fees

# float account state slots
F_CASH, F_INITIAL, F_VOL30 = range(3)
F_SIZE = 3
# int account state slots: record counters, trades per day, cooldown ends, open positions, the
# oldest fill still inside the trailing fee window
(
    I_FILLS,
    I_TRIPS,
    I_DAY,
    I_DAY_ENTRIES,
    I_BLOCK_SHORT,
    I_BLOCK_LONG,
    I_SKIPPED,
    I_OPEN,
    I_VOL_TAIL,
) = range(9)
I_SIZE = 9
# int per-symbol state slots (one row per symbol): pending entry (side 0 = none, signal bar),
# next bar to run, open positions, positions flagged to exit, refused entries, has a bar now,
# rows in use (1 + the last occupied row of the symbol's rows: loops scan only those)
S_PENDING_SIDE, S_PENDING_BAR, S_CURSOR, S_OPEN, S_FLAGGED, S_SKIPPED, S_HAS, S_ROWS = range(8)
S_SIZE = 8

# position slots, one row per open position (P_UNITS == 0: free row); a symbol owns
# max_open_positions consecutive rows
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
    P_MARGIN,  # margin per unit: entry / leverage
    P_LIQ,  # liquidation price (NaN: none)
) = range(13)
P_SIZE = 13

# parameter slots of the float64 params array the kernel reads
(
    K_LEVERAGE,
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
    K_MMR,  # maintenance margin rate (NaN: no liquidation)
    K_SHARE,  # fraction sizing budget per symbol: 1 / number of symbols
    K_MAX_POS,  # max open positions across the account
) = range(27)
K_SIZE_OF = 27
SIZING_RISK, SIZING_FRACTION, SIZING_UNITS, SIZING_AMOUNT = range(4)
# columns of the per-bar distance array (absolute price distances, NaN when not ATR-based)
D_STOP, D_TP, D_TRAIL = range(3)
# columns of the fee tier table: trailing 30-day volume from which a tier applies, rates
T_MIN_VOLUME, T_MAKER, T_TAKER = range(3)


def new_state(
    cash: float, max_positions: int = 1, symbols: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return fresh (float, int, per-symbol, positions) state arrays for a flat account."""
    fstate = np.zeros(F_SIZE)
    fstate[F_CASH] = cash
    fstate[F_INITIAL] = cash
    istate = np.zeros(I_SIZE, dtype=np.int64)
    istate[I_DAY] = np.iinfo(np.int64).min
    istate[I_BLOCK_SHORT] = np.iinfo(np.int64).min
    istate[I_BLOCK_LONG] = np.iinfo(np.int64).min
    sstate = np.zeros((symbols, S_SIZE), dtype=np.int64)
    sstate[:, S_PENDING_BAR] = -1
    pos = np.zeros((max_positions * symbols, P_SIZE))
    pos[:, P_EXIT] = NO_EXIT
    return fstate, istate, sstate, pos


def new_params() -> np.ndarray:
    """Return a params array with everything off: all-in fraction sizing, no limits, 1x."""
    p = np.zeros(K_SIZE_OF)
    p[K_LEVERAGE] = 1.0
    p[K_SIZING] = SIZING_FRACTION
    p[K_SIZE] = 1.0
    p[K_MAX_PER_DAY] = np.inf
    p[K_MAX_UNITS] = np.inf
    p[K_MAX_AMOUNT] = np.inf
    p[K_HAS_LEVELS] = 1.0  # callers that know no level can be set turn exit checks off
    p[K_SHARE] = 1.0
    p[K_MAX_POS] = np.inf
    for k in (K_STOP_PCT, K_TP_PCT, K_TP_R, K_TRAIL_PCT, K_MMR):
        p[k] = np.nan
    return p


def flat_fees(rate: float) -> np.ndarray:
    """Return a one-tier fee table charging rate (a fraction) to makers and takers."""
    return np.array([[0.0, rate, rate]])
