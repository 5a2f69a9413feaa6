"""Score strategies: named variables, scored conditions, a threshold and fixed-R exits.

A score strategy is a v2 strategy object with ``"type": "score"`` (JSON Schema:
``protocol/score_strategy.schema.json``, generated from engine.strategy.score_schema, whose
declarations these checks use)::

    {"name": "momentum score", "type": "score",
     "variables": {"fast": "ema(12)", "slow": "ema(26)", "r": "rsi(14)"},
     "conditions": [
       {"name": "trend_up", "when": "fast > slow", "score": 2},
       {"name": "not_overbought", "when": "r < 70", "score": 1},
       {"name": "above_200", "when": "close > sma(200)", "score": 1, "timeframe": "4h"}],
     "threshold": 3, "side": "long",
     "risk": {"stop": {"type": "atr", "value": 1.5}, "reward_risk": 3.0},
     "exit": ["fast < slow"]}

- ``variables``: name -> expression (a number series or a condition). A bare name in a
  condition, an exit expression or another variable that is a variable's name stands for that
  variable's expression: the parsed sub-tree is substituted, so ``fast > slow`` compiles to
  ``ema(12) > ema(26)``. Names are case-insensitive, start with a letter or ``_``, do not end in
  a digit (``ema12`` reads as ``ema(12)``) and are not bar fields, keywords or built-in functions;
  a variable may shadow an indicator's bare name (``rsi``). Cycles are errors.
- ``conditions``: 1-50 ``{"name", "when", "score", "timeframe"?, "signal_type"?}``; ``when`` is
  a condition expression, ``score`` a number (-1000..1000) added while it holds; a condition on
  a coarser ``timeframe`` is a state (``FILTER``, the default) or an event (``TRIGGER``).
- ``threshold``: enter on a bar's close when the summed score is at least this (> 0, and
  reachable by the positive scores). ``side``: ``long`` (default) or ``short``.
- ``risk``: ``stop`` ``{"type": "atr" | "percent", "value"}`` is 1R (value * ATR(atr_period) at
  the signal bar, or a fraction of the entry price); the target is ``reward_risk`` * R away
  (default 3). They compile to ``Exits.stop_loss`` and ``Exits.take_profit`` of kind ``r``.
- ``exit`` (optional): conditions of which any closes the position, variables usable;
  ``max_hold_bars`` as in a rule strategy.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

from engine.strategy.conditions import (
    EXECUTION_KEYS,
    StrategyError,
    compile_text,
    condition,
    role_of,
    timeframe_of,
)
from engine.strategy.expr_eval import BUILTINS, type_of
from engine.strategy.expr_parse import (
    FIELDS,
    KEYWORDS,
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
    children,
    parse,
)
from engine.strategy.form import Condition, Exits, Level, ScoreItem, ScoreRule, Strategy
from engine.strategy.score_schema import (
    MAX_ITEMS,
    MAX_NAME,
    NAME,
    REWARD_RISK,
    SCORE,
    STOP_VALUE,
    THRESHOLD,
)

__all__ = ["SCORE_KEYS", "compile_score", "expand", "expanded_text", "unparse"]

SCORE_KEYS = {
    "name",
    "asset",
    "description",
    "type",
    "variables",
    "conditions",
    "threshold",
    "side",
    "risk",
    "exit",
    "max_hold_bars",
}
ITEM_KEYS = {"name", "when", "score", "timeframe", "signal_type"}
MAX_NODES = 1000  # a substituted tree larger than this is refused before type-checking
MAX_DEPTH = 32  # and one deeper than the parser allows (its text could never be read back)
_VAR_NAME = re.compile(r"[a-z_][a-z0-9_]*[a-z_]|[a-z_]")


def compile_score(spec: dict, name: str, asset: str | None, max_hold: int | None) -> Strategy:
    """Compile a score strategy object whose keys compile_strategy has checked."""
    variables, shown = _variables(spec.get("variables"))
    items = _items(spec.get("conditions"), variables)
    threshold = _threshold(spec.get("threshold"), items)
    side = spec.get("side", "long")
    if side not in ("long", "short"):
        raise StrategyError("side", "must be long or short")
    raw_exit = spec.get("exit") or []
    if not isinstance(raw_exit, list) or len(raw_exit) > MAX_ITEMS:
        raise StrategyError("exit", f"must be a list of at most {MAX_ITEMS} conditions")
    exit_ = tuple(
        condition(raw, f"exit[{i}]", entry=False, variables=variables)
        for i, raw in enumerate(raw_exit)
    )
    exits = _risk(spec.get("risk"), max_hold)
    rule = ScoreRule(items, threshold, side, shown)
    long_exit, short_exit = (exit_, ()) if side == "long" else ((), exit_)
    return Strategy(
        name, asset, long_exit=long_exit, short_exit=short_exit, exits=exits, score=rule
    )


def _variables(raw: Any) -> tuple[dict[str, Node], tuple[tuple[str, str], ...]]:
    """Parse, check and resolve the variables; return name -> sub-tree and the texts as written."""
    if raw is None:
        return {}, ()
    if not isinstance(raw, dict) or len(raw) > MAX_ITEMS:
        raise StrategyError(
            "variables", f"must be an object of at most {MAX_ITEMS} name: expression"
        )
    texts: dict[str, tuple[str, str]] = {}
    for key, text in raw.items():
        name = _var_name(key)
        if name in texts:
            raise StrategyError(
                f"variables.{key}", f"same name as {texts[name][0]!r} (case-insensitive)"
            )
        if not isinstance(text, str):
            raise StrategyError(f"variables.{key}", "must be an expression string")
        texts[name] = (key, text)
    resolved: dict[str, Node] = {}
    for name in texts:
        _resolve(name, texts, resolved, ())
    return resolved, tuple((key, text) for key, text in texts.values())


def _var_name(key: str) -> str:
    """Validate a variable name; return it lower-cased."""
    path = f"variables.{key}"
    name = key.lower()
    if not _VAR_NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise StrategyError(
            path,
            "a variable name is up to 40 letters, digits and _, starting with a letter or _ and "
            "not ending in a digit (ema12 would read as ema(12))",
        )
    if name in FIELDS or name in KEYWORDS or name in BUILTINS:
        raise StrategyError(path, f"{name!r} is a bar field, keyword or function")
    return name


def _resolve(
    name: str, texts: dict[str, tuple[str, str]], resolved: dict[str, Node], chain: tuple[str, ...]
) -> Node:
    """Resolve one variable after the variables it names; StrategyError on a cycle or a fault."""
    if name in resolved:
        return resolved[name]
    key, text = texts[name]
    if name in chain:
        loop = " -> ".join((*chain[chain.index(name) :], name))
        raise StrategyError(f"variables.{key}", f"refers to itself ({loop})")
    try:
        node = parse(text)
    except ExprError as exc:
        raise StrategyError(f"variables.{key}", str(exc)) from exc
    for dep in _bare_names(node):
        if dep in texts:
            _resolve(dep, texts, resolved, (*chain, name))
    try:
        node = expand(node, resolved)
        from engine.strategy.provider import PROVIDER

        type_of(node, PROVIDER)
    except ExprError as exc:
        raise StrategyError(f"variables.{key}", str(exc)) from exc
    resolved[name] = node
    return node


def _bare_names(node: Node) -> list[str]:
    """The names written bare (no parentheses, no shorthand digits) in a tree."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        stack.extend(children(n))
        if isinstance(n, Call) and not n.args and not n.kwargs:
            out.append(n.name)
    return out


