"""The score strategy's declared values and its JSON Schema, derived from them.

engine.strategy.score checks a score strategy with these declarations (limits, bounds, names);
``score_schema()`` writes the same facts as a JSON Schema, which ``scripts/gen_params.py`` saves
as ``protocol/score_strategy.schema.json`` (served in ``/openapi.json``; a test checks the file
equals this function's output).
"""

from __future__ import annotations

from typing import Any

from engine.data.bars import COLUMNS, RESOLUTIONS
from engine.params import MAX_BARS, REQUIRED, Param
from engine.strategy.expr_eval import BUILTINS
from engine.strategy.expr_parse import FIELDS, KEYWORDS

__all__ = [
    "EXAMPLE", "MAX_ITEMS", "MAX_NAME", "NAME", "REWARD_RISK", "SCORE", "STOP_VALUE",
    "TEXT_LIMIT", "THRESHOLD", "score_schema",
]  # fmt: skip

MAX_ITEMS = 50  # variables, conditions, exit conditions
MAX_NAME = 40  # a variable name's length
VAR_PATTERN = "^(?:[A-Za-z_][A-Za-z0-9_]{0,38}[A-Za-z_]|[A-Za-z_])$"  # MAX_NAME characters
TEXT_LIMIT = 1000  # an expression's characters (engine.strategy.expr_parse.parse)
NAME = Param("string", REQUIRED, "the condition's name, unique in the strategy", 1, 64)
SCORE = Param("number", REQUIRED, "added to the total while the condition holds", -1000, 1000)
THRESHOLD = Param(
    "number", REQUIRED,
    "Enter on a bar's close when the scores of the true conditions sum to at least this.",
    0, exclusive_minimum=True,
)  # fmt: skip
STOP_VALUE = {
    "atr": Param("number", REQUIRED, "multiple of ATR(execution.atr_period)", 0, 1000,
                 exclusive_minimum=True),
    "percent": Param("number", REQUIRED, "fraction of the entry price (0.02 = 2%)", 0, 1,
                     exclusive_minimum=True, exclusive_maximum=True),
}  # fmt: skip
REWARD_RISK = Param("number", 3.0, "The target's distance in R.", 0, 1000, exclusive_minimum=True)
MAX_HOLD = Param("integer", REQUIRED, "", 1, MAX_BARS)
EXAMPLE: dict[str, Any] = {
    "name": "momentum score",
    "type": "score",
    "variables": {"fast": "ema(12)", "slow": "ema(26)", "r": "rsi(14)"},
    "conditions": [
        {"name": "trend_up", "when": "fast > slow", "score": 2},
        {"name": "not_overbought", "when": "r < 70", "score": 1},
        {"name": "above_200", "when": "close > sma(200)", "score": 1, "timeframe": "4h"},
    ],
    "threshold": 3,
    "side": "long",
    "risk": {"stop": {"type": "atr", "value": 1.5}, "reward_risk": 3.0},
    "exit": ["fast < slow"],
}
DESCRIPTION = (
    'A v2 strategy object with "type": "score": named variables, conditions that each add a '
    "score while true, entry when the summed score reaches the threshold, and fixed-R exits "
    "(stop at 1R, target at reward_risk R). The compiler (engine.strategy.score) also checks "
    "what a schema cannot: expressions parse and type-check, every bare name is a variable or "
    "an indicator, variables have no cycles, condition names are unique and the threshold is "
    "reachable."
)


def _bare(p: Param) -> dict[str, Any]:
    """A param's schema without its description."""
    return {k: v for k, v in p.schema().items() if k != "description"}


def _stop(kind: str) -> dict[str, Any]:
    """One form of `risk.stop`."""
    return {
        "type": "object",
        "required": ["type", "value"],
        "additionalProperties": False,
        "properties": {"type": {"const": kind}, "value": _bare(STOP_VALUE[kind])},
    }


def _roles(*roles: str) -> dict[str, Any]:
    """A signal_type enum, upper and lower case."""
    return {"enum": [*roles, *(r.lower() for r in roles)]}


