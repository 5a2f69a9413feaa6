"""Saved strategies on the wire: the create/update body and the stored object's shape.

A body carries the strategy one of three ways: `strategy` (an object), `strategy_json` (the
same object as a string), or the strategy object's own fields at the top level (seed 001's
`{"name", "asset", "entry", "exit"}` posted as it is). Beside it, optional defaults that a run
using the strategy inherits unless the run's request sets them: `asset` and
`execution_config` (seed 001's execution setting names).
"""

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocol.requests import ExecutionSpec

# Keys of a strategy object that may appear at the top level of a create body.
STRATEGY_KEYS = frozenset(
    {"entry", "exit", "side", "short_entry", "short_exit", "stop_loss", "take_profit",
     "trailing_stop", "max_hold_bars", "type", "variables", "conditions", "threshold"}
)  # fmt: skip


class StrategyBody(BaseModel):
    """`POST /api/v2/strategies` (and v1), `PUT` to replace, `PATCH` with only what changes."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # JSON types only

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    asset: str | None = Field(None, min_length=1, max_length=32)
    strategy: dict[str, Any] | None = None
    strategy_json: str | None = Field(None, max_length=200_000)
    execution_config: ExecutionSpec | None = None
    job: dict[str, Any] | None = Field(
        None, description="a seed 004 job config (template_id, params, symbols, timeframe, …),"
        " all fields optional: the base a job by strategy_id overrides",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in ("strategy", "strategy_json", "job") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(
                f"give one of strategy, strategy_json or job, not {' and '.join(given)}"
            )
        return self

    @classmethod
    def from_wire(cls, raw: Any) -> "StrategyBody":
        """Validate a body, folding a bare strategy object into `strategy` and a bare seed 004
        job config (it has `template_id`) into `job`."""
        if isinstance(raw, dict) and "template_id" in raw:
            outer = {k: raw[k] for k in ("name", "description") if k in raw}
            raw = {**outer, "job": {k: v for k, v in raw.items() if k not in outer}}
        elif isinstance(raw, dict) and STRATEGY_KEYS & raw.keys():
            outer = {k: raw[k] for k in ("description", "execution_config") if k in raw}
            inner = {k: v for k, v in raw.items() if k not in outer}
            outer.update(
                strategy=inner,
                **{k: inner[k] for k in ("name", "asset") if isinstance(inner.get(k), str)},
            )
            raw = outer
        return cls.model_validate(raw)

    def execution_defaults(self) -> dict[str, Any] | None:
        """The execution settings the body sets (not the model's defaults), or None."""
        if self.execution_config is None:
            return None
        return self.execution_config.model_dump(exclude_unset=True, exclude_none=True)


class SavedStrategy(BaseModel):
    """A stored strategy as every surface returns it."""

    strategy_id: str
    id: str
    name: str
    description: str | None
    asset: str | None
    dialect: str = Field(description="'v2' or 'seed001': the rules its definition was checked by")
    strategy: dict[str, Any]
    execution_config: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted: bool
    deleted_at: datetime | None