def expand(node: Node, variables: dict[str, Node]) -> Node:
    """Substitute variables for bare names; ExprError naming an undefined one or a huge result."""
    out = _substitute(node, variables)
    size, depth = _measure(out)
    if size > MAX_NODES:
        raise ExprError(
            f"expression too large once variables are substituted (max {MAX_NODES} parts)", 0
        )
    if depth > MAX_DEPTH:  # before anything walks it recursively: 50 chained variables nest deep
        raise ExprError(
            f"expression nested too deeply once variables are substituted (max depth {MAX_DEPTH})",
            0,
        )
    return out


def _substitute(node: Node, variables: dict[str, Node]) -> Node:
    """Rebuild the tree with each bare variable name replaced by its sub-tree."""
    from engine.strategy.provider import PROVIDER

    if isinstance(node, Call):
        if not node.args and not node.kwargs and node.name not in BUILTINS:
            if node.name in variables:
                return replace(variables[node.name], pos=node.pos)
            if not PROVIDER.has(node.name):
                known = ", ".join(variables) or "none"
                raise ExprError(f"undefined variable {node.name!r} (variables: {known})", node.pos)
        return replace(node, args=tuple(_substitute(a, variables) for a in node.args))
    if isinstance(node, Neg):
        operand = _substitute(node.operand, variables)
        if isinstance(operand, Num):  # as the parser folds -3, so the text reads back the same
            return Num(-operand.value, pos=node.pos)
        return replace(node, operand=operand)
    if isinstance(node, Not):
        return replace(node, operand=_substitute(node.operand, variables))
    if isinstance(node, BinOp | Compare):
        left, right = (_substitute(c, variables) for c in (node.left, node.right))
        return replace(node, left=left, right=right)
    if isinstance(node, And | Or):
        return replace(node, items=tuple(_substitute(c, variables) for c in node.items))
    return node