def _defs() -> dict[str, Any]:
    """The schema's shared definitions."""
    return {
        "expression": {
            "description": "A condition expression in barstream's grammar "
            "(README: Condition expressions).",
            "type": "string",
            "minLength": 1,
            "maxLength": TEXT_LIMIT,
        },
        "timeframe": {"enum": list(RESOLUTIONS)},
        "scored_condition": {
            "type": "object",
            "required": ["name", "when", "score"],
            "additionalProperties": False,
            "properties": {
                "name": _bare(NAME),
                "when": {"$ref": "#/$defs/expression"},
                "score": _bare(SCORE),
                "timeframe": {"$ref": "#/$defs/timeframe"},
                "signal_type": {
                    "description": "On a coarser timeframe: FILTER (default) holds while its bar "
                    "is the latest closed one; TRIGGER is true once, on the first run bar that "
                    "sees it.",
                    **_roles("FILTER", "TRIGGER"),
                },
            },
        },
        "exit_condition": {"oneOf": [{"$ref": "#/$defs/expression"}, _exit_expr(), _exit_signal()]},
    }


def _exit_expr() -> dict[str, Any]:
    """An exit given as `{"condition", "timeframe"?, "signal_type"?}`."""
    return {
        "type": "object",
        "required": ["condition"],
        "additionalProperties": False,
        "properties": {
            "condition": {"$ref": "#/$defs/expression"},
            "timeframe": {"$ref": "#/$defs/timeframe"},
            "signal_type": _roles("EXIT", "TRIGGER"),
        },
    }


def _exit_signal() -> dict[str, Any]:
    """An exit given as a catalog signal `{"name", "params"?, …}`."""
    return {
        "type": "object",
        "required": ["name"],
        "not": {"required": ["condition"]},
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "params": {"type": "object", "additionalProperties": {"type": "number"}},
            "timeframe": {"$ref": "#/$defs/timeframe"},
            "signal_type": _roles("EXIT", "TRIGGER"),
        },
    }


def _variables() -> dict[str, Any]:
    """The `variables` object."""
    reserved = [*(c for c in COLUMNS if c in FIELDS), *sorted(KEYWORDS), *BUILTINS]
    return {
        "description": "Name -> expression (a number series or a condition). A bare name in a "
        "condition, exit or other variable stands for the variable's expression. Names are "
        "case-insensitive and may not end in a digit (ema12 reads as ema(12)).",
        "type": "object",
        "maxProperties": MAX_ITEMS,
        "propertyNames": {"pattern": VAR_PATTERN, "not": {"enum": reserved}},
        "additionalProperties": {"$ref": "#/$defs/expression"},
    }


def score_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a score strategy object."""
    text = {"type": "string", "maxLength": 200}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://barstream.local/schemas/score_strategy.schema.json",
        "title": "Score strategy",
        "description": DESCRIPTION,
        "type": "object",
        "required": ["type", "conditions", "threshold", "risk"],
        "additionalProperties": False,
        "properties": {
            "type": {"const": "score"},
            "name": text,
            "asset": text,
            "description": text,
            "variables": _variables(),
            "conditions": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ITEMS,
                "items": {"$ref": "#/$defs/scored_condition"},
            },
            "threshold": THRESHOLD.schema(),
            "side": {"enum": ["long", "short"], "default": "long"},
            "risk": {
                "type": "object",
                "required": ["stop"],
                "additionalProperties": False,
                "properties": {
                    "stop": {
                        "description": "1R: value x ATR(execution.atr_period) at the signal bar, "
                        "or a fraction of the entry price (0.02 = 2%).",
                        "oneOf": [_stop("atr"), _stop("percent")],
                    },
                    "reward_risk": REWARD_RISK.schema(),
                },
            },
            "exit": {
                "description": "Conditions of which any closes the position (variables usable "
                "in expressions).",
                "type": "array",
                "maxItems": MAX_ITEMS,
                "items": {"$ref": "#/$defs/exit_condition"},
            },
            "max_hold_bars": _bare(MAX_HOLD),
        },
        "$defs": _defs(),
        "examples": [EXAMPLE],
    }
