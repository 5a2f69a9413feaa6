"""The signal catalog: every named signal, its typed params, allowed roles and how to compute it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.nb.indicators import macd_nb, sma_nb
from engine.nb.signals import above_nb, cross_above_nb

ROLES = ("TRIGGER", "FILTER", "EXIT")
EVENT_ROLES = ("TRIGGER", "EXIT")


@dataclass(frozen=True)
class ParamSpec:
    """An integer parameter with a default and inclusive bounds."""

    type: type
    default: int
    minimum: int
    maximum: int
    description: str = ""


@dataclass(frozen=True)
class SignalSpec:
    """A named boolean signal over a bar series."""

    name: str
    description: str
    params: dict[str, ParamSpec]
    roles: tuple[str, ...]
    compute: Callable[[np.ndarray, dict[str, int]], np.ndarray]
    ordered: tuple[tuple[str, str], ...] = ()  # (smaller, larger) param pairs


def _macd(close: np.ndarray, p: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return the MACD line and signal line."""
    line, signal, _ = macd_nb(close, p["window_fast"], p["window_slow"], p["window_sign"])
    return line, signal


def _sma_pair(close: np.ndarray, p: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return the fast and slow SMAs."""
    return sma_nb(close, p["window_fast"]), sma_nb(close, p["window_slow"])


def _macd_params() -> dict[str, ParamSpec]:
    """Params shared by the MACD signals."""
    return {
        "window_fast": ParamSpec(int, 12, 2, 500, "fast EMA window"),
        "window_slow": ParamSpec(int, 26, 3, 1000, "slow EMA window"),
        "window_sign": ParamSpec(int, 9, 2, 500, "signal-line EMA window"),
    }


def _sma_cross_params() -> dict[str, ParamSpec]:
    """Params shared by the SMA cross signals."""
    return {
        "window_fast": ParamSpec(int, 10, 2, 1000, "fast SMA window"),
        "window_slow": ParamSpec(int, 50, 3, 2000, "slow SMA window"),
    }


def _window() -> dict[str, ParamSpec]:
    """The single SMA window param."""
    return {"window": ParamSpec(int, 50, 2, 2000, "SMA window")}


_FAST_SLOW = (("window_fast", "window_slow"),)

SIGNALS: dict[str, SignalSpec] = {
    s.name: s
    for s in (
        SignalSpec(
            "macd_bullish_cross",
            "MACD line crosses above its signal line",
            _macd_params(),
            EVENT_ROLES,
            lambda c, p: cross_above_nb(*_macd(c, p)),
            _FAST_SLOW,
        ),
        SignalSpec(
            "macd_bearish_cross",
            "MACD line crosses below its signal line",
            _macd_params(),
            EVENT_ROLES,
            lambda c, p: cross_above_nb(*reversed(_macd(c, p))),
            _FAST_SLOW,
        ),
        SignalSpec(
            "is_above_sma",
            "Close is above its simple moving average",
            _window(),
            ROLES,
            lambda c, p: above_nb(c, sma_nb(c, p["window"])),
        ),
        SignalSpec(
            "is_below_sma",
            "Close is below its simple moving average",
            _window(),
            ROLES,
            lambda c, p: above_nb(sma_nb(c, p["window"]), c),
        ),
        SignalSpec(
            "sma_cross_up",
            "Fast SMA crosses above slow SMA",
            _sma_cross_params(),
            EVENT_ROLES,
            lambda c, p: cross_above_nb(*_sma_pair(c, p)),
            _FAST_SLOW,
        ),
        SignalSpec(
            "sma_cross_down",
            "Fast SMA crosses below slow SMA",
            _sma_cross_params(),
            EVENT_ROLES,
            lambda c, p: cross_above_nb(*reversed(_sma_pair(c, p))),
            _FAST_SLOW,
        ),
    )
}


def describe_signals() -> list[dict]:
    """Return the catalog as JSON-ready dicts, sorted by name."""
    return [
        {
            "name": s.name,
            "description": s.description,
            "roles": list(s.roles),
            "params": {
                k: {
                    "type": p.type.__name__,
                    "default": p.default,
                    "minimum": p.minimum,
                    "maximum": p.maximum,
                    "description": p.description,
                }
                for k, p in s.params.items()
            },
            "constraints": [f"{a} < {b}" for a, b in s.ordered],
        }
        for s in sorted(SIGNALS.values(), key=lambda s: s.name)
    ]
