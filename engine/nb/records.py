"""Record dtypes and state-slot constants shared by the simulation kernel and its caller."""

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
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("quantity", np.float64),
        ("pnl", np.float64),
        ("ret", np.float64),
        ("reason", np.int64),
    ]
)

SIDE_BUY, SIDE_SELL = 0, 1
REASON_SIGNAL, REASON_STOP, REASON_MAX_HOLD = 0, 1, 2
REASON_NAMES = ("signal", "stop", "max_hold")
PENDING_NONE, PENDING_BUY, PENDING_SELL = 0, 1, 2

# float state slots
F_CASH, F_UNITS, F_ENTRY_PRICE, F_STOP, F_ENTRY_COST, F_PENDING_STOP_DIST = range(6)
F_SIZE = 6
# int state slots
I_PENDING, I_PENDING_REASON, I_ENTRY_BAR, I_FILLS, I_TRIPS = range(5)
I_SIZE = 5


def new_state(cash: float) -> tuple[np.ndarray, np.ndarray]:
    """Return fresh (float, int) state arrays for a flat sleeve holding cash."""
    fstate = np.zeros(F_SIZE)
    fstate[F_CASH] = cash
    fstate[F_STOP] = np.nan
    istate = np.zeros(I_SIZE, dtype=np.int64)
    istate[I_ENTRY_BAR] = -1
    return fstate, istate
