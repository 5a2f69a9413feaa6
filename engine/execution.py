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
from engine.fees import FEE_MODELS, check_tiers, check_venue, fee_table, venues
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
from engine.params import MAX_BARS, REQUIRED, Kind, Param, ParamError
from engine.strategy.form import Exits, Level

SIZING_MODES = {
    "risk": SIZING_RISK,
    "fraction": SIZING_FRACTION,
    "units": SIZING_UNITS,
    "amount": SIZING_AMOUNT,
}
DEFAULTS_PATH = Path(__file__).with_name("trading_defaults.json")
COOLDOWN_TIER = {
    "short_loss_limit": Param("integer", REQUIRED, "losses within short_window_bars that pause "
                              "entries (0 = tier off)", 0, 10_000),
    "long_loss_limit": Param("integer", REQUIRED, "losses within long_window_bars that pause "
                             "entries (0 = tier off)", 0, 10_000),
    "short_window_bars": Param("integer", REQUIRED, "rolling lookback and pause of the short "
                               "tier (0 = tier off)", 0, MAX_BARS, unit="bars"),
    "long_window_bars": Param("integer", REQUIRED, "rolling lookback and pause of the long "
                              "tier (0 = tier off)", 0, MAX_BARS, unit="bars"),
}  # fmt: skip
FEE_TIER = {
    "min_volume_30d": Param("number", REQUIRED, "30-day traded notional where the tier starts",
                            0, 1e15),
    "maker_bps": Param("number", REQUIRED, "maker fee", 0, 10_000, exclusive_maximum=True,
                       unit="bps"),
    "taker_bps": Param("number", REQUIRED, "taker fee", 0, 10_000, exclusive_maximum=True,
                       unit="bps"),
}  # fmt: skip

VENUE_NAMES = ", ".join(f"`{name}`" for name in sorted(venues()))


def setting(kind: Kind, default: Any, description: str, *bounds: float | None, **more: Any) -> Any:
    """Declare one execution setting: a dataclass field whose metadata holds its Param."""
    param = Param(kind, default, description, *bounds, **more)  # type: ignore[arg-type]
    return dataclasses.field(default=default, metadata={"param": param})


@cache
def trading_defaults() -> dict[str, int]:
    """Return the defaults of the deprecated cooldown keys."""
    return json.loads(DEFAULTS_PATH.read_text())


