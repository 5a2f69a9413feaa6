"""Turn a compiled strategy into per-bar entry and exit masks for one bar series."""

from __future__ import annotations

import numpy as np

from engine.data.store import Bars
from engine.nb.signals import all_of_nb, any_of_nb
from engine.strategy.catalog import SIGNALS
from engine.strategy.compile import CompiledSignal, CompiledStrategy


def signal_mask(signal: CompiledSignal, bars: Bars) -> np.ndarray:
    """Compute one signal's boolean series on the bars' closes."""
    close = np.ascontiguousarray(bars.close, dtype=np.float64)
    return SIGNALS[signal.name].compute(close, signal.param_dict)


def _stack(signals: tuple[CompiledSignal, ...], bars: Bars) -> np.ndarray:
    """Stack signal masks into a (k, n) array."""
    masks = np.zeros((len(signals), len(bars)), dtype=np.bool_)
    for k, signal in enumerate(signals):
        masks[k] = signal_mask(signal, bars)
    return masks


def evaluate(strategy: CompiledStrategy, bars: Bars) -> tuple[np.ndarray, np.ndarray]:
    """Return (entry, exit) masks: entry when every entry signal holds, exit when any exit does."""
    return all_of_nb(_stack(strategy.entry, bars)), any_of_nb(_stack(strategy.exit, bars))