def _measure(node: Node) -> tuple[int, int]:
    """A tree's node count (a shared sub-tree counted once per use) and depth, in linear time
    and without recursion (a chain of variables can nest far deeper than the stack allows)."""
    memo: dict[int, tuple[int, int]] = {}
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        cur, ready = stack.pop()
        if id(cur) in memo:
            continue
        kids = children(cur)
        if ready:
            parts = [memo[id(k)] for k in kids]
            size = 1 + sum(n for n, _ in parts)
            memo[id(cur)] = (size, 1 + max((d for _, d in parts), default=0))
        else:
            stack.append((cur, True))
            stack.extend((k, False) for k in kids)
    return memo[id(node)]


def _prec(node: Node) -> int:
    """Binding strength of a node's text, as in the grammar (higher binds tighter)."""
    if isinstance(node, Or):
        return 1
    if isinstance(node, And):
        return 2
    if isinstance(node, Not):
        return 3
    if isinstance(node, Compare):
        return 4
    if isinstance(node, BinOp):
        return 5 if node.op in "+-" else 6
    if isinstance(node, Neg) or (isinstance(node, Num) and node.value < 0):
        return 7
    return 8


def _num(value: float) -> str:
    """A number as text that tokenizes back to the same float."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def unparse(node: Node, min_prec: int = 0) -> str:
    """Write a tree back as expression text, with parentheses only where the grammar needs them."""
    text = _text(node)
    return f"({text})" if _prec(node) < min_prec else text


def _text(node: Node) -> str:
    """The text of a node without outer parentheses."""
    if isinstance(node, Num):
        return _num(node.value)
    if isinstance(node, Field):
        return node.name
    if isinstance(node, Call):
        args = [unparse(a) for a in node.args] + [f"{k}={_num(v)}" for k, v in node.kwargs]
        return f"{node.name}({', '.join(args)})"
    if isinstance(node, Neg):
        return f"-{unparse(node.operand, 7)}"
    if isinstance(node, Not):
        return f"not {unparse(node.operand, 3)}"
    if isinstance(node, BinOp):
        p = _prec(node)
        return f"{unparse(node.left, p)} {node.op} {unparse(node.right, p + 1)}"
    if isinstance(node, Compare):
        return f"{unparse(node.left, 5)} {node.op} {unparse(node.right, 5)}"
    if isinstance(node, And | Or):
        word, p = (" and ", 3) if isinstance(node, And) else (" or ", 2)
        return word.join(unparse(item, p) for item in node.items)
    raise ExprError(f"unknown node {type(node).__name__}", node.pos)


def expanded_text(node: Node) -> str:
    """Text of a substituted tree that parses back to the same tree within the parser's limits."""
    text = unparse(node)
    try:
        back = parse(text)
    except ExprError as exc:
        raise ExprError(f"once variables are substituted: {exc.message}", 0) from exc
    if back != node:
        raise ExprError(f"cannot write the substituted expression as text: {text!r}", 0)
    return text


def _items(raw: Any, variables: dict[str, Node]) -> tuple[ScoreItem, ...]:
    """Compile the scored conditions."""
    if not isinstance(raw, list) or not raw:
        raise StrategyError("conditions", "must be a list of at least one scored condition")
    if len(raw) > MAX_ITEMS:
        raise StrategyError("conditions", f"at most {MAX_ITEMS} conditions")
    items: list[ScoreItem] = []
    for i, item in enumerate(raw):
        items.append(_item(item, f"conditions[{i}]", variables))
        if items[-1].name in (x.name for x in items[:-1]):
            raise StrategyError(f"conditions[{i}].name", f"duplicate name {items[-1].name!r}")
    return tuple(items)


