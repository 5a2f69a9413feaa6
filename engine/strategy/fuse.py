"""Recognise the common rule shapes and compute their masks in one fused kernel call.

A strategy qualifies when it has no score rule and every condition is on the run's own bars
(no coarser timeframe) and is one term: a catalog signal that compares or crosses two series
(SMA/EMA crossovers, close against an average, an indicator against a level or another
indicator), or a condition expression made of such comparisons (``<``, ``<=``, ``>``, ``>=``),
``cross_above``/``cross_below`` over bar fields, numbers and indicator calls, and-ed together
in an entry rule. Up to four SMAs and EMAs of the close are computed in the kernel's one pass;
any other series (at most three besides the close) is computed first, through the shared
indicator cache. Everything else, and every strategy inside general_path() (a sweep), takes
evaluate()'s general path; tests hold the two equal, mask for mask.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from engine.data.store import Bars
from engine.nb.fused import (
    INPUTS,
    LEVEL,
    MA_EMA,
    MA_SMA,
    MAX_MAS,
    OP_CROSS_DOWN,
    OP_CROSS_UP,
    OP_GE,
    OP_GT,
    OP_LE,
    OP_LT,
    fused_masks_nb,
)
from engine.nb.indicators import first_valid_nb
from engine.strategy.expr import And, Call, Compare, ExprError, Field, Node, Num, parse
from engine.strategy.form import Condition, Strategy
from engine.strategy.indicators import INDICATORS, bind_params, col, computed

__all__ = ["FusedPlan", "fused_masks", "fusing", "general_path", "plan"]

# A series: ("field", name), ("ma", kind, window) or ("ind", name, sorted params); or a level.
Series = tuple
Term = tuple[int, Series, Series | float]  # (op, a, b)

_CMP = {">": OP_GT, "<": OP_LT, ">=": OP_GE, "<=": OP_LE}
_FLIP = {OP_GT: OP_LT, OP_LT: OP_GT, OP_GE: OP_LE, OP_LE: OP_GE}
_MAS = {"sma": MA_SMA, "ema": MA_EMA}
CLOSE: Series = ("field", "close")


def _ind(name: str, p: dict, **rename: str) -> Series:
    """The series of registry indicator `name` with its params taken from p (as catalog.ind)."""
    values = {k: p[rename.get(k, k)] for k, _ in INDICATORS[name].params}
    if name in _MAS:
        return ("ma", _MAS[name], int(values["window"]))
    return ("ind", name, tuple(sorted(values.items())))


def _level(p: dict) -> float:
    return float(p["threshold"])


# Catalog signal -> its one term, from the signal's params (mirrors engine.strategy.catalog).
SIGNAL_TERMS = {
    "sma_cross_up": lambda p: (OP_CROSS_UP, _ind("sma", p, window="window_fast"),
                               _ind("sma", p, window="window_slow")),
    "sma_cross_down": lambda p: (OP_CROSS_DOWN, _ind("sma", p, window="window_fast"),
                                 _ind("sma", p, window="window_slow")),
    "ema_cross_up": lambda p: (OP_CROSS_UP, _ind("ema", p, window="window_fast"),
                               _ind("ema", p, window="window_slow")),
    "ema_cross_down": lambda p: (OP_CROSS_DOWN, _ind("ema", p, window="window_fast"),
                                 _ind("ema", p, window="window_slow")),
    "is_above_sma": lambda p: (OP_GT, CLOSE, _ind("sma", p)),
    "is_below_sma": lambda p: (OP_GT, _ind("sma", p), CLOSE),
    "is_above_ema": lambda p: (OP_GT, CLOSE, _ind("ema", p)),
    "is_below_ema": lambda p: (OP_GT, _ind("ema", p), CLOSE),
    "macd_bullish_cross": lambda p: (OP_CROSS_UP, _ind("macd", p), _ind("macd_signal", p)),
    "macd_bearish_cross": lambda p: (OP_CROSS_DOWN, _ind("macd", p), _ind("macd_signal", p)),
    "macd_above_signal": lambda p: (OP_GT, _ind("macd", p), _ind("macd_signal", p)),
    "rsi_oversold": lambda p: (OP_LT, _ind("rsi", p), _level(p)),
    "rsi_overbought": lambda p: (OP_GT, _ind("rsi", p), _level(p)),
    "rsi_cross_up": lambda p: (OP_CROSS_UP, _ind("rsi", p), _level(p)),
    "rsi_cross_down": lambda p: (OP_CROSS_DOWN, _ind("rsi", p), _level(p)),
    "adx_trending": lambda p: (OP_GT, _ind("adx", p), _level(p)),
    "di_bullish_cross": lambda p: (OP_CROSS_UP, _ind("plus_di", p), _ind("minus_di", p)),
    "di_bearish_cross": lambda p: (OP_CROSS_DOWN, _ind("plus_di", p), _ind("minus_di", p)),
    "bollinger_lower_break": lambda p: (OP_CROSS_DOWN, CLOSE, _ind("bb_lower", p)),
    "bollinger_upper_break": lambda p: (OP_CROSS_UP, CLOSE, _ind("bb_upper", p)),
    "bollinger_lower_reenter": lambda p: (OP_CROSS_UP, CLOSE, _ind("bb_lower", p)),
    "stoch_oversold": lambda p: (OP_LT, _ind("stoch_k", p), _level(p)),
    "stoch_overbought": lambda p: (OP_GT, _ind("stoch_k", p), _level(p)),
    "stoch_bullish_cross": lambda p: (OP_CROSS_UP, _ind("stoch_k", p), _ind("stoch_d", p)),
    "stoch_bearish_cross": lambda p: (OP_CROSS_DOWN, _ind("stoch_k", p), _ind("stoch_d", p)),
    "roc_positive": lambda p: (OP_GT, _ind("roc", p), _level(p)),
    "cci_oversold": lambda p: (OP_LT, _ind("cci", p), _level(p)),
    "cci_overbought": lambda p: (OP_GT, _ind("cci", p), _level(p)),
    "price_above_vwap": lambda p: (OP_GT, CLOSE, _ind("vwap", p)),
    "price_below_vwap": lambda p: (OP_GT, _ind("vwap", p), CLOSE),
    "volatility_high": lambda p: (OP_GT, _ind("stddev", p), _level(p)),
    "volatility_low": lambda p: (OP_LT, _ind("stddev", p), _level(p)),
}  # fmt: skip


@dataclass(frozen=True)
class FusedPlan:
    """A strategy's masks as terms over series: groups hold term indices per mask."""

    inputs: tuple[Series, ...]  # series read from arrays, the close first
    mas: tuple[tuple[int, int], ...]  # (kind, window) of each moving average of the close
    terms: tuple[tuple[int, int, int, float], ...]  # (op, series a, series b or LEVEL, level)
    groups: tuple[tuple[int, ...], ...]  # long entry, long exit, short entry, short exit

    @cached_property
    def kernel_args(self) -> tuple[np.ndarray, ...]:
        """(ma_kind, ma_window, term_op, term_a, term_b, term_level, group_lo) for the kernel."""
        kind = np.zeros(MAX_MAS, dtype=np.int64)
        window = np.ones(MAX_MAS, dtype=np.int64)
        for m, (k, w) in enumerate(self.mas):
            kind[m], window[m] = k, w
        columns = tuple(zip(*self.terms, strict=True)) if self.terms else ((), (), (), ())
        types = (np.int64, np.int64, np.int64, np.float64)
        op, a, b, level = (np.array(c, dtype=t) for c, t in zip(columns, types, strict=True))
        lo = np.cumsum([0] + [len(g) for g in self.groups]).astype(np.int64)
        return kind, window, op, a, b, level, lo


