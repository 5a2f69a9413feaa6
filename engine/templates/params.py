"""Template params: declared with engine.params.Param, checked and described through it.

A number param accepts a JSON number or a decimal string (seed 004 quotes prices: ``"72000"``);
an integer param accepts a JSON integer only; a param whose default is None is optional and
takes null. Every fault raises TemplateError whose ``path`` names the param
(``params.grid_levels``) and whose ``code`` is seed 004's ``INVALID_PARAMETER``.
"""

from __future__ import annotations

from typing import Any

from engine.errors import PathError
from engine.params import DECIMAL, REQUIRED, Kind, Param, ParamError, schema_of

__all__ = ["DECIMAL", "REQUIRED", "TemplateError", "object_schema", "tparam", "validate"]


class TemplateError(PathError):
    """A template fault, located by the path of the offending value (``params.grid_levels``)."""

    code = "INVALID_PARAMETER"


def tparam(
    kind: Kind,
    default: Any,
    description: str,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    choices: tuple[str, ...] = (),
) -> Param:
    """Declare a template param: numbers take decimal strings, a None default takes null."""
    return Param(
        kind, default, description, minimum, maximum, exclusive_minimum, choices=choices,
        nullable=default is None, decimal_strings=kind == "number",
    )  # fmt: skip


def object_schema(params: dict[str, Param]) -> dict:
    """Return the JSON Schema of a params object."""
    return schema_of(params)


def validate(params: dict[str, Param], raw: Any, template: str) -> dict[str, Any]:
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
        try:
            out[key] = spec.check(raw[key], f"params.{key}")
        except ParamError as exc:
            raise TemplateError(exc.path, exc.message) from exc
    return out
