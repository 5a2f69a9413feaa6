"""The floor: bare numba loops for the benchmark strategy, written apart from the engine.

Two versions, no risk model, no chunks, no metrics:

- staged (the floor the targets use): SMA arrays, then the signal arrays, then the fill loop,
  each a numba pass over the whole series, as any engine built from reusable kernels does;
- fused: one pass that keeps running sums, decides and fills, the least work possible.

Both decide on a bar's close, fill at the next bar's open with a fee, size all in, and make
their first decision at bar WARMUP.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from bench.data import WARMUP


@njit(cache=True)
def sma_1d_nb(x, n):
    """Simple moving average by a running sum; NaN for the first n - 1 values."""
    out = np.full(x.shape[0], np.nan)
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i]
        if i >= n:
            total -= x[i - n]
        if i >= n - 1:
            out[i] = total / n
    return out


@njit(cache=True)
def signals_1d_nb(close, fast, slow, filt):
    """Return (entries, exits): fast crosses above slow with close above filt; crosses below."""
    n = close.shape[0]
    entries = np.zeros(n, dtype=np.bool_)
    exits = np.zeros(n, dtype=np.bool_)
    for i in range(1, n):
        entries[i] = fast[i - 1] <= slow[i - 1] and fast[i] > slow[i] and close[i] > filt[i]
        exits[i] = slow[i - 1] <= fast[i - 1] and slow[i] > fast[i]
    return entries, exits


@njit(cache=True)
def fills_1d_nb(open_, close, entries, exits, fee, cash, start, equity, entry_idx, exit_idx):
    """Fill at the next open, all in; write equity per bar and trades; return the trade count."""
    n = close.shape[0]
    units = 0.0
    pending = 0  # 1 buy, -1 sell at the next open
    trades = 0
    for i in range(n):
        if pending == 1:
            units = cash / (open_[i] * (1.0 + fee))
            cash = max(cash - units * open_[i] * (1.0 + fee), 0.0)
            entry_idx[trades] = i
        elif pending == -1:
            cash += units * open_[i] * (1.0 - fee)
            units = 0.0
            exit_idx[trades] = i
            trades += 1
        pending = 0
        equity[i] = cash + units * close[i]
        if i >= start and i < n - 1:
            if units > 0.0:
                if exits[i]:
                    pending = -1
            elif entries[i]:
                pending = 1
    return trades


@njit(cache=True)
def fused_1d_nb(open_, close, fast, slow, filt, fee, cash, start, equity, entry_idx, exit_idx):
    """The whole strategy in one pass with running sums; return the trade count."""
    n = close.shape[0]
    s_fast = s_slow = s_filt = 0.0
    prev_fast = prev_slow = np.nan
    units = 0.0
    pending = 0
    trades = 0
    for i in range(n):
        if pending == 1:
            units = cash / (open_[i] * (1.0 + fee))
            cash = max(cash - units * open_[i] * (1.0 + fee), 0.0)
            entry_idx[trades] = i
        elif pending == -1:
            cash += units * open_[i] * (1.0 - fee)
            units = 0.0
            exit_idx[trades] = i
            trades += 1
        pending = 0
        equity[i] = cash + units * close[i]
        c = close[i]
        s_fast += c
        s_slow += c
        s_filt += c
        if i >= fast:
            s_fast -= close[i - fast]
        if i >= slow:
            s_slow -= close[i - slow]
        if i >= filt:
            s_filt -= close[i - filt]
        m_fast = s_fast / fast if i >= fast - 1 else np.nan
        m_slow = s_slow / slow if i >= slow - 1 else np.nan
        if i >= start and i < n - 1:
            if units > 0.0:
                if prev_slow <= prev_fast and m_slow > m_fast:
                    pending = -1
            elif prev_fast <= prev_slow and m_fast > m_slow and c > s_filt / filt:
                pending = 1
        prev_fast = m_fast
        prev_slow = m_slow
    return trades


def run_staged(bars, fast=10, slow=30, filt=50, fee=0.001, cash=1e6):
    """Return (equity, trades as (entry index, exit index) rows)."""
    open_, close = bars["open"], bars["close"]
    entries, exits = signals_1d_nb(
        close, sma_1d_nb(close, fast), sma_1d_nb(close, slow), sma_1d_nb(close, filt)
    )
    return _collect(fills_1d_nb, open_, close, entries, exits, fee, cash)


def run_fused(bars, fast=10, slow=30, filt=50, fee=0.001, cash=1e6):
    """Return (equity, trades as (entry index, exit index) rows)."""
    return _collect(fused_1d_nb, bars["open"], bars["close"], fast, slow, filt, fee, cash)


def _collect(kernel, open_, close, *args):
    n = close.shape[0]
    equity = np.empty(n)
    entry_idx = np.empty(n // 2 + 1, dtype=np.int64)
    exit_idx = np.empty(n // 2 + 1, dtype=np.int64)
    k = kernel(open_, close, *args, WARMUP, equity, entry_idx, exit_idx)
    return equity, np.stack([entry_idx[:k], exit_idx[:k]], axis=1)
