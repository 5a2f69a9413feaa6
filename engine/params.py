"""Declared parameters: one Param per setting, from which checks, JSON Schemas and docs derive.

A Param says what a value may be (its kind, bounds, choices, whether null is allowed), its
default, unit and a one-line description. Execution settings (engine.execution), indicator and
signal params (engine.strategy) and template params (engine.templates) are all declared this
way. ``check`` validates a value and raises ParamError naming its path; ``schema`` returns its
JSON Schema; ``to_json`` carries it as data: ``protocol/execution_settings.json`` is generated
from the execution declarations (``scripts/gen_params.py``), so the wire checks the same bounds
without importing the engine.

    >>> Param("number", 0.0, "fee per fill", 0, 10_000, exclusive_maximum=True).check(5, "fee_bps")
    5.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.errors import PathError

__all__ = [
    "MAX_BARS", "REQUIRED", "Kind", "Param", "ParamError", "check_all", "number_text", "schema_of",
]  # fmt: skip

Kind = Literal["integer", "number", "string", "boolean", "object", "array"]
TYPES: dict[str, type] = {
    "integer": int, "number": float, "string": str, "boolean": bool, "object": dict, "array": list,
}  # fmt: skip
MAX_BARS = 10_000_000  # a bar count (a hold, a cooldown window) above any stored series
DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"  # a decimal string, as seed 004 quotes prices: "72000.5"
_DECIMAL = re.compile(DECIMAL)


class _Required:
    """The default of a param without one: the caller must give it."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class ParamError(PathError):
    """A bad value, located by its path (``fee_bps``, ``fee_tiers[0].maker_bps``)."""


