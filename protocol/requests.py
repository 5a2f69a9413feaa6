"""Request bodies of the canonical v2 API."""

from datetime import datetime
from typing import Annotated, Any, Self
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
from protocol.params import declarations, model_of


class Strict(BaseModel):
    """Base for request models: unknown fields are errors, not silently dropped, and a value
    must have its field's JSON type (`true` is not a number, `"5"` not an integer, `1` not a
    boolean), as the OpenAPI document says."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _intervals(cls: type, v: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refuse a cooldown_config key that is not a run interval."""
    for key in v or {}:
        if key not in RESOLUTIONS:
            raise ValueError(
                f"cooldown_config key {key!r} is not an interval ({', '.join(RESOLUTIONS)})"
            )
    return v


# The execution settings are declared once, in the engine (engine.execution); their fields,
# defaults and bounds reach the wire through protocol/execution_settings.json (protocol.params).
_SETTINGS = declarations()
CooldownTier = model_of(
    "CooldownTier", _SETTINGS["cooldown_config"]["fields"], Strict,
    "Seed 001's two loss tiers for one interval (a limit or a window of 0 turns its tier off).",
)  # fmt: skip
FeeTier = model_of(
    "FeeTier", _SETTINGS["fee_tiers"]["fields"], Strict,
    "One row of a tiered maker/taker fee table.",
)  # fmt: skip
ExecutionSpec = model_of(
    "ExecutionSpec", _SETTINGS, Strict,
    "Execution settings beside the strategy: seed 001's names and defaults, plus fills and fees.",
    nested={"cooldown_config": dict[str, CooldownTier], "fee_tiers": list[FeeTier]},
    validators={"_intervals": field_validator("cooldown_config")(classmethod(_intervals))},
)  # fmt: skip


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
