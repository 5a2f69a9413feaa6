"""Condition expressions, part 2: name/arity/type checks and vectorised evaluation over bars.

Types: numbers, bar fields, indicators, arithmetic, ``abs``/``min``/``max`` are float series;
comparisons, ``cross_above``/``cross_below`` and ``and``/``or``/``not`` are boolean series;
``shift`` keeps its operand's type. A comparison involving NaN is False (``!=`` too).

An indicator call's leading non-number argument is a series (``sma(volume, 20)``): it is passed
to the provider in ``series`` and the numbers in ``args``. ``Provider.arity`` and
``Provider.param_names`` describe the number parameters only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

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
    children,
)

Type = Literal["bool", "float"]
IndicatorCall = tuple[str, tuple[float, ...], tuple[tuple[str, float], ...]]

# name -> (argument types, result type); "same" = the type of the first argument
BUILTINS: dict[str, tuple[tuple[str, ...], str]] = {
    "cross_above": (("float", "float"), "bool"),
    "cross_below": (("float", "float"), "bool"),
    "abs": (("float",), "float"),
    "min": (("float", "float"), "float"),
    "max": (("float", "float"), "float"),
    "shift": (("any", "int"), "same"),
}
MAX_SHIFT = 1_000_000  # bars a shift() may look back

_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
}
_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
}


@runtime_checkable
class ChecksParams(Protocol):
    """A provider that can check an indicator's param values without data."""

    def check_params(self, name: str, args: tuple[float, ...], kwargs: dict[str, float]) -> None:
        """ValueError naming the param unless every value is in range."""
        ...


@runtime_checkable
class ChecksSeries(Protocol):
    """A provider that can tell, without data, whether an indicator takes a series argument."""

    def check_series(self, name: str) -> None:
        """ValueError unless the indicator takes a series in place of the close."""
        ...


class Provider(Protocol):
    """Resolves and computes indicators by name (lower case)."""

    def has(self, name: str) -> bool:
        """Whether an indicator of this name exists."""
        ...

    def arity(self, name: str) -> tuple[int, int]:
        """Minimum and maximum number of positional number parameters."""
        ...

    def param_names(self, name: str) -> tuple[str, ...]:
        """The number parameters' names in positional order, for keyword arguments."""
        ...

    def compute(
        self,
        name: str,
        bars: Any,
        args: tuple[float, ...],
        kwargs: dict[str, float],
        series: tuple[np.ndarray, ...],
    ) -> np.ndarray:
        """The indicator's float series over the bars; ValueError on a bad parameter."""
        ...


def _split_args(call: Call) -> tuple[tuple[Node, ...], tuple[Node, ...]]:
    """Split an indicator call's positional args into (leading series, numbers)."""
    if call.args and not isinstance(call.args[0], Num):
        return call.args[:1], call.args[1:]
    return (), call.args


def type_of(node: Node, provider: Provider) -> Type:
    """Type-check a node and its children; return its type."""
    if isinstance(node, Num | Field):
        return "float"
    if isinstance(node, Neg | BinOp | Compare):
        op = "-" if isinstance(node, Neg) else node.op
        for child in children(node):
            if type_of(child, provider) != "float":
                raise ExprError(f"{op!r} needs numbers, not a condition", child.pos)
        return "bool" if isinstance(node, Compare) else "float"
    if isinstance(node, Not | And | Or):
        word = type(node).__name__.lower()
        for child in children(node):
            if type_of(child, provider) != "bool":
                raise ExprError(f"{word!r} needs conditions, not a number", child.pos)
        return "bool"
    if isinstance(node, Call):
        if node.name in BUILTINS:
            return _check_builtin(node, provider)
        return _check_indicator(node, provider)
    raise ExprError(f"unknown node {type(node).__name__}", node.pos)