def _operand(node: Node) -> Series | float | None:
    """An expression operand as a series or a level; None if it is not one of the simple kinds."""
    if isinstance(node, Num):
        return float(node.value)
    if isinstance(node, Field):
        return ("field", node.name)
    if isinstance(node, Call) and node.name in INDICATORS:
        if not all(isinstance(a, Num) for a in node.args):
            return None  # a series argument (sma(volume, 20)): the general path
        args = tuple(a.value for a in node.args if isinstance(a, Num))
        try:
            values = bind_params(INDICATORS[node.name], args, dict(node.kwargs))
        except ValueError:
            return None
        return _ind(node.name, values)
    return None


def _expr_term(node: Node) -> Term | None:
    """One comparison or cross of an expression as a term, a level only on the right."""
    if isinstance(node, Compare) and node.op in _CMP:
        op, a, b = _CMP[node.op], _operand(node.left), _operand(node.right)
    elif isinstance(node, Call) and node.name in ("cross_above", "cross_below"):
        if len(node.args) != 2 or node.kwargs:
            return None
        op = OP_CROSS_UP if node.name == "cross_above" else OP_CROSS_DOWN
        a, b = _operand(node.args[0]), _operand(node.args[1])
    else:
        return None
    if a is None or b is None or (isinstance(a, float) and isinstance(b, float)):
        return None
    if isinstance(a, float):  # c < x is x > c; cross_above(c, x) is cross_below(x, c)
        op = {OP_CROSS_UP: OP_CROSS_DOWN, OP_CROSS_DOWN: OP_CROSS_UP}.get(op, _FLIP.get(op, op))
        a, b = b, a
    return (op, a, b)


def _terms(cond: Condition, interval: str | None, all_of: bool) -> list[Term] | None:
    """The condition's terms (an entry's and-ed expression gives several), or None."""
    if cond.timeframe is not None and cond.timeframe != interval:
        return None  # a coarser timeframe: seen only once its bar has closed
    if cond.kind == "signal":
        make = SIGNAL_TERMS.get(cond.name)
        return None if make is None else [make(cond.param_dict)]
    try:
        node = parse(cond.name)
    except ExprError:  # the general path reports it
        return None
    items = node.items if isinstance(node, And) and all_of else (node,)
    terms = [_expr_term(item) for item in items]
    return None if any(t is None for t in terms) else terms  # type: ignore[return-value]


