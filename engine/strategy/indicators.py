"""The indicator registry: named numeric series that condition expressions call by name.

Each indicator has ordered, typed params with defaults, so positional arguments map in order:
``sma(50)`` is ``sma(window=50)`` and ``macd_signal(12, 26, 9)`` is
``macd_signal(window_fast=12, window_slow=26, window_sign=9)``. ``compute_indicator`` validates
the arguments and computes; it caches nothing (the caller does).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from engine.data.store import Bars
from engine.nb.indicators import (
    adx_nb,
    atr_nb,
    bollinger_nb,
    cci_nb,
    donchian_nb,
    ema_nb,
    macd_nb,
    obv_nb,
    roc_nb,
    rolling_std_nb,
    rolling_std_returns_nb,
    rsi_nb,
    sma_nb,
    stoch_nb,
    vwap_nb,
    wma_nb,
)
from engine.params import Param

Params = dict[str, int | float]


@dataclass(frozen=True)
class IndicatorSpec:
    """A named float64 series over bars."""

    name: str
    description: str
    params: tuple[tuple[str, Param], ...]
    source: tuple[str, ...]
    compute: Callable[[Bars, Params], np.ndarray]
    ordered: tuple[tuple[str, str], ...] = ()  # (smaller, larger) param pairs

    @property
    def defaults(self) -> Params:
        """Return every param at its default."""
        return {k: p.default for k, p in self.params}


def col(bars: Bars, name: str) -> np.ndarray:
    """Return one bar column as a contiguous float64 array."""
    return np.ascontiguousarray(getattr(bars, name), dtype=np.float64)


def hlc(bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (high, low, close) as float64 arrays."""
    return col(bars, "high"), col(bars, "low"), col(bars, "close")


def window(default: int, what: str, minimum: int = 1) -> tuple[str, Param]:
    """A `window` param: a lookback in bars."""
    return ("window", Param("integer", default, what, minimum, 5000))


FAST = ("window_fast", Param("integer", 12, "fast EMA window", 1, 1000))
SLOW = ("window_slow", Param("integer", 26, "slow EMA window", 2, 2000))
SIGN = ("window_sign", Param("integer", 9, "signal-line EMA window", 1, 1000))
STD = ("std", Param("number", 2.0, "band width in population standard deviations", 0.0, 10.0))
STOCH_SIGN = ("window_sign", Param("integer", 3, "%D: SMA window over %K", 1, 1000))
FAST_SLOW = (("window_fast", "window_slow"),)
CLOSE = ("close",)
HLC = ("high", "low", "close")


def _macd(bars: Bars, p: Params, part: int) -> np.ndarray:
    """One of the MACD line (0), signal line (1) and histogram (2)."""
    sign = int(p.get("window_sign", 9))
    return macd_nb(col(bars, "close"), int(p["window_fast"]), int(p["window_slow"]), sign)[part]


def _bollinger(bars: Bars, p: Params, part: int) -> np.ndarray:
    """One of the upper (0), middle (1) and lower (2) Bollinger bands."""
    return bollinger_nb(col(bars, "close"), int(p["window"]), float(p["std"]))[part]


def _stoch(bars: Bars, p: Params, part: int) -> np.ndarray:
    """%K (0) or %D (1)."""
    return stoch_nb(*hlc(bars), int(p["window"]), int(p.get("window_sign", 3)))[part]


def _adx(bars: Bars, p: Params, part: int) -> np.ndarray:
    """+DI (0), -DI (1) or ADX (2)."""
    return adx_nb(*hlc(bars), int(p["window"]))[part]


def _donchian(bars: Bars, p: Params, part: int) -> np.ndarray:
    """Upper (0) or lower (1) Donchian channel."""
    return donchian_nb(col(bars, "high"), col(bars, "low"), int(p["window"]))[part]


def _roc(bars: Bars, p: Params) -> np.ndarray:
    """Rate of change; a series with a zero (`roc(close - open)`) in numpy, which gives inf or
    NaN for x / 0 where the kernel (numba) raises ZeroDivisionError."""
    x, n = col(bars, "close"), int(p["window"])
    if not (x == 0.0).any():
        return roc_nb(x, n)
    out = np.full(x.shape[0], np.nan)
    with np.errstate(all="ignore"):
        out[n:] = 100.0 * (x[n:] / x[: x.shape[0] - n] - 1.0)
    return out


def _stddev(bars: Bars, p: Params) -> np.ndarray:
    """Std of simple returns; returns of a series with a zero in numpy, as in _roc."""
    x, n = col(bars, "close"), int(p["window"])
    if not (x == 0.0).any():
        return rolling_std_returns_nb(x, n)
    r = np.full(x.shape[0], np.nan)
    with np.errstate(all="ignore"):
        r[1:] = x[1:] / x[:-1] - 1.0
    return rolling_std_nb(r, n, 1)


