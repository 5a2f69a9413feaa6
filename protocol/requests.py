"""Request bodies of the canonical v2 API."""

from datetime import datetime
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from protocol.enums import RESOLUTIONS


class Strict(BaseModel):
    """Base for request models: unknown fields are errors, not silently dropped, and a value
    must have its field's JSON type (`true` is not a number, `"5"` not an integer, `1` not a
    boolean), as the OpenAPI document says."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CooldownTier(Strict):
    """Seed 001's two loss tiers for one interval."""

    short_loss_limit: int = Field(ge=1, le=10_000)
    long_loss_limit: int = Field(ge=1, le=10_000)
    short_window_bars: int = Field(ge=1, le=10_000_000)
    long_window_bars: int = Field(ge=1, le=10_000_000)


class FeeTier(Strict):
    """One row of a tiered maker/taker fee table."""

    min_volume_30d: float = Field(ge=0, le=1e15)
    maker_bps: float = Field(ge=0, lt=10_000)
    taker_bps: float = Field(ge=0, lt=10_000)


class ExecutionSpec(Strict):
    """Execution settings beside the strategy: seed 001's names and defaults, plus fills and fees."""

    fee_model: Literal["none", "fixed_bps", "tiered_maker_taker", "match_exchange"] = "fixed_bps"
    fee_bps: float = Field(0.0, ge=0, le=1000)
    slippage_bps: float = Field(0.0, ge=0, le=1000)
    fill: Literal["next_open", "close"] = "next_open"
    sizing: Literal["risk", "fraction", "units", "amount"] = "risk"
    size: float = Field(1.0, gt=0, le=1e12)
    lot_size: float = Field(0.0, ge=0, le=1e6)
    allow_short: bool = False
    min_balance_threshold: float = Field(0.1, ge=0, le=1)
    min_trade_amount: float = Field(25.0, ge=0, le=1e12)
    max_open_positions: int = Field(5, ge=1, le=1000)
    max_trades_per_day: int = Field(50, ge=1, le=100_000)
    max_risk_per_trade: float = Field(0.01, gt=0, le=1)
    max_units_per_trade: float = Field(100.0, gt=0, le=1e15)
    max_trade_amount: float = Field(10_000.0, gt=0, le=1e15)
    volatility_window: int = Field(24, ge=2, le=100_000)
    target_volatility: float = Field(0.02, gt=0, le=10)
    volatility_mode: Literal["stddev", "atr"] = "stddev"
    enable_volatility_adjustment: bool = False
    atr_period: int = Field(14, ge=1, le=10_000)
    atr_multiplier: float = Field(2.0, ge=0, le=100)
    max_hold_bars: int | None = Field(None, ge=1, le=10_000_000)
    cooldown_config: dict[str, CooldownTier] | None = None
    cooldown_bars: int | None = Field(None, ge=0, le=10_000_000, description="deprecated")
    daily_momentum_limit: int | None = Field(None, ge=1, le=10_000, description="deprecated")
    weekly_momentum_limit: int | None = Field(None, ge=1, le=10_000, description="deprecated")
    fee_tiers: list[FeeTier] | None = Field(None, min_length=1, max_length=50)
    venue: str | None = Field(None, min_length=1, max_length=64)
    leverage: float = Field(1.0, ge=1, le=125)
    maintenance_margin_rate: float | None = Field(None, ge=0, lt=1)

    @field_validator("cooldown_config")
    @classmethod
    def _intervals(cls, v: dict[str, CooldownTier] | None) -> dict[str, CooldownTier] | None:
        for key in v or {}:
            if key not in RESOLUTIONS:
                raise ValueError(
                    f"cooldown_config key {key!r} is not an interval ({', '.join(RESOLUTIONS)})"
                )
        return v


def _date_time(v: Any) -> Any:
    # ISO 8601 text only (a bare date is midnight); not a number of seconds, as lax parsing takes.
    if not isinstance(v, str | datetime):
        raise ValueError("must be an ISO 8601 date or date-time string")
    return v


DateTime = Annotated[datetime, BeforeValidator(_date_time), Field(strict=False)]


def _grid_value(v: Any) -> Any:
    # Plain values only: a grid varies numbers and names, not whole sub-objects, so variant
    # rows stay small and checking 10,000 variants stays cheap.
    if v is None or isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= 64):
        return v
    raise ValueError("grid values are numbers, booleans, null or strings of at most 64 characters")


GridValue = Annotated[Any, AfterValidator(_grid_value)]


class SweepSpec(Strict):
    """A parameter grid over the strategy: JSON paths to lists of values, ranked by a metric."""

    grid: dict[str, list[GridValue]] = Field(min_length=1, max_length=20)
    rank_by: str = "sharpe_ratio"


class BacktestCreate(Strict):
    """`POST /api/v2/backtests`: one run over 1-100 symbols (default: a saved strategy's asset)."""

    symbols: list[str] | None = Field(None, min_length=1, max_length=100)
    start: DateTime
    end: DateTime
    resolution: str = Field("1h", json_schema_extra={"enum": list(RESOLUTIONS)})
    capital: float = Field(100_000.0, gt=0, le=1e12)
    currency: str = Field("USD", pattern=r"^[A-Z]{3,5}$")
    timezone: str = Field("UTC", max_length=64)
    periods_per_year: float | None = Field(
        None, gt=0, le=1e9, description="bars per year for annualising (default: from the bars)"
    )
    risk_free_rate: float = Field(
        0.0, gt=-1, le=1, description="annual risk-free rate for Sharpe and Sortino (0.04 = 4%)"
    )
    benchmark: str | None = Field(
        None, min_length=1, max_length=32,
        description="a symbol for alpha and beta (default: buy-and-hold of the run's symbols)",
    )  # fmt: skip
    strategy: dict[str, Any] | None = None
    strategy_json: str | None = None
    strategy_id: str | None = None
    template: str | None = Field(None, max_length=64)
    template_params: dict[str, Any] | None = None
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    sweep: SweepSpec | None = None
    name: str | None = Field(None, max_length=200)

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str] | None) -> list[str] | None:
        for s in v or ():
            if not s or len(s) > 32 or not s.strip() == s:
                raise ValueError(f"invalid symbol {s!r}: 1-32 characters, no spaces")
        if v is not None and len({s.upper() for s in v}) != len(v):
            raise ValueError("symbols must be unique")
        return v

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: str) -> str:
        if v not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}")
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _one_strategy(self) -> Self:
        kinds = ("strategy", "strategy_json", "strategy_id", "template")
        given = [k for k in kinds if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "exactly one of strategy, strategy_json, strategy_id or template is required"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.template_params is not None and self.template is None:
            raise ValueError("template_params needs a template")
        if self.template is not None and self.sweep is not None:
            raise ValueError("a sweep varies a strategy; templates cannot be swept yet")
        return self
