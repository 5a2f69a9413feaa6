"""Boolean signal kernels over indicator series; NaN compares as false."""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def above_nb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return a > b element-wise, false where either is NaN."""
    out = np.zeros(a.shape[0], dtype=np.bool_)
    for i in range(a.shape[0]):
        out[i] = a[i] > b[i]
    return out


@njit(cache=True, nogil=True)
def cross_above_nb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return true at i where a[i-1] <= b[i-1] and a[i] > b[i]; false where any is NaN."""
    out = np.zeros(a.shape[0], dtype=np.bool_)
    for i in range(1, a.shape[0]):
        out[i] = a[i - 1] <= b[i - 1] and a[i] > b[i]
    return out


@njit(cache=True, nogil=True)
def cross_below_nb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return true at i where a[i-1] >= b[i-1] and a[i] < b[i]; false where any is NaN."""
    out = np.zeros(a.shape[0], dtype=np.bool_)
    for i in range(1, a.shape[0]):
        out[i] = a[i - 1] >= b[i - 1] and a[i] < b[i]
    return out


@njit(cache=True, nogil=True)
def above_level_nb(a: np.ndarray, level: float) -> np.ndarray:
    """Return a > level element-wise, false where a is NaN."""
    out = np.zeros(a.shape[0], dtype=np.bool_)
    for i in range(a.shape[0]):
        out[i] = a[i] > level
    return out


@njit(cache=True, nogil=True)
def below_level_nb(a: np.ndarray, level: float) -> np.ndarray:
    """Return a < level element-wise, false where a is NaN."""
    out = np.zeros(a.shape[0], dtype=np.bool_)
    for i in range(a.shape[0]):
        out[i] = a[i] < level
    return out


@njit(cache=True, nogil=True)
def all_of_nb(masks: np.ndarray) -> np.ndarray:
    """Return the row-wise AND of a 2-D (k, n) boolean array; all true when k == 0."""
    out = np.ones(masks.shape[1], dtype=np.bool_)
    for k in range(masks.shape[0]):
        for i in range(masks.shape[1]):
            out[i] = out[i] and masks[k, i]
    return out


@njit(cache=True, nogil=True)
def any_of_nb(masks: np.ndarray) -> np.ndarray:
    """Return the row-wise OR of a 2-D (k, n) boolean array; all false when k == 0."""
    out = np.zeros(masks.shape[1], dtype=np.bool_)
    for k in range(masks.shape[0]):
        for i in range(masks.shape[1]):
            out[i] = out[i] or masks[k, i]
    return out
