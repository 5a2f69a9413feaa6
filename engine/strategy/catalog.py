"""The signal catalog: every named signal, its typed params, allowed roles and how to compute it.

A signal is a boolean series over bars, evaluated on each bar's close. Events (crosses) hold on
the one bar where they happen and may be a TRIGGER or an EXIT; states (comparisons with a level
or a moving line) may also be a FILTER. Every comparison is false where an input is NaN, so a
signal is false during its indicators' warm-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.data.store import Bars
from engine.nb.indicators import sma_nb
from engine.nb.signals import (
    above_level_nb,
    above_nb,
    below_level_nb,
    cross_above_nb,
    cross_below_nb,
)
from engine.params import Param
from engine.strategy.indicators import INDICATORS, Params, col, computed, describe_param

__all__ = ["EVENT_ROLES", "ROLES", "SIGNALS", "SignalSpec", "describe_signals"]

ROLES = ("TRIGGER", "FILTER", "EXIT")
EVENT_ROLES = ("TRIGGER", "EXIT")


@dataclass(frozen=True)
class SignalSpec:
    """A named boolean signal over bars."""

    name: str
    description: str
    params: dict[str, Param]
    roles: tuple[str, ...]
    compute: Callable[[Bars, Params], np.ndarray]
    ordered: tuple[tuple[str, str], ...] = ()  # (smaller, larger) param pairs


def ind(name: str, bars: Bars, p: Params, **rename: str) -> np.ndarray:
    """Compute a registry indicator, taking its params from p (renamed per `rename`)."""
    spec = INDICATORS[name]
    values = {k: p[rename.get(k, k)] for k, _ in spec.params}
    return computed(spec, bars, values)


def close(bars: Bars) -> np.ndarray:
    """The bars' closes as float64."""
    return col(bars, "close")


def previous(x: np.ndarray) -> np.ndarray:
    """x shifted one bar later; NaN on the first bar."""
    return np.concatenate(([np.nan], x[:-1]))


def window(default: int, what: str, minimum: int = 2) -> dict[str, Param]:
    """A single `window` param."""
    return {"window": Param("integer", default, what, minimum, 2000)}


def threshold(default: float, lo: float, hi: float, what: str) -> dict[str, Param]:
    """A float `threshold` param."""
    return {"threshold": Param("number", default, what, lo, hi)}


def fast_slow(fast: int, slow: int, what: str) -> dict[str, Param]:
    """A `window_fast` < `window_slow` pair."""
    return {
        "window_fast": Param("integer", fast, f"fast {what} window", 2, 1000),
        "window_slow": Param("integer", slow, f"slow {what} window", 3, 2000),
    }


def macd_params() -> dict[str, Param]:
    """Params shared by the MACD signals."""
    return {
        "window_fast": Param("integer", 12, "fast EMA window", 2, 500),
        "window_slow": Param("integer", 26, "slow EMA window", 3, 1000),
        "window_sign": Param("integer", 9, "signal-line EMA window", 2, 500),
    }


def bollinger_params() -> dict[str, Param]:
    """Params shared by the Bollinger signals."""
    return {
        **window(20, "band window (SMA and std)"),
        "std": Param("number", 2.0, "band width in population standard deviations", 0.1, 10.0),
    }


def stoch_params(level: float | None = None) -> dict[str, Param]:
    """The %K window, then the %K level for a state or the %D window for a cross."""
    out = window(14, "%K window", 1)
    if level is None:
        return out | {"window_sign": Param("integer", 3, "%D: SMA window over %K", 1, 500)}
    return out | threshold(level, 0.0, 100.0, "%K level")


def rsi_params(level: float) -> dict[str, Param]:
    """RSI window and level."""
    return {**window(14, "RSI window", 1), **threshold(level, 0.0, 100.0, "RSI level")}


