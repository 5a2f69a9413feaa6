"""Seed 001's example strategy (MACD trigger, SMA filter), which the server benchmarks submit."""

from typing import Any


def seed_strategy(timeframe: str = "1h", name: str = "bench") -> dict[str, Any]:
    """The seed strategy with both signals on `timeframe`."""
    return {
        "name": name,
        "asset": "ETH",
        "entry": [
            {"name": "macd_bullish_cross", "timeframe": timeframe, "signal_type": "TRIGGER",
             "params": {"window_fast": 12, "window_slow": 26, "window_sign": 9}},
            {"name": "is_above_sma", "timeframe": timeframe, "signal_type": "FILTER",
             "params": {"window": 50}},
        ],
        "exit": [],
    }  # fmt: skip