@dataclass(frozen=True)
class Param:
    """One declared value. For a string or an array, minimum and maximum bound its length.

    An ``object`` param maps any key to an object of ``fields``; an ``array`` param lists
    objects of ``fields``. A number param with ``decimal_strings`` also takes a decimal string.
    """

    kind: Kind
    default: Any = REQUIRED
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False
    unit: str = ""
    fields: dict[str, Param] = field(default_factory=dict, hash=False)
    decimal_strings: bool = False

    @property
    def type(self) -> type:
        """Return the Python type of a checked value (int, float, str, bool, dict, list)."""
        return TYPES[self.kind]

    @property
    def required(self) -> bool:
        """Return whether the caller must give this param."""
        return self.default is REQUIRED

    def check(self, value: Any, path: str) -> Any:
        """Return value (an int or float for a number kind), or raise ParamError naming path."""
        if value is None and self.nullable:
            return None
        if self.kind in ("integer", "number"):
            return self._number(value, path)
        if self.kind == "boolean":
            if not isinstance(value, bool):
                raise ParamError(path, "must be true or false")
            return value
        if self.kind == "string":
            return self._string(value, path)
        if self.kind == "object":
            return self._object(value, path)
        return self._array(value, path)

    def in_bounds(self, x: float) -> bool:
        """Return whether x (a number, or a length) lies within the bounds."""
        lo, hi = self.minimum, self.maximum
        low_ok = lo is None or (x > lo if self.exclusive_minimum else x >= lo)
        return low_ok and (hi is None or (x < hi if self.exclusive_maximum else x <= hi))

    def bounds_text(self) -> str:
        """Return the bounds in words: "at least 0 and below 10000"."""
        lo, hi = self.minimum, self.maximum
        lower = (
            ""
            if lo is None
            else (f"above {lo:g}" if self.exclusive_minimum else f"at least {lo:g}")
        )
        upper = (
            "" if hi is None else (f"below {hi:g}" if self.exclusive_maximum else f"at most {hi:g}")
        )
        return " and ".join(s for s in (lower, upper) if s)

    def range_text(self) -> str:
        """Return the accepted values for a table: "0 ≤ x < 10000", "`a`, `b`", "true / false"."""
        if self.choices:
            return ", ".join(f"`{c}`" for c in self.choices)
        if self.kind == "boolean":
            return "true / false"
        if self.kind == "object" or (self.minimum is None and self.maximum is None):
            return ""
        x = {"string": "length", "array": "items"}.get(self.kind, "x")
        lo, hi = self.minimum, self.maximum
        low = "" if lo is None else f"{number_text(lo)} {'<' if self.exclusive_minimum else '≤'} "
        high = "" if hi is None else f" {'<' if self.exclusive_maximum else '≤'} {number_text(hi)}"
        return ("integer " if self.kind == "integer" else "") + f"{low}{x}{high}"

    def schema(self) -> dict[str, Any]:
        """Return this param's JSON Schema."""
        out: dict[str, Any] = {"type": self.kind}
        if self.choices:
            out = {"enum": list(self.choices)}
        keys = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems")}
        lo_key, hi_key = keys.get(self.kind, ("minimum", "maximum"))
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_minimum else lo_key] = self.minimum
        if self.maximum is not None:
            out["exclusiveMaximum" if self.exclusive_maximum else hi_key] = self.maximum
        if self.decimal_strings:
            out = {"anyOf": [out, {"type": "string", "pattern": DECIMAL}]}
        if self.fields and self.kind == "object":
            out["additionalProperties"] = object_schema(self.fields)
        elif self.fields:
            out["items"] = object_schema(self.fields)
        if self.nullable:
            out = {"anyOf": [out, {"type": "null"}]}
        if self.description:
            out["description"] = self.description
        if not self.required:
            out["default"] = self.default
        return out

    def to_json(self) -> dict[str, Any]:
        """Return the declaration as JSON-ready data (only what differs from the defaults)."""
        out: dict[str, Any] = {"kind": self.kind}
        if not self.required:
            out["default"] = self.default
        for key in ("description", "minimum", "maximum", "exclusive_minimum",
                    "exclusive_maximum", "nullable", "unit", "decimal_strings"):  # fmt: skip
            value = getattr(self, key)
            if value is not None and value is not False and value != "":
                out[key] = value
        if self.choices:
            out["choices"] = list(self.choices)
        if self.fields:
            out["fields"] = {k: p.to_json() for k, p in self.fields.items()}
        return out

    def _number(self, value: Any, path: str) -> int | float:
        """Return a checked integer or finite number."""
        if self.kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ParamError(path, "must be an integer")
        if self.decimal_strings and isinstance(value, str) and _DECIMAL.match(value.strip()):
            value = float(value)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            what = "a number or a decimal string" if self.decimal_strings else "a number"
            raise ParamError(path, f"must be {what}")
        if not self.in_bounds(value):
            raise ParamError(path, f"must be {self.bounds_text()}, got {value!r}")
        return int(value) if self.kind == "integer" else float(value)

    def _string(self, value: Any, path: str) -> str:
        """Return a checked string."""
        if self.choices and value not in self.choices:
            raise ParamError(path, f"must be one of {', '.join(self.choices)}")
        if not isinstance(value, str):
            raise ParamError(path, "must be a string")
        if not self.in_bounds(len(value)):
            raise ParamError(path, f"length must be {self.bounds_text()}")
        return value

    def _object(self, value: Any, path: str) -> dict:
        """Return a checked map of key to an object of this param's fields."""
        if not isinstance(value, dict):
            raise ParamError(path, "must be an object")
        return {k: check_all(self.fields, v, f"{path}.{k}") for k, v in value.items()}

    def _array(self, value: Any, path: str) -> list:
        """Return a checked list of objects of this param's fields."""
        if not isinstance(value, list | tuple):
            raise ParamError(path, "must be a list")
        if not self.in_bounds(len(value)):
            raise ParamError(path, f"must have {self.bounds_text()} items")
        return [check_all(self.fields, v, f"{path}[{i}]") for i, v in enumerate(value)]


def number_text(x: float) -> str:
    """Return a bound as people write it: 10000, 0.99, 1e12 (a power of ten from a million)."""
    if float(x).is_integer():
        n = int(x)
        digits = str(abs(n))
        if abs(n) >= 10**6 and digits.rstrip("0") == "1":
            return f"{'-' if n < 0 else ''}1e{len(digits) - 1}"
        return str(n)
    return f"{x:g}"


def check_all(params: dict[str, Param], raw: Any, path: str = "") -> dict[str, Any]:
    """Return an object's checked values with defaults filled in; ParamError on the first fault.

    Unknown keys and missing required ones are faults; path prefixes each key (``a.b``).
    """
    if not isinstance(raw, dict):
        raise ParamError(path or "value", "must be an object")
    prefix = f"{path}." if path else ""
    for key in raw:
        if key not in params:
            raise ParamError(f"{prefix}{key}", f"unknown key (known: {', '.join(params)})")
    out: dict[str, Any] = {}
    for key, p in params.items():
        if key not in raw:
            if p.required:
                raise ParamError(f"{prefix}{key}", "is required")
            out[key] = p.default
            continue
        out[key] = p.check(raw[key], f"{prefix}{key}")
    return out


def object_schema(params: dict[str, Param]) -> dict[str, Any]:
    """Return the JSON Schema of an object of these params (unknown keys refused)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {k: p.schema() for k, p in params.items()},
        "required": [k for k, p in params.items() if p.required],
    }


def schema_of(params: dict[str, Param]) -> dict[str, Any]:
    """Return object_schema with the JSON Schema dialect named."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **object_schema(params)}