def _specs() -> tuple[IndicatorSpec, ...]:
    """Every indicator, in the order they are listed."""
    return (
        IndicatorSpec(
            "sma",
            "Simple moving average of close",
            (window(20, "SMA window"),),
            CLOSE,
            lambda b, p: sma_nb(col(b, "close"), int(p["window"])),
        ),
        IndicatorSpec(
            "ema",
            "Exponential moving average of close (alpha 2/(window+1), seeded by the SMA)",
            (window(20, "EMA window"),),
            CLOSE,
            lambda b, p: ema_nb(col(b, "close"), int(p["window"])),
        ),
        IndicatorSpec(
            "wma",
            "Linearly weighted moving average of close (newest bar heaviest)",
            (window(20, "WMA window"),),
            CLOSE,
            lambda b, p: wma_nb(col(b, "close"), int(p["window"])),
        ),
        IndicatorSpec(
            "rsi",
            "Relative strength index, Wilder smoothing, 0..100",
            (window(14, "RSI window"),),
            CLOSE,
            lambda b, p: rsi_nb(col(b, "close"), int(p["window"])),
        ),
        IndicatorSpec(
            "macd",
            "MACD line: EMA(fast) - EMA(slow) of close",
            (FAST, SLOW),
            CLOSE,
            lambda b, p: _macd(b, p, 0),
            FAST_SLOW,
        ),
        IndicatorSpec(
            "macd_signal",
            "MACD signal line: EMA of the MACD line",
            (FAST, SLOW, SIGN),
            CLOSE,
            lambda b, p: _macd(b, p, 1),
            FAST_SLOW,
        ),
        IndicatorSpec(
            "macd_hist",
            "MACD histogram: MACD line - signal line",
            (FAST, SLOW, SIGN),
            CLOSE,
            lambda b, p: _macd(b, p, 2),
            FAST_SLOW,
        ),
        IndicatorSpec(
            "atr",
            "Average true range, Wilder smoothing",
            (window(14, "ATR window"),),
            HLC,
            lambda b, p: atr_nb(*hlc(b), int(p["window"])),
        ),
        IndicatorSpec(
            "bb_upper",
            "Upper Bollinger band: SMA + std * population std of close",
            (window(20, "band window", 2), STD),
            CLOSE,
            lambda b, p: _bollinger(b, p, 0),
        ),
        IndicatorSpec(
            "bb_mid",
            "Middle Bollinger band: SMA of close",
            (window(20, "band window", 2), STD),
            CLOSE,
            lambda b, p: _bollinger(b, p, 1),
        ),
        IndicatorSpec(
            "bb_lower",
            "Lower Bollinger band: SMA - std * population std of close",
            (window(20, "band window", 2), STD),
            CLOSE,
            lambda b, p: _bollinger(b, p, 2),
        ),
        IndicatorSpec(
            "stoch_k",
            "Stochastic %K: where close sits in the window's high-low range, 0..100",
            (window(14, "%K window"),),
            HLC,
            lambda b, p: _stoch(b, p, 0),
        ),
        IndicatorSpec(
            "stoch_d",
            "Stochastic %D: SMA of %K",
            (window(14, "%K window"), STOCH_SIGN),
            HLC,
            lambda b, p: _stoch(b, p, 1),
        ),
        IndicatorSpec(
            "adx",
            "Average directional index (Wilder), 0..100",
            (window(14, "ADX window"),),
            HLC,
            lambda b, p: _adx(b, p, 2),
        ),
        IndicatorSpec(
            "plus_di",
            "Plus directional indicator +DI (Wilder), 0..100",
            (window(14, "DI window"),),
            HLC,
            lambda b, p: _adx(b, p, 0),
        ),
        IndicatorSpec(
            "minus_di",
            "Minus directional indicator -DI (Wilder), 0..100",
            (window(14, "DI window"),),
            HLC,
            lambda b, p: _adx(b, p, 1),
        ),
        IndicatorSpec(
            "roc",
            "Rate of change of close over window bars, in percent",
            (window(12, "ROC lookback"),),
            CLOSE,
            _roc,
        ),
        IndicatorSpec(
            "cci",
            "Commodity channel index of the typical price (constant 0.015)",
            (window(20, "CCI window"),),
            HLC,
            lambda b, p: cci_nb(*hlc(b), int(p["window"])),
        ),
        IndicatorSpec(
            "donchian_upper",
            "Highest high of the last window bars, the current bar included",
            (window(20, "channel window"),),
            ("high", "low"),
            lambda b, p: _donchian(b, p, 0),
        ),
        IndicatorSpec(
            "donchian_lower",
            "Lowest low of the last window bars, the current bar included",
            (window(20, "channel window"),),
            ("high", "low"),
            lambda b, p: _donchian(b, p, 1),
        ),
        IndicatorSpec(
            "obv",
            "On-balance volume, 0 on the first bar",
            (),
            ("close", "volume"),
            lambda b, p: obv_nb(col(b, "close"), col(b, "volume")),
        ),
        IndicatorSpec(
            "vwap",
            "Rolling volume-weighted average of the typical price",
            (window(20, "VWAP window"),),
            (*HLC, "volume"),
            lambda b, p: vwap_nb(*hlc(b), col(b, "volume"), int(p["window"])),
        ),
        IndicatorSpec(
            "stddev",
            "Sample standard deviation (ddof=1) of simple returns of close (0.01 = 1%)",
            (window(20, "returns window", 2),),
            CLOSE,
            _stddev,
        ),
    )