def _item(raw: Any, path: str, variables: dict[str, Node]) -> ScoreItem:
    """Compile one `{"name", "when", "score", "timeframe"?, "signal_type"?}`."""
    if not isinstance(raw, dict):
        raise StrategyError(path, 'must be an object {"name", "when", "score"}')
    for key in raw:
        if key not in ITEM_KEYS:
            raise StrategyError(f"{path}.{key}", "unknown field")
    for key in ("name", "when", "score"):
        if key not in raw:
            raise StrategyError(f"{path}.{key}", "is required")
    name = raw["name"]
    if not isinstance(name, str) or not NAME.in_bounds(len(name)):
        raise StrategyError(
            f"{path}.name", f"must be a string of {NAME.minimum:g} to {NAME.maximum:g} characters"
        )
    score = raw["score"]
    if not _number(score) or not SCORE.in_bounds(score):
        raise StrategyError(
            f"{path}.score", f"must be a number from {SCORE.minimum:g} to {SCORE.maximum:g}"
        )
    text = compile_text(raw["when"], f"{path}.when", variables)
    role = role_of(raw.get("signal_type") or "FILTER", ("TRIGGER", "FILTER"), "a score condition",
                 f"{path}.signal_type", entry=True)  # fmt: skip
    timeframe = timeframe_of(raw.get("timeframe"), f"{path}.timeframe")
    return ScoreItem(name, Condition("expr", text, (), timeframe, role, path), float(score))


def _threshold(raw: Any, items: tuple[ScoreItem, ...]) -> float:
    """Validate the threshold: a number above 0 that the positive scores can reach."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise StrategyError("threshold", "must be a number")
    best = sum(max(item.score, 0.0) for item in items)
    if not THRESHOLD.in_bounds(raw):
        raise StrategyError("threshold", "must be above 0 (0 would enter on every bar)")
    if raw > best + 1e-9:
        raise StrategyError("threshold", f"{raw:g} can never be reached (all conditions: {best:g})")
    return float(raw)


def _risk(raw: Any, max_hold: int | None) -> Exits:
    """Compile `risk` into a stop at 1R and a target at reward_risk R."""
    if not isinstance(raw, dict) or set(raw) - {"stop", "reward_risk"}:
        raise StrategyError("risk", 'must be an object {"stop": {...}, "reward_risk"?}')
    stop = raw.get("stop")
    if not isinstance(stop, dict) or set(stop) != {"type", "value"}:
        raise StrategyError("risk.stop", 'must be an object {"type": "atr"|"percent", "value"}')
    kind, value = stop["type"], stop["value"]
    if kind not in ("atr", "percent"):
        raise StrategyError("risk.stop.type", "must be atr or percent")
    if not (_number(value) and STOP_VALUE[kind].in_bounds(value)):
        what = "a fraction" if kind == "percent" else "a number"
        raise StrategyError("risk.stop.value", f"must be {what} {STOP_VALUE[kind].bounds_text()}")
    rr = raw.get("reward_risk", REWARD_RISK.default)
    if not (_number(rr) and REWARD_RISK.in_bounds(rr)):
        raise StrategyError("risk.reward_risk", f"must be a number {REWARD_RISK.bounds_text()}")
    return Exits(
        stop_loss=Level(kind, float(value)),
        take_profit=Level("r", float(rr)),
        max_hold_bars=max_hold,
    )


def _number(x: Any) -> bool:
    """Return whether x is a finite JSON number (not a boolean)."""
    return not isinstance(x, bool) and isinstance(x, int | float) and math.isfinite(x)


def check_keys(spec: dict) -> None:
    """Reject unknown keys and execution settings in a score strategy object."""
    for key in spec:
        if key in EXECUTION_KEYS:
            raise StrategyError(key, "belongs in the execution settings, not the strategy")
        if key not in SCORE_KEYS:
            raise StrategyError(key, "unknown field of a score strategy")
    if spec.get("type") != "score":
        raise StrategyError("type", 'must be "score" (leave it out for a rule strategy)')
