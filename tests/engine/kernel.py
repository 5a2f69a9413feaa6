"""The one-symbol bar-loop kernel run over hand-made bars, for the kernel tests."""

import numpy as np

from engine.nb import records as rec
from engine.nb.records import FILL_DTYPE, I_FILLS, I_TRIPS, TRIP_DTYPE
from engine.nb.simulate import simulate_chunk_nb

# open, high, low, close
BASE = [
    (10.0, 10.5, 9.5, 10.0),
    (10.0, 11.0, 9.8, 10.5),
    (10.5, 12.0, 10.4, 11.8),
    (12.0, 12.5, 11.9, 12.2),
    (12.2, 12.4, 12.0, 12.1),
    (12.1, 12.3, 11.9, 12.0),
]
REASON = {name: k for k, name in enumerate(rec.REASON_NAMES)}


def mask(n: int, bars) -> np.ndarray:
    """Return a boolean mask true at the given bar indices."""
    m = np.zeros(n, bool)
    m[list(bars)] = True
    return m


def run(rows, le=(), lx=(), se=(), sx=(), dist=(None, None, None), max_pos=1, days=None,
        fee=0.0, tiers=None, ts=None, **k):  # fmt: skip
    """Run the kernel over hand-made bars; k sets params by slot name (slip=..., stop_pct=...).

    fee is a flat rate on every fill, tiers a fee tier table; bars are a day apart unless days
    (the UTC day of each bar) or ts (each bar's time in ns) says otherwise.
    """
    o, h, lo, c = (np.array(col) for col in zip(*rows, strict=True))
    n = o.size
    p = rec.new_params()
    for name, value in k.items():
        p[getattr(rec, "K_" + name.upper())] = value
    d = np.full((n, 3), np.nan)
    for col, value in enumerate(dist):
        if value is not None:
            d[:, col] = value
    if ts is None:
        ts = (np.arange(n) if days is None else np.array(days)) * rec.DAY_NS
    ts = np.asarray(ts, np.int64)
    tiers = rec.flat_fees(fee) if tiers is None else np.asarray(tiers, np.float64)
    fstate, istate, sstate, pos = rec.new_state(1000.0, max_pos)
    room = 2 * n + 3 * max_pos + 2  # the kernel stops early when records have less room
    fills, trips = np.zeros(room, FILL_DTYPE), np.zeros(room, TRIP_DTYPE)
    eq, ca, un = np.zeros(n), np.zeros(n), np.zeros(n)
    masks = [mask(n, m) for m in (le, lx, se, sx)]
    done = simulate_chunk_nb(
        0, n, ts, o, h, lo, c, *masks, d, np.ones(n), tiers, p, fstate, istate, sstate, pos,
        fills, trips, eq, ca, un,
    )  # fmt: skip
    assert done == n
    return fills[: istate[I_FILLS]], trips[: istate[I_TRIPS]], eq, fstate, un
