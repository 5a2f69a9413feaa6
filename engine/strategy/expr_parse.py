"""Condition expressions, part 1: the tokenizer, the AST nodes and the parser.

User text is only ever matched against the regular expressions below and walked by a
recursive-descent parser with explicit bounds; nothing is ``eval``-ed, ``exec``-ed or compiled.

Grammar, lowest precedence first::

    or_expr   := and_expr ("or" and_expr)*
    and_expr  := not_expr ("and" not_expr)*
    not_expr  := "not" not_expr | cmp_expr
    cmp_expr  := add_expr [("<" | "<=" | ">" | ">=" | "==" | "!=") add_expr]   # no chaining
    add_expr  := mul_expr (("+" | "-") mul_expr)*
    mul_expr  := unary (("*" | "/") unary)*
    unary     := "-" unary | primary
    primary   := NUMBER | FIELD | NAME "(" [args] ")" | NAME | "(" or_expr ")"
    args      := arg ("," arg)*   with positional args before keyword args
    arg       := or_expr | NAME "=" ["-"] NUMBER

A bare NAME is a bar field (``open``, ``high``, ``low``, ``close``, ``volume``), an indicator
shorthand whose trailing digits are its first parameter (``sma50`` is ``sma(50)``), or an
indicator call with no arguments (``rsi``). Keywords and names are case-insensitive.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

FIELDS = frozenset({"open", "high", "low", "close", "volume"})
KEYWORDS = frozenset({"and", "or", "not"})
CMP_OPS = frozenset({"<", "<=", ">", ">=", "==", "!="})

_TOKEN = re.compile(
    r"(?P<ws>[ \t\r\n]+)"
    r"|(?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><=|>=|==|!=|[<>+\-*/(),=])"
)
_NAME_CHAR = re.compile(r"[A-Za-z0-9_.]")
_SHORTHAND = re.compile(r"([a-z_][a-z0-9_]*[a-z])_?([0-9]+)")


class ExprError(ValueError):
    """A fault in a condition expression, found at a 0-based character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position

    def __reduce__(self) -> tuple[type[ExprError], tuple[str, int]]:
        """Pickle with the message and the position."""
        return (type(self), (self.message, self.position))


@dataclass(frozen=True)
class Node:
    """Base of the expression nodes; ``pos`` (ignored by ==) is where the node's text starts."""

    pos: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True)
class Num(Node):
    """A number literal."""

    value: float


@dataclass(frozen=True)
class Field(Node):
    """A bar field: open, high, low, close or volume."""

    name: str