def pair(name: str, bars: Bars, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """A moving average of close with the fast and the slow window."""
    fast = ind(name, bars, p, window="window_fast")
    return fast, ind(name, bars, p, window="window_slow")


def level(x: np.ndarray, value: float) -> np.ndarray:
    """A constant series beside x."""
    return np.full(x.shape[0], float(value))


def macd_cross(bars: Bars, p: Params, kernel: Callable) -> np.ndarray:
    """MACD line against its signal line."""
    return kernel(ind("macd", bars, p), ind("macd_signal", bars, p))


def rsi_cross(bars: Bars, p: Params, kernel: Callable) -> np.ndarray:
    """RSI against a constant level."""
    rsi = ind("rsi", bars, p)
    return kernel(rsi, level(rsi, p["threshold"]))


def band_break(bars: Bars, p: Params, band: str, kernel: Callable) -> np.ndarray:
    """Close against a Bollinger band."""
    return kernel(close(bars), ind(band, bars, p))


def donchian_break(bars: Bars, p: Params, up: bool) -> np.ndarray:
    """Close beyond the previous bar's Donchian channel."""
    if up:
        return above_nb(close(bars), previous(ind("donchian_upper", bars, p)))
    return above_nb(previous(ind("donchian_lower", bars, p)), close(bars))


def volume_spike(bars: Bars, p: Params) -> np.ndarray:
    """Volume above multiplier times its SMA (the current bar included)."""
    volume = col(bars, "volume")
    return above_nb(volume, float(p["multiplier"]) * sma_nb(volume, int(p["window"])))


def obv_rising(bars: Bars, p: Params) -> np.ndarray:
    """OBV above its own SMA."""
    obv = ind("obv", bars, p)
    return above_nb(obv, sma_nb(obv, int(p["window"])))


FAST_SLOW = (("window_fast", "window_slow"),)


def _specs() -> tuple[SignalSpec, ...]:
    """Every signal, grouped by indicator."""
    e, s = EVENT_ROLES, ROLES
    return (
        SignalSpec(
            "macd_bullish_cross",
            "MACD line crosses above its signal line",
            macd_params(),
            e,
            lambda b, p: macd_cross(b, p, cross_above_nb),
            FAST_SLOW,
        ),
        SignalSpec(
            "macd_bearish_cross",
            "MACD line crosses below its signal line",
            macd_params(),
            e,
            lambda b, p: macd_cross(b, p, cross_below_nb),
            FAST_SLOW,
        ),
        SignalSpec(
            "macd_above_signal",
            "MACD line is above its signal line",
            macd_params(),
            s,
            lambda b, p: macd_cross(b, p, above_nb),
            FAST_SLOW,
        ),
        SignalSpec(
            "sma_cross_up",
            "Fast SMA crosses above slow SMA",
            fast_slow(10, 50, "SMA"),
            e,
            lambda b, p: cross_above_nb(*pair("sma", b, p)),
            FAST_SLOW,
        ),
        SignalSpec(
            "sma_cross_down",
            "Fast SMA crosses below slow SMA",
            fast_slow(10, 50, "SMA"),
            e,
            lambda b, p: cross_below_nb(*pair("sma", b, p)),
            FAST_SLOW,
        ),
        SignalSpec(
            "ema_cross_up",
            "Fast EMA crosses above slow EMA",
            fast_slow(12, 26, "EMA"),
            e,
            lambda b, p: cross_above_nb(*pair("ema", b, p)),
            FAST_SLOW,
        ),
        SignalSpec(
            "ema_cross_down",
            "Fast EMA crosses below slow EMA",
            fast_slow(12, 26, "EMA"),
            e,
            lambda b, p: cross_below_nb(*pair("ema", b, p)),
            FAST_SLOW,
        ),
        SignalSpec(
            "is_above_sma",
            "Close is above its simple moving average",
            window(50, "SMA window"),
            s,
            lambda b, p: above_nb(close(b), ind("sma", b, p)),
        ),
        SignalSpec(
            "is_below_sma",
            "Close is below its simple moving average",
            window(50, "SMA window"),
            s,
            lambda b, p: above_nb(ind("sma", b, p), close(b)),
        ),
        SignalSpec(
            "is_above_ema",
            "Close is above its exponential moving average",
            window(50, "EMA window"),
            s,
            lambda b, p: above_nb(close(b), ind("ema", b, p)),
        ),
        SignalSpec(
            "is_below_ema",
            "Close is below its exponential moving average",
            window(50, "EMA window"),
            s,
            lambda b, p: above_nb(ind("ema", b, p), close(b)),
        ),
        SignalSpec(
            "rsi_oversold",
            "RSI is below threshold",
            rsi_params(30.0),
            s,
            lambda b, p: below_level_nb(ind("rsi", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "rsi_overbought",
            "RSI is above threshold",
            rsi_params(70.0),
            s,
            lambda b, p: above_level_nb(ind("rsi", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "rsi_cross_up",
            "RSI crosses above threshold (leaving oversold)",
            rsi_params(30.0),
            e,
            lambda b, p: rsi_cross(b, p, cross_above_nb),
        ),
        SignalSpec(
            "rsi_cross_down",
            "RSI crosses below threshold (leaving overbought)",
            rsi_params(70.0),
            e,
            lambda b, p: rsi_cross(b, p, cross_below_nb),
        ),
        SignalSpec(
            "adx_trending",
            "ADX is above threshold: a trend, up or down",
            {**window(14, "ADX window", 1), **threshold(25.0, 0.0, 100.0, "ADX level")},
            s,
            lambda b, p: above_level_nb(ind("adx", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "di_bullish_cross",
            "+DI crosses above -DI",
            window(14, "DI window", 1),
            e,
            lambda b, p: cross_above_nb(ind("plus_di", b, p), ind("minus_di", b, p)),
        ),
        SignalSpec(
            "di_bearish_cross",
            "+DI crosses below -DI",
            window(14, "DI window", 1),
            e,
            lambda b, p: cross_below_nb(ind("plus_di", b, p), ind("minus_di", b, p)),
        ),
        SignalSpec(
            "bollinger_lower_break",
            "Close crosses below the lower Bollinger band",
            bollinger_params(),
            e,
            lambda b, p: band_break(b, p, "bb_lower", cross_below_nb),
        ),
        SignalSpec(
            "bollinger_upper_break",
            "Close crosses above the upper Bollinger band",
            bollinger_params(),
            e,
            lambda b, p: band_break(b, p, "bb_upper", cross_above_nb),
        ),
        SignalSpec(
            "bollinger_lower_reenter",
            "Close crosses back above the lower Bollinger band",
            bollinger_params(),
            e,
            lambda b, p: band_break(b, p, "bb_lower", cross_above_nb),
        ),
        SignalSpec(
            "stoch_oversold",
            "Stochastic %K is below threshold",
            stoch_params(20.0),
            s,
            lambda b, p: below_level_nb(ind("stoch_k", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "stoch_overbought",
            "Stochastic %K is above threshold",
            stoch_params(80.0),
            s,
            lambda b, p: above_level_nb(ind("stoch_k", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "stoch_bullish_cross",
            "Stochastic %K crosses above %D",
            stoch_params(),
            e,
            lambda b, p: cross_above_nb(ind("stoch_k", b, p), ind("stoch_d", b, p)),
        ),
        SignalSpec(
            "stoch_bearish_cross",
            "Stochastic %K crosses below %D",
            stoch_params(),
            e,
            lambda b, p: cross_below_nb(ind("stoch_k", b, p), ind("stoch_d", b, p)),
        ),
        SignalSpec(
            "roc_positive",
            "Rate of change over window bars is above threshold percent",
            {**window(12, "ROC lookback", 1), **threshold(0.0, -100.0, 1000.0, "ROC level, %")},
            s,
            lambda b, p: above_level_nb(ind("roc", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "cci_oversold",
            "CCI is below threshold",
            {**window(20, "CCI window"), **threshold(-100.0, -1000.0, 0.0, "CCI level")},
            s,
            lambda b, p: below_level_nb(ind("cci", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "cci_overbought",
            "CCI is above threshold",
            {**window(20, "CCI window"), **threshold(100.0, 0.0, 1000.0, "CCI level")},
            s,
            lambda b, p: above_level_nb(ind("cci", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "donchian_breakout_up",
            "Close is above the previous bar's highest high of window bars",
            window(20, "channel window", 1),
            s,
            lambda b, p: donchian_break(b, p, up=True),
        ),
        SignalSpec(
            "donchian_breakout_down",
            "Close is below the previous bar's lowest low of window bars",
            window(20, "channel window", 1),
            s,
            lambda b, p: donchian_break(b, p, up=False),
        ),
        SignalSpec(
            "volume_spike",
            "Volume is above multiplier times its SMA over window bars (this bar included)",
            {
                **window(20, "volume SMA window", 1),
                "multiplier": Param("number", 2.0, "multiple of the average", 0.1, 100.0),
            },
            s,
            volume_spike,
        ),
        SignalSpec(
            "obv_rising",
            "On-balance volume is above its SMA",
            window(20, "OBV SMA window"),
            s,
            obv_rising,
        ),
        SignalSpec(
            "price_above_vwap",
            "Close is above the rolling VWAP",
            window(20, "VWAP window", 1),
            s,
            lambda b, p: above_nb(close(b), ind("vwap", b, p)),
        ),
        SignalSpec(
            "price_below_vwap",
            "Close is below the rolling VWAP",
            window(20, "VWAP window", 1),
            s,
            lambda b, p: above_nb(ind("vwap", b, p), close(b)),
        ),
        SignalSpec(
            "volatility_high",
            "Std of simple returns over window bars is above threshold (0.02 = 2%)",
            {**window(20, "returns window"), **threshold(0.02, 0.0, 10.0, "std of returns")},
            s,
            lambda b, p: above_level_nb(ind("stddev", b, p), float(p["threshold"])),
        ),
        SignalSpec(
            "volatility_low",
            "Std of simple returns over window bars is below threshold (0.02 = 2%)",
            {**window(20, "returns window"), **threshold(0.02, 0.0, 10.0, "std of returns")},
            s,
            lambda b, p: below_level_nb(ind("stddev", b, p), float(p["threshold"])),
        ),
    )


SIGNALS: dict[str, SignalSpec] = {s.name: s for s in _specs()}


def describe_signals() -> list[dict]:
    """Return the catalog as JSON-ready dicts, sorted by name."""
    return [
        {
            "name": s.name,
            "description": s.description,
            "roles": list(s.roles),
            "params": {k: describe_param(p) for k, p in s.params.items()},
            "constraints": [f"{a} < {b}" for a, b in s.ordered],
        }
        for s in sorted(SIGNALS.values(), key=lambda s: s.name)
    ]
