"""Execution settings for one run: seed 001's names and meanings, plus fees, fills and sizing.

Every field has a default. ``Execution.from_dict`` builds one from JSON-like data and raises
ValueError naming the offending field; ``validate`` runs the same checks on an instance.
Fees: see engine.fees; leverage and liquidation: see engine.run.
The deprecated ``cooldown_bars`` / ``daily_momentum_limit`` / ``weekly_momentum_limit`` default,
when None, from ``engine/trading_defaults.json`` (24, 3, 3); 0 switches a tier off.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.periods import DAY_NS
from engine.fees import FEE_MODELS, check_tiers, check_venue, fee_table
from engine.nb.records import (
    K_CD_LONG_BARS,
    K_CD_LONG_LIMIT,
    K_CD_LONG_WINDOW,
    K_CD_SHORT_BARS,
    K_CD_SHORT_LIMIT,
    K_CD_SHORT_WINDOW,
    K_FILL_CLOSE,
    K_LEVERAGE,
    K_LOT,
    K_MAX_AMOUNT,
    K_MAX_HOLD,
    K_MAX_PER_DAY,
    K_MAX_POS,
    K_MAX_UNITS,
    K_MIN_AMOUNT,
    K_MIN_EQUITY,
    K_MMR,
    K_RISK,
    K_SHARE,
    K_SIZE,
    K_SIZING,
    K_SLIP,
    K_STOP_PCT,
    K_TP_PCT,
    K_TP_R,
    K_TRAIL_PCT,
    SIZING_AMOUNT,
    SIZING_FRACTION,
    SIZING_RISK,
    SIZING_UNITS,
    new_params,
)
from engine.strategy.form import Exits, Level

SIZING_MODES = {
    "risk": SIZING_RISK,
    "fraction": SIZING_FRACTION,
    "units": SIZING_UNITS,
    "amount": SIZING_AMOUNT,
}
DEFAULTS_PATH = Path(__file__).with_name("trading_defaults.json")
COOLDOWN_KEYS = ("short_loss_limit", "long_loss_limit", "short_window_bars", "long_window_bars")
CHOICES = {
    "fee_model": FEE_MODELS,
    "fill": ("next_open", "close"),
    "sizing": ("risk", "fraction", "units", "amount"),
    "volatility_mode": ("stddev", "atr"),
}


@cache
def trading_defaults() -> dict[str, int]:
    """Return the defaults of the deprecated cooldown keys."""
    return json.loads(DEFAULTS_PATH.read_text())


@dataclass(frozen=True)
class Execution:
    """Execution and risk settings; see engine.run for what each does."""

    fee_model: str = "fixed_bps"
    fee_bps: float = 0.0
    slippage_bps: float = 0.0
    fill: str = "next_open"
    sizing: str = "risk"
    size: float = 1.0
    lot_size: float = 0.0
    min_balance_threshold: float = 0.1
    min_trade_amount: float = 25.0
    max_open_positions: int = 5
    max_trades_per_day: int = 50
    max_risk_per_trade: float = 0.01
    max_units_per_trade: float = 100.0
    max_trade_amount: float = 10000.0
    volatility_window: int = 24
    target_volatility: float = 0.02
    volatility_mode: str = "stddev"
    enable_volatility_adjustment: bool = False
    atr_period: int = 14
    atr_multiplier: float = 2.0  # None is read as 0 (no default stop)
    max_hold_bars: int | None = None
    cooldown_config: dict | None = None
    cooldown_bars: int | None = None
    daily_momentum_limit: int | None = None
    weekly_momentum_limit: int | None = None
    allow_short: bool = False
    fee_tiers: list[dict] | None = None
    venue: str | None = None
    leverage: float = 1.0
    maintenance_margin_rate: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Execution:
        """Build settings from a dict, rejecting unknown fields and bad values by name."""
        names = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in names:
                raise ValueError(f"{key}: unknown execution setting")
        ex = cls(**d)
        ex.validate()
        return ex

    def validate(self) -> None:
        """Raise ValueError naming the first field with a bad value."""
        for name, ok in _checks(self):
            if not ok:
                raise ValueError(f"{name}: invalid value {getattr(self, name)!r}")
        if self.cooldown_config is not None:
            _check_cooldown_config(self.cooldown_config)
        if self.fee_tiers is not None:
            check_tiers(self.fee_tiers)
        if self.fee_model == "match_exchange" or self.venue is not None:
            check_venue(self.venue)

    def fees(self) -> np.ndarray:
        """Return the fee tier table of the fee model (see engine.fees)."""
        return fee_table(self.fee_model, self.fee_bps, self.fee_tiers, self.venue)

    def maintenance_rate(self) -> float:
        """Return the maintenance margin rate, NaN when positions are never liquidated."""
        if self.maintenance_margin_rate is not None:
            return float(self.maintenance_margin_rate)
        return 0.5 / self.leverage if self.leverage > 1 else math.nan

    def deprecated_cooldown(self) -> tuple[int, int, int]:
        """Return (cooldown_bars, daily_momentum_limit, weekly_momentum_limit), filling defaults."""
        d = trading_defaults()
        keys = ("cooldown_bars", "daily_momentum_limit", "weekly_momentum_limit")
        return tuple(d[k] if getattr(self, k) is None else getattr(self, k) for k in keys)


def _num(x: Any) -> bool:
    """Return whether x is a finite real number (not a bool)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _int(x: Any, lo: int, allow_none: bool = False) -> bool:
    """Return whether x is an int >= lo (or None when allowed)."""
    if x is None:
        return allow_none
    return isinstance(x, int) and not isinstance(x, bool) and x >= lo