@dataclass(frozen=True)
class Call(Node):
    """A call of a built-in function or an indicator; ``kw_pos`` are the keywords' offsets."""

    name: str
    args: tuple[Node, ...] = ()
    kwargs: tuple[tuple[str, float], ...] = ()
    kw_pos: tuple[int, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Neg(Node):
    """Unary minus."""

    operand: Node


@dataclass(frozen=True)
class BinOp(Node):
    """Arithmetic: + - * /."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    """A comparison: < <= > >= == !=."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not(Node):
    """Logical not."""

    operand: Node


@dataclass(frozen=True)
class And(Node):
    """Logical and of two or more conditions."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    """Logical or of two or more conditions."""

    items: tuple[Node, ...]


def children(node: Node) -> tuple[Node, ...]:
    """Return the direct sub-expressions of a node."""
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Neg | Not):
        return (node.operand,)
    if isinstance(node, BinOp | Compare):
        return (node.left, node.right)
    if isinstance(node, And | Or):
        return node.items
    return ()


class _Tok(NamedTuple):
    """One token: kind, text (keywords lower-cased) and offset."""

    kind: str  # "num", "name", "kw", "op", "end"
    text: str
    pos: int


def _describe(tok: _Tok) -> str:
    """Name a token for an error message."""
    return "end of expression" if tok.kind == "end" else repr(tok.text)


def tokenize(source: str) -> list[_Tok]:
    """Split source into tokens; ExprError on a character that starts no token."""
    toks: list[_Tok] = []
    i, n = 0, len(source)
    while i < n:
        m = _TOKEN.match(source, i)
        if m is None:
            raise ExprError(f"unexpected character {source[i]!r}", i)
        kind, text = m.lastgroup or "", m.group()
        if kind == "num" and m.end() < n and _NAME_CHAR.match(source, m.end()):
            raise ExprError(f"malformed number {source[i : m.end() + 1]!r}", i)
        if kind == "name" and text.lower() in KEYWORDS:
            kind, text = "kw", text.lower()
        if kind != "ws":
            toks.append(_Tok(kind, text, i))
        i = m.end()
    toks.append(_Tok("end", "", n))
    return toks


class _Parser:
    """Recursive descent over a token list, bounded in nesting, tree depth and node count."""

    def __init__(self, toks: list[_Tok], max_depth: int, max_nodes: int) -> None:
        self.toks = toks
        self.i = 0
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.level = 0  # current nesting: parentheses, calls, unary operators
        self.open_parens = 0
        self.count = 0
        self.depth: dict[int, int] = {}
        self.alive: list[Node] = []  # keeps ids in `depth` unique

    def peek(self, ahead: int = 0) -> _Tok:
        """The token `ahead` places on, without consuming it."""
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        """Consume and return the next token (the end token repeats)."""
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def is_op(self, tok: _Tok, *ops: str) -> bool:
        """Whether a token is one of the given operators."""
        return tok.kind == "op" and tok.text in ops

    def enter(self, pos: int) -> None:
        """Go one nesting level deeper; ExprError past max_depth."""
        self.level += 1
        if self.level > self.max_depth:
            raise ExprError(f"expression nested too deeply (max depth {self.max_depth})", pos)

    def make(self, node: Node, at: int, count: bool = True) -> Node:
        """Register a new node, enforcing the node and depth limits; `at` is its operator."""
        if count:
            self.count += 1
            if self.count > self.max_nodes:
                raise ExprError(f"expression too large (max {self.max_nodes} parts)", at)
        d = 1 + max((self.depth[id(c)] for c in children(node)), default=0)
        if d > self.max_depth:
            raise ExprError(f"expression nested too deeply (max depth {self.max_depth})", at)
        self.depth[id(node)] = d
        self.alive.append(node)
        return node

    def parse(self) -> Node:
        """Parse the whole token list; anything left over is an error."""
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            if self.is_op(tok, ")"):
                raise ExprError("unmatched ')'", tok.pos)
            raise ExprError(f"unexpected {_describe(tok)}", tok.pos)
        return node

    def _nary(self, word: str, sub: Callable[[], Node], cls: type[And] | type[Or]) -> Node:
        """Parse `sub (word sub)*` into one n-ary node."""
        first = sub()
        items, at = [first], first.pos
        while self.peek().kind == "kw" and self.peek().text == word:
            at = self.take().pos
            items.append(sub())
        if len(items) == 1:
            return first
        return self.make(cls(tuple(items), pos=first.pos), at)

    def or_expr(self) -> Node:
        """or_expr := and_expr ('or' and_expr)*."""
        return self._nary("or", self.and_expr, Or)

    def and_expr(self) -> Node:
        """and_expr := not_expr ('and' not_expr)*."""
        return self._nary("and", self.not_expr, And)

    def not_expr(self) -> Node:
        """not_expr := 'not' not_expr | cmp_expr."""
        tok = self.peek()
        if tok.kind == "kw" and tok.text == "not":
            self.take()
            self.enter(tok.pos)
            operand = self.not_expr()
            self.level -= 1
            return self.make(Not(operand, pos=tok.pos), tok.pos)
        return self.cmp_expr()

    def cmp_expr(self) -> Node:
        """cmp_expr := add_expr [op add_expr], never chained."""
        left = self.add_expr()
        tok = self.peek()
        if tok.kind != "op" or tok.text not in CMP_OPS:
            return left
        self.take()
        right = self.add_expr()
        node = self.make(Compare(tok.text, left, right, pos=left.pos), tok.pos)
        nxt = self.peek()
        if nxt.kind == "op" and nxt.text in CMP_OPS:
            raise ExprError("comparisons cannot be chained; join them with 'and'", nxt.pos)
        return node

    def add_expr(self) -> Node:
        """add_expr := mul_expr (('+' | '-') mul_expr)*, left-associative."""
        node = self.mul_expr()
        while self.is_op(self.peek(), "+", "-"):
            tok = self.take()
            node = self.make(BinOp(tok.text, node, self.mul_expr(), pos=node.pos), tok.pos)
        return node

    def mul_expr(self) -> Node:
        """mul_expr := unary (('*' | '/') unary)*, left-associative."""
        node = self.unary()
        while self.is_op(self.peek(), "*", "/"):
            tok = self.take()
            node = self.make(BinOp(tok.text, node, self.unary(), pos=node.pos), tok.pos)
        return node

    def unary(self) -> Node:
        """unary := '-' unary | primary; a negated literal folds into the literal."""
        tok = self.peek()
        if not self.is_op(tok, "-"):
            return self.primary()
        self.take()
        self.enter(tok.pos)
        operand = self.unary()
        self.level -= 1
        if isinstance(operand, Num):  # fold -3 into a literal so it can be a call parameter
            return self.make(Num(-operand.value, pos=tok.pos), tok.pos, count=False)
        return self.make(Neg(operand, pos=tok.pos), tok.pos)

    def number(self, tok: _Tok) -> float:
        """The value of a number token; ExprError if it is not finite."""
        value = float(tok.text)
        if not math.isfinite(value):
            raise ExprError(f"number {tok.text!r} out of range", tok.pos)
        return value

    def primary(self) -> Node:
        """A number, name, call or parenthesised expression."""
        tok = self.take()
        if tok.kind == "num":
            return self.make(Num(self.number(tok), pos=tok.pos), tok.pos)
        if tok.kind == "name":
            return self.name(tok)
        if self.is_op(tok, "("):
            self.enter(tok.pos)
            self.open_parens += 1
            node = self.or_expr()
            close = self.take()
            if not self.is_op(close, ")"):
                if close.kind == "end":
                    raise ExprError("unclosed '('", tok.pos)
                raise ExprError(f"expected ')', found {_describe(close)}", close.pos)
            self.open_parens -= 1
            self.level -= 1
            return self.make(replace(node, pos=tok.pos), tok.pos, count=False)
        if self.is_op(tok, ")") and self.open_parens == 0:
            raise ExprError("unmatched ')'", tok.pos)
        if tok.kind == "end":
            raise ExprError("missing operand at end of expression", tok.pos)
        raise ExprError(f"missing operand before {_describe(tok)}", tok.pos)

    def name(self, tok: _Tok) -> Node:
        """A bar field, a call, an indicator shorthand (sma50) or a bare indicator."""
        name = tok.text.lower()
        if self.is_op(self.peek(), "("):
            if name in FIELDS:
                raise ExprError(f"{name!r} is a bar field, not a function", tok.pos)
            return self.call(name, tok.pos)
        if name in FIELDS:
            return self.make(Field(name, pos=tok.pos), tok.pos)
        m = _SHORTHAND.fullmatch(name)
        if m is None:
            return self.make(Call(name, pos=tok.pos), tok.pos)
        digits = self.make(Num(float(m.group(2)), pos=tok.pos + m.start(2)), tok.pos)
        return self.make(Call(m.group(1), (digits,), pos=tok.pos), tok.pos)

    def call(self, name: str, pos: int) -> Node:
        """The argument list of a call whose name was just read."""
        lpar = self.take()
        self.enter(lpar.pos)
        self.open_parens += 1
        args: list[Node] = []
        kwargs: list[tuple[str, float]] = []
        kw_pos: list[int] = []
        if self.is_op(self.peek(), ")"):
            self.take()
        else:
            while True:
                tok = self.peek()
                if tok.kind == "name" and self.is_op(self.peek(1), "="):
                    self.take()
                    self.take()
                    key = tok.text.lower()
                    if key in (k for k, _ in kwargs):
                        raise ExprError(f"parameter {key!r} given twice", tok.pos)
                    kwargs.append((key, self.keyword_value()))
                    kw_pos.append(tok.pos)
                elif kwargs:
                    raise ExprError("positional argument after keyword argument", tok.pos)
                else:
                    args.append(self.or_expr())
                sep = self.take()
                if self.is_op(sep, ")"):
                    break
                if sep.kind == "end":
                    raise ExprError(f"unclosed '(' of {name}()", lpar.pos)
                if not self.is_op(sep, ","):
                    raise ExprError(f"expected ',' or ')', found {_describe(sep)}", sep.pos)
        self.open_parens -= 1
        self.level -= 1
        node = Call(name, tuple(args), tuple(kwargs), tuple(kw_pos), pos=pos)
        return self.make(node, pos)

    def keyword_value(self) -> float:
        """The number after `name=`, optionally negative."""
        tok = self.take()
        sign = 1.0
        if self.is_op(tok, "-"):
            sign, tok = -1.0, self.take()
        if tok.kind != "num":
            raise ExprError("a keyword argument's value must be a number", tok.pos)
        return sign * self.number(tok)


def parse(
    source: str, *, max_length: int = 1000, max_depth: int = 32, max_nodes: int = 200
) -> Node:
    """Parse a condition expression into a tree of frozen nodes; ExprError on any fault."""
    if not isinstance(source, str):
        raise ExprError("expression must be a string", 0)
    if len(source) > max_length:
        raise ExprError(f"expression too long (max {max_length} characters)", max_length)
    toks = tokenize(source)
    if toks[0].kind == "end":
        raise ExprError("empty expression", 0)
    parser = _Parser(toks, max_depth, max_nodes)
    try:
        return parser.parse()
    except RecursionError:  # only reachable with a max_depth far above the default
        tok = parser.peek()
        raise ExprError("expression nested too deeply", tok.pos) from None