@lru_cache(maxsize=1024)
def plan(strategy: Strategy, interval: str | None) -> FusedPlan | None:
    """Return the fused plan of a strategy of the common shapes, or None for the general path."""
    if strategy.score is not None:
        return None
    rules = (strategy.long_entry, strategy.long_exit, strategy.short_entry, strategy.short_exit)
    inputs: list[Series] = [CLOSE]
    mas: list[tuple[int, int]] = []
    terms: list[tuple[int, int, int, float]] = []
    groups: list[tuple[int, ...]] = []
    for g, conds in enumerate(rules):
        start = len(terms)
        for cond in conds:
            found = _terms(cond, interval, all_of=g % 2 == 0)
            if found is None:
                return None
            for op, a, b in found:
                ia = _slot(a, inputs, mas)
                ib = LEVEL if isinstance(b, float) else _slot(b, inputs, mas)
                terms.append((op, ia, ib, b if isinstance(b, float) else 0.0))
        groups.append(tuple(range(start, len(terms))))
    if len(inputs) > INPUTS or len(mas) > MAX_MAS:
        return None
    return FusedPlan(tuple(inputs), tuple(mas), tuple(terms), tuple(groups))


def _slot(series: Series, inputs: list[Series], mas: list[tuple[int, int]]) -> int:
    """The kernel's index of a series, added to the inputs or the moving averages if new."""
    if series[0] == "ma":
        key = (series[1], series[2])
        if key not in mas:
            mas.append(key)
        return INPUTS + mas.index(key)
    if series not in inputs:
        inputs.append(series)
    return inputs.index(series)


def _array(series: Series, bars: Bars) -> np.ndarray:
    """Compute an input series over the bars (indicators through the shared cache)."""
    if series[0] == "field":
        return col(bars, series[1])
    spec = INDICATORS[series[1]]
    return np.ascontiguousarray(computed(spec, bars, dict(series[2])), dtype=np.float64)


def _readonly(x: np.ndarray) -> np.ndarray:
    """A read-only view: every series reaches the kernel as one type, whatever its source."""
    view = x.view()
    view.flags.writeable = False
    return view


_SPARE_W = np.empty(0)  # an unused series or target slot
_SPARE = _readonly(_SPARE_W)


class _Averages(threading.local):
    """One thread's arrays for the averages a fused call computes and reads, reused from one
    run to the next: fresh arrays cost a page fault every 4 KiB on first touch (≈2.5 ms for
    three at 1M bars). Runs of more than KEEP_BARS bars get arrays of their own, not kept."""

    KEEP_BARS = 2_000_000

    def __init__(self) -> None:
        """Start without arrays."""
        self.kept = np.empty((MAX_MAS, 0))

    def rows(self, n: int) -> np.ndarray:
        """Return MAX_MAS contiguous rows of n values (contents stale)."""
        if n > self.KEEP_BARS:
            return np.empty((MAX_MAS, n))
        if self.kept.shape[1] < n:
            self.kept = np.empty((MAX_MAS, n))
        return self.kept.reshape(-1)[: MAX_MAS * n].reshape(MAX_MAS, n)


AVERAGES = _Averages()
_GENERAL = 0  # > 0 inside general_path()


@contextmanager
def general_path() -> Iterator[None]:
    """Within the block, evaluate() takes the general path for every strategy.

    A sweep opens one: its variants share each average through the indicator cache, so fusing
    saves no pass there, and per variant the general path's kernels (one tight loop per signal)
    were measured about 10% faster than the fused call's set-up and per-term loops.
    """
    global _GENERAL
    _GENERAL += 1
    try:
        yield
    finally:
        _GENERAL -= 1


def fusing() -> bool:
    """Whether evaluate() may fuse (outside every general_path() block)."""
    return _GENERAL == 0


def fused_masks(p: FusedPlan, bars: Bars) -> np.ndarray:
    """Return the (4, n) masks of a plan over the bars from one kernel call."""
    arrays = [_array(s, bars) for s in p.inputs]
    close = arrays[0]
    n = close.shape[0]
    averages = list(AVERAGES.rows(n)[: len(p.mas)])
    series = [*map(_readonly, arrays), *[_SPARE] * (INPUTS - len(arrays))]
    series += [*map(_readonly, averages), *[_SPARE] * (MAX_MAS - len(averages))]
    targets = (*averages, *[_SPARE_W] * (MAX_MAS - len(averages)))
    kind, window, op, a, b, level, lo = p.kernel_args
    first = int(first_valid_nb(close)) if p.mas else 0
    out = np.zeros((4, n), dtype=np.bool_)
    fused_masks_nb(
        out, tuple(series), len(p.mas), kind, window, first, op, a, b, level, lo, targets
    )  # fmt: skip
    return out
