"""Request bodies of the canonical v2 API."""

from datetime import datetime
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from protocol.enums import RESOLUTIONS


class Strict(BaseModel):
    """Base for request models: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalSpec(BaseModel):
    """One signal of a strategy, in seed 001's format."""

    model_config = ConfigDict(extra="allow")

    name: str
    timeframe: str | None = None
    signal_type: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class StrategySpec(BaseModel):
    """A strategy in seed 001's format: named entry and exit signals."""

    model_config = ConfigDict(extra="allow")

    name: str = "strategy"
    asset: str | None = None
    entry: list[SignalSpec]
    exit: list[SignalSpec] = Field(default_factory=list)


class ExecutionSpec(Strict):
    """Execution settings that travel beside the strategy (seed 001 names where it has them)."""

    fee_bps: float = Field(0.0, ge=0, le=1000)
    slippage_bps: float = Field(0.0, ge=0, le=1000)
    max_hold_bars: int | None = Field(None, ge=1)
    atr_period: int = Field(14, ge=1, le=1000)
    atr_multiplier: float | None = Field(None, gt=0, le=100)
    lot_size: float = Field(0.0, ge=0)


class BacktestCreate(Strict):
    """`POST /api/v2/backtests`: one run over 1-100 symbols."""

    symbols: list[str] = Field(min_length=1, max_length=100)
    start: datetime
    end: datetime
    resolution: str = "1h"
    capital: float = Field(100_000.0, gt=0, le=1e12)
    currency: str = Field("USD", pattern=r"^[A-Z]{3,5}$")
    timezone: str = Field("UTC", max_length=64)
    strategy: StrategySpec | None = None
    strategy_json: str | None = None
    strategy_id: str | None = None
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    name: str | None = Field(None, max_length=200)

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        for s in v:
            if not s or len(s) > 32 or not s.strip() == s:
                raise ValueError(f"invalid symbol {s!r}: 1-32 characters, no spaces")
        if len({s.upper() for s in v}) != len(v):
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
        given = [k for k in ("strategy", "strategy_json", "strategy_id") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "exactly one of strategy, strategy_json or strategy_id is required"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self
