"""The indicator registry seen through the expression grammar's Provider interface."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.data.store import Bars
from engine.strategy.indicators import INDICATORS, bind_params, compute_indicator


class IndicatorProvider:
    """Resolves `sma(50)`, `rsi(14)`, `sma(volume, 20)` … to INDICATORS entries."""

    def has(self, name: str) -> bool:
        """Whether an indicator of this name exists."""
        return name in INDICATORS

    def arity(self, name: str) -> tuple[int, int]:
        """Every param has a default, so 0 up to all of them may be given."""
        return 0, len(INDICATORS[name].params)

    def param_names(self, name: str) -> tuple[str, ...]:
        """The params in positional order."""
        return tuple(k for k, _ in INDICATORS[name].params)

    def check_params(self, name: str, args: tuple[float, ...], kwargs: dict[str, float]) -> None:
        """ValueError naming the param unless the values are in the indicator's bounds."""
        bind_params(INDICATORS[name], args, kwargs)

    def check_series(self, name: str) -> None:
        """ValueError unless the indicator reads only the close, which a series can stand in for."""
        source = INDICATORS[name].source
        if source != ("close",):
            reads = ", ".join(source[:-1]) + f" and {source[-1]}" if len(source) > 1 else source[0]
            raise ValueError(f"{name} reads {reads}; it takes no series argument")

    def compute(
        self,
        name: str,
        bars: Any,
        args: tuple[float, ...],
        kwargs: dict[str, float],
        series: tuple[np.ndarray, ...],
    ) -> np.ndarray:
        """Compute the indicator; a leading series argument stands in for the close."""
        if series:
            self.check_series(name)
            s = np.ascontiguousarray(series[0], dtype=np.float64)
            bars = Bars(bars.ts, s, s, s, s, bars.volume)
        return compute_indicator(name, bars, args, kwargs)


PROVIDER = IndicatorProvider()