def _checks(e: Execution) -> list[tuple[str, bool]]:
    """Return (field, ok) for every field."""
    pos = [
        ("size", e.size), ("max_units_per_trade", e.max_units_per_trade),
        ("max_trade_amount", e.max_trade_amount), ("target_volatility", e.target_volatility),
    ]  # fmt: skip
    non_neg = [
        ("fee_bps", e.fee_bps), ("slippage_bps", e.slippage_bps), ("lot_size", e.lot_size),
        ("min_balance_threshold", e.min_balance_threshold),
        ("min_trade_amount", e.min_trade_amount),
    ]  # fmt: skip
    out = [(k, getattr(e, k) in v) for k, v in CHOICES.items()]
    out += [(k, _num(v) and v > 0) for k, v in pos]
    out += [(k, _num(v) and v >= 0) for k, v in non_neg]
    out += [
        ("fee_bps", e.fee_bps < 10_000),
        ("slippage_bps", e.slippage_bps < 10_000),
        (
            "atr_multiplier",
            e.atr_multiplier is None or (_num(e.atr_multiplier) and e.atr_multiplier >= 0),
        ),
        ("max_risk_per_trade", _num(e.max_risk_per_trade) and 0 < e.max_risk_per_trade <= 1),
        ("max_open_positions", _int(e.max_open_positions, 1)),
        ("max_trades_per_day", _int(e.max_trades_per_day, 1)),
        ("volatility_window", _int(e.volatility_window, 2)),
        ("atr_period", _int(e.atr_period, 1)),
        ("max_hold_bars", _int(e.max_hold_bars, 1, allow_none=True)),
        ("cooldown_bars", _int(e.cooldown_bars, 0, allow_none=True)),
        ("daily_momentum_limit", _int(e.daily_momentum_limit, 0, allow_none=True)),
        ("weekly_momentum_limit", _int(e.weekly_momentum_limit, 0, allow_none=True)),
        ("enable_volatility_adjustment", isinstance(e.enable_volatility_adjustment, bool)),
        ("allow_short", isinstance(e.allow_short, bool)),
        ("leverage", _num(e.leverage) and 1 <= e.leverage <= 125),
        ("maintenance_margin_rate", _mmr_ok(e)),
    ]
    return out


