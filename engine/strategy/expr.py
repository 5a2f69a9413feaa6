"""Condition expressions (``"rsi(14) < 30 and close > sma50"``): our own small grammar.

The public face of :mod:`engine.strategy.expr_parse` (tokens, nodes, parser) and
:mod:`engine.strategy.expr_eval` (checks and evaluation). User text is never ``eval``-ed.

Typical use: ``node = parse(text)`` then ``check(node, provider)`` when compiling a strategy, and
``evaluate(node, bars, provider)`` for the boolean series at run time.
"""

from __future__ import annotations

from engine.strategy.expr_eval import Provider, check, evaluate, indicator_calls
from engine.strategy.expr_parse import (
    And,
    BinOp,
    Call,
    Compare,
    ExprError,
    Field,
    Neg,
    Node,
    Not,
    Num,
    Or,
    parse,
)

__all__ = [
    "And",
    "BinOp",
    "Call",
    "Compare",
    "ExprError",
    "Field",
    "Neg",
    "Node",
    "Not",
    "Num",
    "Or",
    "Provider",
    "check",
    "evaluate",
    "indicator_calls",
    "parse",
]
