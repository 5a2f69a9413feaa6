"""Deterministic synthetic demo data so a fresh server can run a backtest with no import."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data.store import MINUTE_NS, Bars, BarStore

MINUTES_PER_YEAR = 365 * 24 * 60


@dataclass(frozen=True)
class DemoSymbol:
    """Parameters of one synthetic symbol."""

    name: str
    aliases: tuple[str, ...]
    start_price: float
    volatility: float  # annualised
    trend: float  # annualised standard deviation of regime drifts
    volume: float  # median volume per minute


DEMO_SYMBOLS: tuple[DemoSymbol, ...] = (
    DemoSymbol("AAPL", (), 185.0, 0.25, 0.35, 4_000.0),
    DemoSymbol("BTC-USD", ("BTC", "BTCUSD"), 42_000.0, 0.65, 0.9, 12.0),
    DemoSymbol("ETH-USD", ("ETH", "ETHUSD"), 2_300.0, 0.75, 1.0, 150.0),
)


def ensure_demo_data(
    store: BarStore, *, start: str = "2024-01-01", days: int = 731, seed: int = 7
) -> list[str]:
    """Generate and store every demo symbol that is missing; return the names written."""
    start_ns = int(np.datetime64(start, "ns").astype(np.int64))
    written = []
    for index, spec in enumerate(DEMO_SYMBOLS):
        if store.resolve(spec.name) is not None:
            continue
        bars = generate_bars(spec, start_ns, days * 1440, np.random.default_rng(seed + index))
        store.write(
            spec.name,
            bars,
            aliases=list(spec.aliases),
            synthetic=True,
            description=f"{spec.name} synthetic demo data (1-minute geometric Brownian motion)",
        )
        written.append(spec.name)
    return written


def regime_drift(n: int, trend: float, rng: np.random.Generator) -> np.ndarray:
    """Per-minute drift that holds a random annualised level for regimes of days to weeks."""
    lengths = np.maximum(rng.exponential(20 * 1440, size=n // 1440 + 2).astype(np.int64), 1440)
    levels = rng.normal(0.0, trend, size=lengths.shape[0]) / MINUTES_PER_YEAR
    return np.repeat(levels, lengths)[:n]


def generate_bars(spec: DemoSymbol, start_ns: int, n: int, rng: np.random.Generator) -> Bars:
    """Generate n one-minute bars of GBM with regime drift, wicks and positive volume."""
    sigma = spec.volatility / np.sqrt(MINUTES_PER_YEAR)
    shocks = rng.standard_normal(n)
    log_ret = regime_drift(n, spec.trend, rng) - 0.5 * sigma**2 + sigma * shocks
    close = spec.start_price * np.exp(np.cumsum(log_ret))
    open_ = np.concatenate(([spec.start_price], close[:-1]))
    wick_up = np.abs(rng.standard_normal(n)) * 0.5 * sigma
    wick_down = np.abs(rng.standard_normal(n)) * 0.5 * sigma
    high = np.maximum(open_, close) * (1.0 + wick_up)
    low = np.minimum(open_, close) * (1.0 - wick_down)
    volume = spec.volume * rng.lognormal(0.0, 0.5, n) * (1.0 + np.abs(shocks))
    ts = start_ns + np.arange(n, dtype=np.int64) * MINUTE_NS
    return Bars(ts=ts, open=open_, high=high, low=low, close=close, volume=volume)
