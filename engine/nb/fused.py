"""Fused signals: a strategy's four entry and exit masks from one kernel call.

One pass computes every SMA and EMA of the close the strategy uses (up to MAX_MAS, with the
same arithmetic in the same order as engine.nb.indicators' sma_nb and ema_nb, so the same
bits), their running totals side by side in registers. Then each term (a comparison or a
cross of two series, or of a series and a level) is decided straight into its mask's row: the
first term of a mask sets it, the others and (an entry: all of them) or or (an exit: any of
them) into it, branch-free, so no per-condition mask is stored and no stack of them combined;
an empty rule stays all false. (Deciding every term inside the averages' pass was measured
slower: a per-bar loop over terms costs more than a tight pass per term.) Series 0..3 are the
close and up to three precomputed series (another catalog indicator, a bar field); series
INPUTS + m is moving average m. engine.strategy.fuse builds the arrays describing a strategy.
"""

import numpy as np
from numba import njit

MA_SMA = 0
MA_EMA = 1

OP_GT = 0
OP_LT = 1
OP_GE = 2
OP_LE = 3
OP_CROSS_UP = 4
OP_CROSS_DOWN = 5

INPUTS = 4  # series slots read from arrays: the close, then up to three more
MAX_MAS = 4  # moving averages of the close computed in the pass
LEVEL = -1  # a term's `b` reading its level instead of a series


@njit(cache=True, nogil=True, inline="always")
def _ma_step_nb(
    kind: int, n: int, x: np.ndarray, i: int, first: int, acc: float, nans: float
) -> tuple[float, float, float]:
    """Advance a moving average to bar i: return (running total or EMA, NaN count, value)."""
    if kind == MA_SMA:
        if np.isnan(x[i]):
            nans += 1.0
        else:
            acc += x[i]
        if i >= n:
            if np.isnan(x[i - n]):
                nans -= 1.0
            else:
                acc -= x[i - n]
        if i >= n - 1 and nans == 0.0:
            return acc, nans, acc / n
        return acc, nans, np.nan
    seed_at = first + n - 1
    if i < seed_at:
        return acc, nans, np.nan
    if i == seed_at:
        acc = np.mean(x[first : seed_at + 1])
    else:
        alpha = 2.0 / (n + 1.0)
        acc = alpha * x[i] + (1.0 - alpha) * acc
    return acc, nans, acc


@njit(cache=True, nogil=True, _nrt=False)
def moving_averages_nb(
    close: np.ndarray,
    mas: int,
    kind: np.ndarray,
    window: np.ndarray,
    first: int,
    m0: np.ndarray,
    m1: np.ndarray,
    m2: np.ndarray,
    m3: np.ndarray,
) -> None:
    """Write moving averages 0..mas-1 (kind, window: MAX_MAS long) of close into m0..m3."""
    k0, k1, k2, k3 = kind[0], kind[1], kind[2], kind[3]
    w0, w1, w2, w3 = window[0], window[1], window[2], window[3]
    a0 = a1 = a2 = a3 = 0.0
    z0 = z1 = z2 = z3 = 0.0
    for i in range(close.shape[0]):
        if mas > 0:
            a0, z0, m0[i] = _ma_step_nb(k0, w0, close, i, first, a0, z0)
        if mas > 1:
            a1, z1, m1[i] = _ma_step_nb(k1, w1, close, i, first, a1, z1)
        if mas > 2:
            a2, z2, m2[i] = _ma_step_nb(k2, w2, close, i, first, a2, z2)
        if mas > 3:
            a3, z3, m3[i] = _ma_step_nb(k3, w3, close, i, first, a3, z3)


@njit(cache=True, nogil=True, inline="always")
def _merge_nb(old: bool, r: bool, set_: bool, and_: bool, or_: bool) -> bool:
    """A term's truth set, and-ed or or-ed into a mask's value, without a branch."""
    return (set_ & r) | (and_ & old & r) | (or_ & (old | r))


@njit(cache=True, nogil=True, inline="always")
def _compare_nb(op: int, va: float, vb: float) -> bool:
    """va > vb, <, >= or <= by op, without a branch on the data; NaN compares false."""
    return (
        ((op == OP_GT) & (va > vb))
        | ((op == OP_LT) & (va < vb))
        | ((op == OP_GE) & (va >= vb))
        | ((op == OP_LE) & (va <= vb))
    )


@njit(cache=True, nogil=True, inline="always")
def _into_nb(
    row: np.ndarray,
    mode: int,
    op: int,
    a: np.ndarray,
    b: np.ndarray,
    level: float,
    on_level: bool,
) -> None:
    """Set (mode 0), and (1) or or (2) one term into a mask row, a tight loop per kind of term.

    The loop-invariant choices (mode, level or series) are selects, and the data's
    comparisons are combined with & and |, so the loops carry no branch on either.
    """
    set_, and_, or_ = mode == 0, mode == 1, mode == 2
    n = row.shape[0]
    if n == 0:
        return
    first = op < OP_CROSS_UP and _compare_nb(op, a[0], level if on_level else b[0])
    row[0] = _merge_nb(row[0], first, set_, and_, or_)
    if op == OP_CROSS_UP:
        for i in range(1, n):
            vb, pb = (level, level) if on_level else (b[i], b[i - 1])
            row[i] = _merge_nb(row[i], (a[i - 1] <= pb) & (a[i] > vb), set_, and_, or_)
    elif op == OP_CROSS_DOWN:
        for i in range(1, n):
            vb, pb = (level, level) if on_level else (b[i], b[i - 1])
            row[i] = _merge_nb(row[i], (a[i - 1] >= pb) & (a[i] < vb), set_, and_, or_)
    else:
        for i in range(1, n):
            vb = level if on_level else b[i]
            row[i] = _merge_nb(row[i], _compare_nb(op, a[i], vb), set_, and_, or_)


@njit(cache=True, nogil=True, _nrt=False)
def fused_masks_nb(
    out: np.ndarray,
    series: tuple,
    mas: int,
    ma_kind: np.ndarray,
    ma_window: np.ndarray,
    first: int,
    term_op: np.ndarray,
    term_a: np.ndarray,
    term_b: np.ndarray,
    term_level: np.ndarray,
    group_lo: np.ndarray,
    targets: tuple,
) -> None:
    """Fill the (4, n) `out`: row g is all (g even) or any (g odd) of terms group_lo[g]..[g+1].

    `series` holds eight read-only float arrays: the close, three inputs, four moving
    averages. The first `mas` averages (ma_kind, ma_window, both MAX_MAS long) are computed
    first into `targets` (four writable arrays, the same memory as series[4:]; the caller's, so
    nothing here allocates and the kernel runs without reference counting); `first` is the
    close's first non-NaN index. A term t is op term_op[t] of series term_a[t] and series
    term_b[t], or term_level[t] where term_b[t] is LEVEL.
    """
    close = series[0]
    if mas:
        m0, m1, m2, m3 = targets
        moving_averages_nb(close, mas, ma_kind, ma_window, first, m0, m1, m2, m3)
    for g in range(4):
        for t in range(group_lo[g], group_lo[g + 1]):
            mode = 0 if t == group_lo[g] else (1 if g % 2 == 0 else 2)
            a = series[term_a[t]]
            on_level = term_b[t] == LEVEL
            b = close if on_level else series[term_b[t]]
            _into_nb(out[g], mode, term_op[t], a, b, term_level[t], on_level)