def _check_builtin(node: Call, provider: Provider) -> Type:
    """Check a built-in function call."""
    want, result = BUILTINS[node.name]
    if node.kwargs:
        raise ExprError(f"{node.name}() takes no keyword arguments", node.kw_pos[0])
    if len(node.args) != len(want):
        raise ExprError(
            f"{node.name}() takes {len(want)} argument(s), got {len(node.args)}", node.pos
        )
    types: list[Type] = []
    for arg, kind in zip(node.args, want, strict=True):
        if kind == "int":
            if not (isinstance(arg, Num) and arg.value >= 1 and arg.value.is_integer()):
                raise ExprError(f"{node.name}() needs a whole number >= 1 here", arg.pos)
            if arg.value > MAX_SHIFT:
                raise ExprError(
                    f"{node.name}() needs a whole number from 1 to {MAX_SHIFT:,} here", arg.pos
                )
            continue
        t = type_of(arg, provider)
        if kind == "float" and t != "float":
            raise ExprError(f"{node.name}() needs a number series, not a condition", arg.pos)
        types.append(t)
    return types[0] if result == "same" else result  # type: ignore[return-value]


def _check_indicator(node: Call, provider: Provider) -> Type:
    """Check an indicator call against the provider."""
    name = node.name
    if not provider.has(name):
        raise ExprError(f"unknown indicator {name!r}", node.pos)
    series, numbers = _split_args(node)
    for s in series:
        if type_of(s, provider) != "float":
            raise ExprError(f"{name}() needs a number series, not a condition", s.pos)
    if series and isinstance(provider, ChecksSeries):  # `atr(close)`: refused here, not at run time
        try:
            provider.check_series(name)
        except ValueError as exc:
            raise ExprError(str(exc), node.pos) from exc
    for arg in numbers:
        if not isinstance(arg, Num):
            raise ExprError(f"{name}() parameters must be numbers", arg.pos)
    lo, hi = provider.arity(name)
    if len(numbers) > hi:
        raise ExprError(f"{name}() takes at most {hi} parameter(s)", numbers[hi].pos)
    names = tuple(provider.param_names(name))
    for (key, _), at in zip(node.kwargs, node.kw_pos, strict=True):
        if key not in names:
            raise ExprError(f"{name}() has no parameter {key!r}", at)
        if names.index(key) < len(numbers):
            raise ExprError(f"parameter {key!r} given twice", at)
    given = {k for k, _ in node.kwargs}
    for i in range(len(numbers), lo):
        if i >= len(names) or names[i] not in given:
            missing = repr(names[i]) if i < len(names) else f"#{i + 1}"
            raise ExprError(f"{name}() is missing parameter {missing}", node.pos)
    if isinstance(provider, ChecksParams):  # values in range, before any data: not at run time
        args = tuple(n.value for n in numbers if isinstance(n, Num))
        kwargs = dict(node.kwargs)
        try:
            provider.check_params(name, args, kwargs)
        except ValueError as exc:
            raise ExprError(str(exc), node.pos) from exc
    return "float"


def check(node: Node, provider: Provider) -> None:
    """Resolve names, arities and types without data; the whole must be a condition."""
    if type_of(node, provider) != "bool":
        raise ExprError(
            "expression must be a condition (comparison, cross, and/or/not), not a number",
            node.pos,
        )


def indicator_calls(node: Node) -> list[IndicatorCall]:
    """Distinct indicator calls (name, number args, sorted kwargs) in order of appearance."""
    out: list[IndicatorCall] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Call) and cur.name not in BUILTINS:
            _, numbers = _split_args(cur)
            args = tuple(n.value for n in numbers if isinstance(n, Num))
            item = (cur.name, args, tuple(sorted(cur.kwargs)))
            if item not in out:
                out.append(item)
        stack.extend(reversed(children(cur)))
    return out