def _mmr_ok(e: Execution) -> bool:
    """Return whether the maintenance margin rate is unset or in [0, 1 / leverage)."""
    m = e.maintenance_margin_rate
    if m is None:
        return True
    lev = e.leverage if _num(e.leverage) and e.leverage >= 1 else 1.0
    return _num(m) and 0 <= m < 1 / lev


def _check_cooldown_config(config: Any) -> None:
    """Raise ValueError unless config maps interval names to the four integer cooldown keys."""
    if not isinstance(config, dict):
        raise ValueError("cooldown_config: must be an object keyed by interval")
    for interval, tier in config.items():
        path = f"cooldown_config.{interval}"
        if not isinstance(tier, dict):
            raise ValueError(f"{path}: must be an object")
        for key in tier:
            if key not in COOLDOWN_KEYS:
                raise ValueError(f"{path}.{key}: unknown cooldown setting")
        for key in COOLDOWN_KEYS:
            if not _int(tier.get(key), 0):
                raise ValueError(f"{path}.{key}: must be an integer >= 0")


def cooldown_tiers(
    ex: Execution, interval: str | None, interval_ns: int | None
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Return (loss limit, window bars, blocked bars) for the short and the long tier."""
    tier = (ex.cooldown_config or {}).get(interval) if interval else None
    if tier is not None:
        short_w, long_w = tier["short_window_bars"], tier["long_window_bars"]
        return (tier["short_loss_limit"], short_w, short_w), (
            tier["long_loss_limit"],
            long_w,
            long_w,
        )
    bars, daily, weekly = ex.deprecated_cooldown()
    per_day = max(1, round(DAY_NS / interval_ns)) if interval_ns else 1
    return (daily, per_day, bars), (weekly, 7 * per_day, bars)


def kernel_params(
    ex: Execution,
    exits: Exits,
    capital: float,
    interval: str | None,
    interval_ns: int | None,
    symbols: int = 1,
) -> np.ndarray:
    """Return the float64 params array the simulation kernels read."""
    p = new_params()
    p[K_LEVERAGE] = float(ex.leverage)
    p[K_MMR] = ex.maintenance_rate()
    p[K_SHARE] = 1.0 / symbols
    p[K_MAX_POS] = ex.max_open_positions
    p[K_SLIP] = ex.slippage_bps / 1e4
    p[K_FILL_CLOSE] = 1.0 if ex.fill == "close" else 0.0
    p[K_SIZING] = SIZING_MODES[ex.sizing]
    p[K_SIZE] = ex.size
    p[K_LOT] = ex.lot_size
    p[K_MIN_EQUITY] = ex.min_balance_threshold * capital
    p[K_MIN_AMOUNT] = ex.min_trade_amount
    p[K_MAX_PER_DAY] = ex.max_trades_per_day
    p[K_RISK] = ex.max_risk_per_trade
    p[K_MAX_UNITS] = ex.max_units_per_trade
    p[K_MAX_AMOUNT] = ex.max_trade_amount
    holds = [h for h in (ex.max_hold_bars, exits.max_hold_bars) if h is not None]
    p[K_MAX_HOLD] = min(holds) if holds else 0.0
    p[K_STOP_PCT] = _pct(exits.stop_loss)
    p[K_TP_PCT] = _pct(exits.take_profit)
    p[K_TP_R] = (
        exits.take_profit.value if exits.take_profit and exits.take_profit.kind == "r" else np.nan
    )
    p[K_TRAIL_PCT] = _pct(exits.trailing_stop)
    short, long_ = cooldown_tiers(ex, interval, interval_ns)
    p[K_CD_SHORT_LIMIT], p[K_CD_SHORT_WINDOW], p[K_CD_SHORT_BARS] = short
    p[K_CD_LONG_LIMIT], p[K_CD_LONG_WINDOW], p[K_CD_LONG_BARS] = long_
    return p


def _pct(level: Level | None) -> float:
    """Return a percent level's fraction, NaN for none or another kind."""
    return level.value if level is not None and level.kind == "percent" else np.nan