INDICATORS: dict[str, IndicatorSpec] = {s.name: s for s in _specs()}

_SHARED: dict | None = None
_SHARED_LOCK = threading.Lock()
SHARED_LIMIT = 64


@contextmanager
def shared_indicators() -> Iterator[None]:
    """Within the block, an indicator asked for twice on the same bars is computed once.

    evaluate() opens one per bar series, so `sma_cross_up` and `sma_cross_down` with the same
    windows share their two SMAs, and an expression's `sma(50)` reuses a signal's. A sweep opens
    one on its own thread around the whole sweep; its worker threads then share it (lookups and
    stores take a lock; two threads may compute the same indicator once each, same values).
    """
    global _SHARED
    outer = _SHARED
    _SHARED = {} if outer is None else outer
    try:
        yield
    finally:
        _SHARED = outer


def computed(spec: IndicatorSpec, bars: Bars, values: Params) -> np.ndarray:
    """Compute an indicator with bound params, reusing a result from the shared block."""
    shared = _SHARED
    if shared is None:
        return spec.compute(bars, values)
    key = (spec.name, id(bars), tuple(sorted(values.items())))
    with _SHARED_LOCK:
        hit = shared.get(key)
    if hit is not None and hit[0] is bars:  # the bars object itself, not a new one at that id
        return hit[1]
    out = spec.compute(bars, values)  # outside the lock: numba kernels release the GIL
    with _SHARED_LOCK:
        while len(shared) >= SHARED_LIMIT:  # a long sweep: forget the oldest, memory stays bounded
            del shared[next(iter(shared))]
        shared[key] = (bars, out)
    return out


def check_value(name: str, spec: Param, value: object) -> int | float:
    """Return value converted to the param's type, or raise ValueError naming the param."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if not spec.in_bounds(value):  # before int(): 1e308 stays short in the message
        raise ValueError(f"{name} must be between {spec.minimum} and {spec.maximum}, got {value!r}")
    if spec.kind == "integer":
        if value != int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return int(value)
    return float(value)


def bind_params(spec: IndicatorSpec, args: tuple, kwargs: dict) -> Params:
    """Map positional and keyword arguments onto the spec's params, validated, defaults filled."""
    names = [k for k, _ in spec.params]
    if len(args) > len(names):
        raise ValueError(f"{spec.name} takes at most {len(names)} arguments, got {len(args)}")
    raw = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise ValueError(f"{spec.name} has no param {key!r}; params: {', '.join(names)}")
        if key in raw:
            raise ValueError(f"{spec.name} got {key!r} both by position and by name")
        raw[key] = value
    values = spec.defaults
    for key, p in spec.params:
        if key in raw:
            values[key] = check_value(f"{spec.name}.{key}", p, raw[key])
    for small, large in spec.ordered:
        if values[small] >= values[large]:
            raise ValueError(f"{spec.name}: {small} must be less than {large}")
    return values


def compute_indicator(
    name: str, bars: Bars, args: tuple[float, ...], kwargs: dict[str, float]
) -> np.ndarray:
    """Validate the arguments of indicator `name` and compute it over the bars.

    ``compute_indicator("macd_signal", bars, (12, 26), {"window_sign": 9})`` returns the MACD
    signal line as float64, one value per bar, NaN during the warm-up. Raises KeyError for an
    unknown name and ValueError for bad arguments.
    """
    spec = INDICATORS.get(name)
    if spec is None:
        raise KeyError(f"unknown indicator {name!r}; known: {', '.join(sorted(INDICATORS))}")
    out = computed(spec, bars, bind_params(spec, tuple(args), dict(kwargs)))
    return np.asarray(out, dtype=np.float64)


def describe_param(spec: Param) -> dict:
    """Return one param as a JSON-ready dict."""
    return {
        "type": spec.type.__name__,
        "default": spec.default,
        "minimum": spec.minimum,
        "maximum": spec.maximum,
        "description": spec.description,
    }


def describe_indicators() -> list[dict]:
    """Return the registry as JSON-ready dicts, in registry order (params in positional order)."""
    return [
        {
            "name": s.name,
            "description": s.description,
            "params": [{"name": k, **describe_param(p)} for k, p in s.params],
            "source": list(s.source),
            "constraints": [f"{a} < {b}" for a, b in s.ordered],
        }
        for s in INDICATORS.values()
    ]