class _Evaluator:
    """Evaluates a checked tree once per node shape, caching identical sub-expressions."""

    def __init__(self, bars: Any, provider: Provider) -> None:
        self.bars = bars
        self.provider = provider
        self.n = int(np.asarray(bars.close).shape[0])
        self.cache: dict[Any, Any] = {}

    def full(self, value: Any) -> np.ndarray:
        """Broadcast a scalar or series to one value per bar (read-only view)."""
        return np.broadcast_to(value, (self.n,))

    def key(self, node: Node) -> Any:
        """Cache key: the node itself, with indicator keywords folded into positions."""
        if not isinstance(node, Call) or node.name in BUILTINS:
            return node
        series, numbers = _split_args(node)
        pos = [n.value for n in numbers if isinstance(n, Num)]
        kw = dict(node.kwargs)
        names = tuple(self.provider.param_names(node.name))
        while len(pos) < len(names) and names[len(pos)] in kw:
            pos.append(kw.pop(names[len(pos)]))
        return ("indicator", node.name, series, tuple(pos), tuple(sorted(kw.items())))

    def value(self, node: Node) -> Any:
        """Evaluate a node, reusing the result of an identical one."""
        key = self.key(node)
        if key not in self.cache:
            self.cache[key] = self._compute(node)
        return self.cache[key]

    def _compute(self, node: Node) -> Any:
        """Evaluate a node whose value is not cached yet."""
        if isinstance(node, Num):
            return np.float64(node.value)
        if isinstance(node, Field):
            b = self.bars  # a fixed map, no attribute lookup by user-given name
            cols = {
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": b.volume,
            }
            return np.asarray(cols[node.name], dtype=np.float64)
        if isinstance(node, Neg):
            return np.negative(self.value(node.operand))
        if isinstance(node, BinOp):
            return _ARITH[node.op](self.value(node.left), self.value(node.right))
        if isinstance(node, Compare):
            a, b = self.value(node.left), self.value(node.right)
            if node.op == "!=":
                return np.not_equal(a, b) & ~np.isnan(a) & ~np.isnan(b)
            return _CMP[node.op](a, b)
        if isinstance(node, Not):
            return np.logical_not(self.value(node.operand))
        if isinstance(node, And | Or):
            fn = np.logical_and if isinstance(node, And) else np.logical_or
            return reduce(fn, (self.value(item) for item in node.items))
        if isinstance(node, Call):
            if node.name in BUILTINS:
                return self.builtin(node)
            return self.indicator(node)
        raise ExprError(f"unknown node {type(node).__name__}", node.pos)

    def builtin(self, node: Call) -> Any:
        """Evaluate cross_above, cross_below, abs, min, max or shift."""
        name, n = node.name, self.n
        if name in ("cross_above", "cross_below"):
            a, b = (self.full(self.value(arg)) for arg in node.args)
            if name == "cross_below":
                a, b = -a, -b
            out = np.zeros(n, dtype=bool)
            out[1:] = (a[:-1] <= b[:-1]) & (a[1:] > b[1:])
            return out
        if name == "abs":
            return np.abs(self.value(node.args[0]))
        if name in ("min", "max"):
            fn = np.minimum if name == "min" else np.maximum
            return fn(self.value(node.args[0]), self.value(node.args[1]))
        # shift
        x = self.full(self.value(node.args[0]))
        lag = node.args[1]
        k = min(int(lag.value), n) if isinstance(lag, Num) else 0
        out = np.zeros(n, dtype=bool) if x.dtype == bool else np.full(n, np.nan)
        out[k:] = x[: n - k]
        return out

    def indicator(self, node: Call) -> np.ndarray:
        """Compute an indicator through the provider, checking the result's shape."""
        series, numbers = _split_args(node)
        args = tuple(n.value for n in numbers if isinstance(n, Num))
        data = tuple(np.ascontiguousarray(self.full(self.value(s))) for s in series)
        try:
            out = self.provider.compute(node.name, self.bars, args, dict(node.kwargs), data)
        except ExprError:
            raise
        except ValueError as e:
            raise ExprError(f"{node.name}(): {e}", node.pos) from e
        arr = np.asarray(out, dtype=np.float64)
        if arr.shape != (self.n,):
            raise ExprError(f"{node.name}() returned shape {arr.shape}, not ({self.n},)", node.pos)
        return arr


def evaluate(node: Node, bars: Any, provider: Provider) -> np.ndarray:
    """Check, then evaluate the condition over the bars: one bool per bar, NaN compares False."""
    check(node, provider)
    ev = _Evaluator(bars, provider)
    with np.errstate(all="ignore"):
        out = ev.value(node)
    return np.array(ev.full(out), dtype=bool)
