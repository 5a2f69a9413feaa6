"""Typed template params: specs with defaults and bounds, validation, and their JSON Schema.

A number param accepts a JSON number or a decimal string (seed 004 quotes prices: ``"72000"``);
an integer param accepts a JSON integer only. Every fault raises TemplateError whose ``path``
names the param (``params.grid_levels``) and whose ``code`` is seed 004's ``INVALID_PARAMETER``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import PathError

Kind = Literal["integer", "number", "string", "boolean"]
DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_DECIMAL = re.compile(DECIMAL)
REQUIRED = object()  # the default of a param without one: the caller must give it


class TemplateError(PathError):
    """A template fault, located by the path of the offending value (``params.grid_levels``)."""

    code = "INVALID_PARAMETER"


@dataclass(frozen=True)
class TParam:
    """One template param: its kind, default (REQUIRED or None for optional), bounds, choices."""

    kind: Kind
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """Return whether the caller must give this param."""
        return self.default is REQUIRED

    def schema(self) -> dict:
        """Return this param's JSON Schema."""
        out: dict[str, Any] = {"description": self.description}
        if self.kind == "number":
            num: dict[str, Any] = {"type": "number", **self._bounds()}
            out["anyOf"] = [num, {"type": "string", "pattern": DECIMAL}]
        else:
            out["type"] = self.kind
            out.update(self._bounds())
        if self.choices:
            out["enum"] = list(self.choices)
        if self.default is None:
            out = {"description": self.description, "anyOf": [_strip(out), {"type": "null"}]}
        if not self.required:
            out["default"] = self.default
        return out

    def _bounds(self) -> dict[str, float]:
        """Return the JSON Schema bounds keywords."""
        out: dict[str, float] = {}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


def _strip(schema: dict) -> dict:
    """Return a schema without its description."""
    return {k: v for k, v in schema.items() if k != "description"}


def object_schema(params: dict[str, TParam]) -> dict:
    """Return the JSON Schema of a params object."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {k: p.schema() for k, p in params.items()},
        "required": [k for k, p in params.items() if p.required],
    }


def validate(params: dict[str, TParam], raw: Any, template: str) -> dict[str, Any]:
    """Return the params with defaults filled in and decimal strings parsed, or raise."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TemplateError("params", "must be an object")
    for key in raw:
        if key not in params:
            raise TemplateError(f"params.{key}", f"unknown parameter of {template}")
    out: dict[str, Any] = {}
    for key, spec in params.items():
        if key not in raw or raw[key] is None:
            if spec.required:
                raise TemplateError(f"params.{key}", "is required")
            out[key] = spec.default
            continue
        out[key] = _value(spec, raw[key], f"params.{key}")
    return out


def _value(spec: TParam, value: Any, path: str) -> Any:
    """Return one checked value."""
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            raise TemplateError(path, "must be true or false")
        return value
    if spec.kind == "string":
        if value not in spec.choices:
            raise TemplateError(path, f"must be one of {', '.join(spec.choices)}")
        return value
    number = _integer(value, path) if spec.kind == "integer" else _number(value, path)
    _check_bounds(spec, number, path)
    return number


def _integer(value: Any, path: str) -> int:
    """Return value as an int, or raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateError(path, "must be an integer")
    return value


def _number(value: Any, path: str) -> float:
    """Return a JSON number or a decimal string as a finite float, or raise."""
    if isinstance(value, str) and _DECIMAL.match(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TemplateError(path, "must be a number or a decimal string")
    return float(value)


def _check_bounds(spec: TParam, x: float, path: str) -> None:
    """Raise unless x lies within the spec's bounds."""
    lo, hi = spec.minimum, spec.maximum
    low_ok = lo is None or (x > lo if spec.exclusive_minimum else x >= lo)
    if low_ok and (hi is None or x <= hi):
        return
    lower = (
        "" if lo is None else (f"above {lo:g}" if spec.exclusive_minimum else f"at least {lo:g}")
    )
    upper = "" if hi is None else f"at most {hi:g}"
    raise TemplateError(path, "must be " + " and ".join(s for s in (lower, upper) if s))