@dataclass(frozen=True)
class Execution:
    """Execution and risk settings; see engine.run for what each does.

    Each field is declared once, with its bounds (EXECUTION_PARAMS collects them); the wire's
    models and the README's table are generated from these declarations.
    """

    fee_model: str = setting(
        "string",
        "fixed_bps",
        "how fills pay fees (the rules under Fees)",
        choices=FEE_MODELS,
    )
    fee_bps: float = setting(
        "number",
        0.0,
        "with `fixed_bps`: fee per fill in basis points of its notional, paid "
        "from cash, reported as `commission`",
        0,
        10_000,
        exclusive_maximum=True,
        unit="bps",
    )
    slippage_bps: float = setting(
        "number",
        0.0,
        "every fill price moves this much against the trader, stop and target fills included",
        0,
        10_000,
        exclusive_maximum=True,
        unit="bps",
    )
    fill: str = setting(
        "string",
        "next_open",
        "`next_open`: an order decided on a bar's close fills at the "
        "next bar's open; `close`: at that close",
        choices=("next_open", "close"),
    )
    sizing: str = setting(
        "string",
        "risk",
        "`risk` (seed 001): units = `max_risk_per_trade` x equity / stop "
        "distance; `fraction`: `size` x equity / (price x (1 + fee)), so 1.0 is all in "
        "(backtesting.py's rule); `units`: `size` units; `amount`: `size` / price",
        choices=("risk", "fraction", "units", "amount"),
    )
    size: float = setting(
        "number",
        1.0,
        "the fraction, units or amount of the sizing mode",
        0,
        1e12,
        exclusive_minimum=True,
    )
    lot_size: float = setting(
        "number",
        0.0,
        "units are floored to a multiple (1 = whole shares, 1e-8 crypto; 0 = fractional)",
        0,
        1e6,
        unit="units",
    )
    min_balance_threshold: float = setting(
        "number",
        0.1,
        "no new entry while equity is below this fraction of the initial balance",
        0,
        1,
    )
    min_trade_amount: float = setting(
        "number",
        25.0,
        "an entry whose notional would be smaller is skipped",
        0,
        1e12,
        unit="quote currency",
    )
    max_open_positions: int = setting(
        "integer",
        5,
        "concurrent positions; each repeated entry signal adds one (pyramiding), "
        "each with its own stops",
        1,
        1000,
    )
    # No upper bound where a larger value costs nothing (counts and caps compared per entry);
    # window lengths and max_open_positions (which sizes the position table) keep one.
    max_trades_per_day: int = setting("integer", 50, "entries filled per UTC day", 1)
    max_risk_per_trade: float = setting(
        "number",
        0.01,
        "fraction of equity risked per trade in `risk` sizing",
        0,
        1,
        exclusive_minimum=True,
    )
    max_units_per_trade: float = setting(
        "number",
        100.0,
        "cap on units per entry",
        0,
        None,
        exclusive_minimum=True,
        unit="units",
    )
    max_trade_amount: float = setting(
        "number",
        10000.0,
        "cap on notional per entry",
        0,
        None,
        exclusive_minimum=True,
        unit="quote currency",
    )
    volatility_window: int = setting(
        "integer",
        24,
        "bars of returns (or ATR window) for volatility adjustment",
        2,
        100_000,
        unit="bars",
    )
    target_volatility: float = setting(
        "number",
        0.02,
        "with adjustment on, units x min(1, target / realised volatility)",
        0,
        10,
        exclusive_minimum=True,
    )
    volatility_mode: str = setting(
        "string",
        "stddev",
        "realised volatility: `stddev` of close-to-close returns, or `atr` / close",
        choices=("stddev", "atr"),
    )
    enable_volatility_adjustment: bool = setting(
        "boolean", False, "switch the volatility adjustment on"
    )
    atr_period: int = setting(
        "integer", 14, "ATR (Wilder) window for stops and risk sizing", 1, 10_000, unit="bars"
    )
    atr_multiplier: float = setting(
        "number", 2.0, "seed 001's stop: entry - multiplier x ATR (0 = no default stop)", 0, 100
    )
    max_hold_bars: int | None = setting(
        "integer",
        None,
        "exit after this many bars held",
        1,
        MAX_BARS,
        nullable=True,
        unit="bars",
    )
    cooldown_config: dict | None = setting(  # noqa: RUF009 (None; the dict is metadata)
        "object",
        None,
        'per interval (`"1h": {...}`), two loss tiers: when '
        "`short_loss_limit` losing trades closed within the last `short_window_bars`, entries "
        "pause for `short_window_bars`; the long tier likewise",
        nullable=True,
        fields=COOLDOWN_TIER,
    )
    cooldown_bars: int | None = setting(
        "integer",
        None,
        "deprecated: used when `cooldown_config` has no entry for the run's "
        "interval; each tier pauses entries for this many bars (null = 24)",
        0,
        MAX_BARS,
        nullable=True,
        unit="bars",
    )
    daily_momentum_limit: int | None = setting(
        "integer",
        None,
        "deprecated: the short tier counts this many losses within a day's "
        "bars (null = 3, 0 = off)",
        0,
        10_000,
        nullable=True,
    )
    weekly_momentum_limit: int | None = setting(
        "integer",
        None,
        "deprecated: the long tier counts this many losses within a week's "
        "bars (null = 3, 0 = off)",
        0,
        10_000,
        nullable=True,
    )
    allow_short: bool = setting("boolean", False, "allow the strategy's short rules to trade")
    fee_tiers: list[dict] | None = setting(  # noqa: RUF009 (None; the dict is metadata)
        "array",
        None,
        'with `tiered_maker_taker`: `[{"min_volume_30d", "maker_bps", '
        '"taker_bps"}, ...]`, starting at 0 and ascending; null = the default table',
        1,
        50,
        nullable=True,
        fields=FEE_TIER,
    )
    venue: str | None = setting(
        "string",
        None,
        f"with `match_exchange`: a venue of `engine/venues.json` ({VENUE_NAMES}); unknown is "
        "refused naming `venue`",
        1,
        64,
        nullable=True,
    )
    leverage: float = setting(
        "number",
        1.0,
        "a position needs notional / leverage of margin; buying power = cash x "
        "leverage; no interest",
        1,
        125,
    )
    maintenance_margin_rate: float | None = setting(
        "number",
        None,
        "liquidation threshold as a fraction of a position's notional; null = "
        "0.5 / `leverage` when `leverage` > 1, no liquidation at 1; must be below 1 / "
        "`leverage`",
        0,
        1,
        exclusive_maximum=True,
        nullable=True,
    )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Execution:
        """Build settings from a dict, rejecting unknown fields and bad values by name."""
        for key in d:
            if key not in EXECUTION_PARAMS:
                raise ValueError(f"{key}: unknown execution setting")
        ex = cls(**d)
        ex.validate()
        return ex

    def validate(self) -> None:
        """Raise ValueError (a ParamError) naming the first field with a bad value."""
        for name, param in EXECUTION_PARAMS.items():
            param.check(getattr(self, name), name)
        m = self.maintenance_margin_rate
        if m is not None and not m < 1 / self.leverage:
            raise ParamError("maintenance_margin_rate", f"must be below 1 / leverage, got {m!r}")
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


EXECUTION_PARAMS: dict[str, Param] = {
    f.name: f.metadata["param"] for f in dataclasses.fields(Execution)
}


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
