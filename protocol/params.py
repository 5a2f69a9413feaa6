"""Wire models built from declared parameters (``execution_settings.json``).

The engine declares its execution settings once (engine.execution, each a Param with kind,
default, bounds and description); ``scripts/gen_params.py`` writes them to
``protocol/execution_settings.json`` and tests/protocol/test_params.py checks that the file
equals what the engine declares. This module reads the file and turns each declaration into a
pydantic field with the same bounds, so the wire and the engine refuse the same values without
protocol importing the engine.
"""

import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

__all__ = ["bounds", "check_decimal", "declarations", "declared", "field_of", "model_of"]

SETTINGS_PATH = Path(__file__).with_name("execution_settings.json")
TYPES: dict[str, Any] = {"integer": int, "number": float, "string": str, "boolean": bool}


@cache
def _settings() -> dict[str, Any]:
    return json.loads(SETTINGS_PATH.read_text())


def declared(name: str) -> dict[str, Any]:
    """Return the declaration of one execution setting (a dict: kind, default, bounds, …)."""
    return _settings()[name]


def declarations() -> dict[str, dict[str, Any]]:
    """Return every execution setting's declaration, in declaration order."""
    return dict(_settings())


def bounds(spec: dict[str, Any]) -> dict[str, Any]:
    """Return pydantic Field bound keywords (ge/gt/le/lt, or lengths for strings and lists)."""
    out: dict[str, Any] = {}
    lo, hi = spec.get("minimum"), spec.get("maximum")
    if spec["kind"] in ("string", "array"):
        if lo is not None:
            out["min_length"] = int(lo)
        if hi is not None:
            out["max_length"] = int(hi)
        return out
    if lo is not None:
        out["gt" if spec.get("exclusive_minimum") else "ge"] = lo
    if hi is not None:
        out["lt" if spec.get("exclusive_maximum") else "le"] = hi
    return out


def field_of(spec: dict[str, Any], annotation: Any = None) -> tuple[Any, Any]:
    """Return (annotation, FieldInfo) for a declaration; `annotation` overrides the kind's type
    (for an object or array of sub-models)."""
    if annotation is None:
        choices = spec.get("choices")
        annotation = Literal[tuple(choices)] if choices else TYPES[spec["kind"]]
    if spec.get("nullable"):
        annotation = annotation | None
    default = spec.get("default", ...)
    extra = {"x-unit": spec["unit"]} if spec.get("unit") else None
    info = Field(
        default, description=spec.get("description"), json_schema_extra=extra, **bounds(spec)
    )
    return annotation, info


def model_of(
    name: str,
    specs: dict[str, dict[str, Any]],
    base: type[BaseModel],
    doc: str,
    nested: dict[str, Any] | None = None,
    validators: dict[str, Any] | None = None,
) -> type[BaseModel]:
    """Return a model with one field per declaration (`nested` gives a field's annotation)."""
    nested = nested or {}
    fields = {k: field_of(s, nested.get(k)) for k, s in specs.items()}
    model = create_model(  # type: ignore[call-overload]
        name, __base__=base, __doc__=doc, __module__=base.__module__,
        __validators__=validators or {}, **fields,
    )  # fmt: skip
    return model


def check_decimal(spec: dict[str, Any], value: Decimal, field: str) -> None:
    """Raise ValueError naming `field` unless a decimal lies within a declaration's bounds."""
    lo, hi = spec.get("minimum"), spec.get("maximum")
    low_ok = lo is None or (value > lo if spec.get("exclusive_minimum") else value >= lo)
    high_ok = hi is None or (value < hi if spec.get("exclusive_maximum") else value <= hi)
    if not (low_ok and high_ok):
        lower = "" if lo is None else ("above" if spec.get("exclusive_minimum") else "at least")
        upper = "" if hi is None else ("below" if spec.get("exclusive_maximum") else "at most")
        parts = [f"{lower} {lo:g}" if lower else "", f"{upper} {hi:g}" if upper else ""]
        raise ValueError(f"{field} must be {' and '.join(p for p in parts if p)}")
