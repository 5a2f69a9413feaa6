"""Condition expressions: grammar, precedence, errors with positions, limits, fuzz, evaluation.

The provider here is a small plain-numpy one written for this test: the grammar is under test,
not the indicators. Expected arrays are computed directly with numpy (and plain Python loops for
crosses), never taken from the evaluator.
"""

from __future__ import annotations

import ast
import builtins
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from engine.data.store import Bars
from engine.strategy.expr import (
    And,
    BinOp,
    Call,
    Compare,
    ExprError,
    Field,
    Neg,
    Not,
    Num,
    Or,
    check,
    evaluate,
    indicator_calls,
    parse,
)

# --- reference indicators (plain numpy) -------------------------------------------------------


def ref_sma(x: np.ndarray, w: int) -> np.ndarray:
    """Simple moving average, NaN until w values."""
    out = np.full(len(x), np.nan)
    if w <= len(x):
        c = np.concatenate([[0.0], np.cumsum(x)])
        out[w - 1 :] = (c[w:] - c[:-w]) / w
    return out


def ref_ema(x: np.ndarray, w: int, alpha: float | None = None) -> np.ndarray:
    """EMA seeded with the SMA of the first w finite values."""
    a = 2.0 / (w + 1) if alpha is None else alpha
    out = np.full(len(x), np.nan)
    finite = np.flatnonzero(np.isfinite(x))
    if len(finite) == 0 or finite[0] + w > len(x):
        return out
    s = finite[0] + w - 1
    out[s] = x[finite[0] : s + 1].mean()
    for i in range(s + 1, len(x)):
        out[i] = a * x[i] + (1 - a) * out[i - 1]
    return out


def ref_wilder(x: np.ndarray, w: int) -> np.ndarray:
    """Wilder smoothing (alpha = 1/w)."""
    return ref_ema(x, w, alpha=1.0 / w)


def ref_rsi(c: np.ndarray, w: int) -> np.ndarray:
    """Wilder RSI."""
    d = np.diff(c, prepend=np.nan)
    up = ref_wilder(np.where(d > 0, d, 0.0) + d * 0, w)
    dn = ref_wilder(np.where(d < 0, -d, 0.0) + d * 0, w)
    with np.errstate(all="ignore"):
        return 100 - 100 / (1 + up / dn)


def ref_tr(b: Bars) -> np.ndarray:
    """True range (NaN on the first bar)."""
    pc = np.concatenate([[np.nan], b.close[:-1]])
    return np.maximum(b.high - b.low, np.maximum(np.abs(b.high - pc), np.abs(b.low - pc)))


def ref_atr(b: Bars, w: int) -> np.ndarray:
    """Wilder ATR."""
    return ref_wilder(ref_tr(b), w)


def ref_adx(b: Bars, w: int) -> np.ndarray:
    """Wilder ADX."""
    up = np.diff(b.high, prepend=np.nan)
    dn = -np.diff(b.low, prepend=np.nan)
    nan = np.isnan(up)
    pdm = np.where((up > dn) & (up > 0), up, 0.0)
    mdm = np.where((dn > up) & (dn > 0), dn, 0.0)
    pdm[nan], mdm[nan] = np.nan, np.nan
    tr = ref_wilder(ref_tr(b), w)
    with np.errstate(all="ignore"):
        pdi = 100 * ref_wilder(pdm, w) / tr
        mdi = 100 * ref_wilder(mdm, w) / tr
        dx = 100 * np.abs(pdi - mdi) / (pdi + mdi)
    return ref_wilder(dx, w)


def ref_bb_lower(c: np.ndarray, w: int, k: float) -> np.ndarray:
    """Lower Bollinger band (population std)."""
    m = ref_sma(c, w)
    sq = ref_sma(c * c, w)
    return m - k * np.sqrt(np.maximum(sq - m * m, 0.0))


def ref_macd(c: np.ndarray, f: int, s: int) -> np.ndarray:
    """MACD line."""
    return ref_ema(c, f) - ref_ema(c, s)


# --- the test provider ------------------------------------------------------------------------


def _win(v: float) -> int:
    if v != int(v) or v < 1 or v > 10_000:
        raise ValueError(f"window must be a whole number from 1 to 10000, got {v:g}")
    return int(v)


# name -> (param names, defaults, min positional, accepts a series, fn(bars, series, params))
SPECS = {
    "sma": (("window",), (20,), 0, True, lambda b, s, p: ref_sma(s, _win(p[0]))),
    "ema": (("window",), (20,), 0, True, lambda b, s, p: ref_ema(s, _win(p[0]))),
    "rsi": (("window",), (14,), 0, False, lambda b, s, p: ref_rsi(b.close, _win(p[0]))),
    "atr": (("window",), (14,), 0, False, lambda b, s, p: ref_atr(b, _win(p[0]))),
    "adx": (("window",), (14,), 0, False, lambda b, s, p: ref_adx(b, _win(p[0]))),
    "bb_lower": (
        ("window", "k"),
        (20, 2.0),
        1,
        False,
        lambda b, s, p: ref_bb_lower(b.close, _win(p[0]), p[1]),
    ),
    "macd": (
        ("window_fast", "window_slow", "window_sign"),
        (12, 26, 9),
        0,
        False,
        lambda b, s, p: ref_macd(b.close, _win(p[0]), _win(p[1])),
    ),
    "macd_signal": (
        ("window_fast", "window_slow", "window_sign"),
        (12, 26, 9),
        0,
        False,
        lambda b, s, p: ref_ema(ref_macd(b.close, _win(p[0]), _win(p[1])), _win(p[2])),
    ),
}


class NumpyProvider:
    """A plain-numpy indicator provider that records every compute call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[float, ...], dict[str, float], int]] = []

    def has(self, name: str) -> bool:
        """Whether the indicator exists."""
        return name in SPECS

    def arity(self, name: str) -> tuple[int, int]:
        """Min and max positional number params."""
        return SPECS[name][2], len(SPECS[name][0])

    def param_names(self, name: str) -> tuple[str, ...]:
        """Param names in positional order."""
        return SPECS[name][0]

    def compute(self, name, bars, args, kwargs, series):
        """Compute the indicator; ValueError on a bad parameter."""
        names, defaults, _, takes_series, fn = SPECS[name]
        self.calls.append((name, args, dict(kwargs), len(series)))
        params = list(defaults)
        params[: len(args)] = args
        for k, v in kwargs.items():
            params[names.index(k)] = v
        if series and not takes_series:
            raise ValueError(f"{name} takes no series")
        src = series[0] if series else bars.close
        return fn(bars, src, params)


def make_bars(n: int, seed: int = 7) -> Bars:
    """Mean-reverting OHLCV bars around 100 with occasional volume spikes."""
    rng = np.random.default_rng(seed)
    close = np.empty(n)
    x = 100.0
    for i, e in enumerate(rng.normal(0, 1.0, n)):
        x += 0.02 * (100.0 - x) + e
        close[i] = x
    open_ = np.concatenate([close[:1], close[:-1]]) + rng.normal(0, 0.3, n)
    high = np.maximum(open_, close) + rng.exponential(0.5, n)
    low = np.minimum(open_, close) - rng.exponential(0.5, n)
    volume = rng.lognormal(10, 0.3, n) * np.where(rng.random(n) < 0.05, 4.0, 1.0)
    ts = np.arange(n, dtype=np.int64) * 60_000_000_000
    return Bars(ts, open_, high, low, close, volume)


BARS = make_bars(1500, seed=6)


def gt(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """a > b with NaN False."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    return np.array([x > y for x, y in zip(a, b, strict=True)], dtype=bool)


def lt(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """a < b with NaN False."""
    return gt(b, a) if np.ndim(b) else gt(np.full(len(a), b), a)


def cross_loop(a: np.ndarray, b: np.ndarray, above: bool) -> np.ndarray:
    """Crosses with a plain Python loop."""
    out = np.zeros(len(a), dtype=bool)
    for i in range(1, len(a)):
        if above:
            out[i] = bool(a[i - 1] <= b[i - 1] and a[i] > b[i])
        else:
            out[i] = bool(a[i - 1] >= b[i - 1] and a[i] < b[i])
    return out


B = BARS
EXAMPLES = {
    "rsi(14) < 30": lambda: lt(ref_rsi(B.close, 14), 30),
    "close > sma(50)": lambda: gt(B.close, ref_sma(B.close, 50)),
    "close > sma50": lambda: gt(B.close, ref_sma(B.close, 50)),
    "cross_above(ema(12), ema(26))": lambda: cross_loop(
        ref_ema(B.close, 12), ref_ema(B.close, 26), True
    ),
    "cross_below(close, bb_lower(20, 2))": lambda: cross_loop(
        B.close, ref_bb_lower(B.close, 20, 2.0), False
    ),
    "rsi(14) < 30 and close > sma(200)": lambda: (
        lt(ref_rsi(B.close, 14), 30) & gt(B.close, ref_sma(B.close, 200))
    ),
    "not (adx(14) > 25) or volume > 2 * sma(volume, 20)": lambda: (
        ~gt(ref_adx(B, 14), 25) | gt(B.volume, 2 * ref_sma(B.volume, 20))
    ),
    "(high - low) / close > 0.02": lambda: gt((B.high - B.low) / B.close, 0.02),
    "macd(12, 26, 9) > macd_signal(12, 26, 9)": lambda: gt(
        ref_macd(B.close, 12, 26), ref_ema(ref_macd(B.close, 12, 26), 9)
    ),
    "close > open": lambda: gt(B.close, B.open),
    "-close < -100": lambda: lt(-B.close, -100),
    "abs(close - open) > atr(14)": lambda: gt(np.abs(B.close - B.open), ref_atr(B, 14)),
    "sma(window=20) > 1.5": lambda: gt(ref_sma(B.close, 20), 1.5),
    "ema12 >= ema(26) and rsi14 <= 70": lambda: (
        ~lt(ref_ema(B.close, 12), ref_ema(B.close, 26))
        & ~np.isnan(ref_ema(B.close, 26))
        & ~gt(ref_rsi(B.close, 14), 70)
        & ~np.isnan(ref_rsi(B.close, 14))
    ),
    "shift(close, 3) < close": lambda: lt(
        np.concatenate([np.full(3, np.nan), B.close[:-3]]), B.close
    ),
    "min(open, close) - low > max(high, 101) - high": lambda: gt(
        np.minimum(B.open, B.close) - B.low, np.maximum(B.high, 101) - B.high
    ),
    "cross_above(close, 100)": lambda: cross_loop(B.close, np.full(len(B.close), 100.0), True),
    "cross_above(ema12, ema26)": lambda: cross_loop(
        ref_ema(B.close, 12), ref_ema(B.close, 26), True
    ),
    "sma(volume, window=10) < volume": lambda: lt(ref_sma(B.volume, 10), B.volume),
    "rsi < 30 or rsi > 70": lambda: lt(ref_rsi(B.close, 14), 30) | gt(ref_rsi(B.close, 14), 70),
}


@pytest.mark.parametrize("source", list(EXAMPLES))
def test_examples_parse_check_and_evaluate(source: str) -> None:
    node = parse(source)
    provider = NumpyProvider()
    check(node, provider)
    expected = EXAMPLES[source]()
    got = evaluate(node, BARS, provider)
    assert got.dtype == bool and got.shape == (len(BARS),)
    np.testing.assert_array_equal(got, expected)
    if source != "sma(window=20) > 1.5":  # true from the warm-up on, by construction
        assert expected.any() and not expected.all(), "example should be non-trivial on BARS"


# --- structure, precedence, associativity ----------------------------------------------------

c, o, h, lo = Field("close"), Field("open"), Field("high"), Field("low")


def cmp(left, right, op=">"):
    """A comparison node."""
    return Compare(op, left, right)


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("close + open * high > 1", cmp(BinOp("+", c, BinOp("*", o, h)), Num(1.0))),
        ("close - open - high > 1", cmp(BinOp("-", BinOp("-", c, o), h), Num(1.0))),
        ("close / open / high > 1", cmp(BinOp("/", BinOp("/", c, o), h), Num(1.0))),
        ("close * open + high > 1", cmp(BinOp("+", BinOp("*", c, o), h), Num(1.0))),
        ("-close * open > 1", cmp(BinOp("*", Neg(c), o), Num(1.0))),
        ("- -close > 1", cmp(Neg(Neg(c)), Num(1.0))),
        ("close > -1", cmp(c, Num(-1.0))),
        ("(close + open) * high > 1", cmp(BinOp("*", BinOp("+", c, o), h), Num(1.0))),
        (
            "close > 1 or open > 1 and high > 1",
            Or((cmp(c, Num(1.0)), And((cmp(o, Num(1.0)), cmp(h, Num(1.0)))))),
        ),
        (
            "not close > 1 and open > 1",
            And((Not(cmp(c, Num(1.0))), cmp(o, Num(1.0)))),
        ),
        (
            "not not close > 1",
            Not(Not(cmp(c, Num(1.0)))),
        ),
        (
            "close > 1 and open > 1 and high > 1",
            And((cmp(c, Num(1.0)), cmp(o, Num(1.0)), cmp(h, Num(1.0)))),
        ),
        ("close + 1 > open * 2", cmp(BinOp("+", c, Num(1.0)), BinOp("*", o, Num(2.0)))),
        ("sma50 > sma(50)", cmp(Call("sma", (Num(50.0),)), Call("sma", (Num(50.0),)))),
        ("bb_lower_20 > low", cmp(Call("bb_lower", (Num(20.0),)), lo)),
        ("rsi > 1", cmp(Call("rsi"), Num(1.0))),
        (
            "sma(volume, 20) > sma(window=20)",
            cmp(Call("sma", (Field("volume"), Num(20.0))), Call("sma", (), (("window", 20.0),))),
        ),
        ("close > 1e2", cmp(c, Num(100.0))),
        ("close > 1.5E+2", cmp(c, Num(150.0))),
        ("close > .5", cmp(c, Num(0.5))),
        ("close > 5.", cmp(c, Num(5.0))),
        ("close > 25e-1", cmp(c, Num(2.5))),
    ],
)
def test_precedence_and_associativity(source: str, tree: object) -> None:
    assert parse(source) == tree


def test_precedence_numerically() -> None:
    provider = NumpyProvider()
    got = evaluate(parse("close - open - high * 2 / low > 0"), BARS, provider)
    np.testing.assert_array_equal(got, gt(((B.close - B.open) - ((B.high * 2) / B.low)), 0))


def test_case_insensitive_keywords_and_names() -> None:
    assert parse("RSI(14) < 30 AND Close > SMA(Window=200)") == parse(
        "rsi(14) < 30 and close > sma(window=200)"
    )
    assert parse("NOT close > 1 Or OPEN > 2") == parse("not close > 1 or open > 2")
    assert parse("SMA50 > EMA12") == parse("sma(50) > ema(12)")


def test_positions_ignored_by_equality_but_recorded() -> None:
    a, b = parse("close>1"), parse("  close  >  1 ")
    assert a == b and hash(a) == hash(b)
    assert isinstance(b, Compare)
    assert (b.pos, b.left.pos, b.right.pos) == (2, 2, 12)
    paren = parse("x + (close - open) > 1")
    assert isinstance(paren, Compare) and isinstance(paren.left, BinOp)
    assert paren.left.right.pos == 4


# --- errors with exact positions -------------------------------------------------------------

PARSE_ERRORS = [
    ("", 0, "empty expression"),
    ("   \n ", 0, "empty expression"),
    ("close > 1 $", 10, "unexpected character '$'"),
    ("close ≥ 1", 6, "unexpected character '≥'"),
    ("close > 1; import os", 9, "unexpected character ';'"),
    ("(close > open", 0, "unclosed '('"),
    ("((close > open)", 0, "unclosed '('"),
    ("close > open)", 12, "unmatched ')'"),
    ("close > )", 8, "unmatched ')'"),
    ("sma(14 > close", 3, "unclosed '(' of sma()"),
    ("sma(14 15) > 1", 7, "expected ',' or ')', found '15'"),
    ("(close > 1 2)", 11, "expected ')', found '2'"),
    ("close > > 1", 8, "missing operand before '>'"),
    ("close >", 7, "missing operand at end of expression"),
    ("rsi(14) < 30 and", 16, "missing operand at end of expression"),
    ("and close > 1", 0, "missing operand before 'and'"),
    ("() > 1", 1, "missing operand before ')'"),
    ("sma(14,) > 1", 7, "missing operand before ')'"),
    ("close open", 6, "unexpected 'open'"),
    ("close = 1", 6, "unexpected '='"),
    ("a < b < c", 6, "comparisons cannot be chained"),
    ("close > 1 == 1", 10, "comparisons cannot be chained"),
    ("close(3) > 1", 0, "'close' is a bar field, not a function"),
    ("sma(window=20, 5) > 1", 15, "positional argument after keyword argument"),
    ("sma(window=x) > 1", 11, "a keyword argument's value must be a number"),
    ("sma(window=1, Window=2) > 1", 14, "parameter 'window' given twice"),
    ("1e999 > close", 0, "number '1e999' out of range"),
    ("14abc > 1", 0, "malformed number"),
    ("close > 2e", 8, "malformed number"),
    ("close > 1.2.3", 8, "malformed number '1.2.'"),
    ("close > +1", 8, "missing operand before '+'"),
    ("__import__('os')", 11, 'unexpected character "\'"'),
]


@pytest.mark.parametrize(("source", "position", "message"), PARSE_ERRORS)
def test_parse_errors(source: str, position: int, message: str) -> None:
    with pytest.raises(ExprError) as info:
        parse(source)
    err = info.value
    assert err.position == position
    assert err.message.startswith(message)
    assert str(err) == f"{err.message} at position {position}"


CHECK_ERRORS = [
    ("close and rsi(14)", 0, "'and' needs conditions"),
    ("close > 1 or 2", 13, "'or' needs conditions"),
    ("not close", 4, "'not' needs conditions"),
    ("rsi(14) + (close > open) > 1", 10, "'+' needs numbers"),
    ("-(close > open) < 1", 1, "'-' needs numbers"),
    ("(close > open) > 1", 0, "'>' needs numbers"),
    ("rsi(14)", 0, "expression must be a condition"),
    ("close", 0, "expression must be a condition"),
    ("  1", 2, "expression must be a condition"),
    ("foo(3) > 1", 0, "unknown indicator 'foo'"),
    ("close > foo", 8, "unknown indicator 'foo'"),
    ("__import__(os) > 1", 0, "unknown indicator '__import__'"),
    ("close > sma50x", 8, "unknown indicator 'sma50x'"),
    ("sma(1, 2) > 1", 7, "sma() takes at most 1 parameter"),
    ("sma(close, close) > 1", 11, "sma() parameters must be numbers"),
    ("sma(close > open, 3) > 1", 4, "sma() needs a number series"),
    ("sma(span=3) > 1", 4, "sma() has no parameter 'span'"),
    ("sma(20, window=3) > 1", 8, "parameter 'window' given twice"),
    ("bb_lower(k=2) > 1", 0, "bb_lower() is missing parameter 'window'"),
    ("cross_above(close)", 0, "cross_above() takes 2 argument(s), got 1"),
    ("cross_above(close, open > 1)", 19, "cross_above() needs a number series"),
    ("close > abs(x=1)", 12, "abs() takes no keyword arguments"),
    ("shift(close, 0) > 1", 13, "shift() needs a whole number >= 1"),
    ("shift(close, 1.5) > 1", 13, "shift() needs a whole number >= 1"),
    ("shift(close, open) > 1", 13, "shift() needs a whole number >= 1"),
    ("shift(close, 2)", 0, "expression must be a condition"),
    ("max(close > 1, 2) > 1", 4, "max() needs a number series"),
]


@pytest.mark.parametrize(("source", "position", "message"), CHECK_ERRORS)
def test_check_errors(source: str, position: int, message: str) -> None:
    node = parse(source)
    with pytest.raises(ExprError) as info:
        check(node, NumpyProvider())
    assert info.value.position == position
    assert info.value.message.startswith(message), info.value.message
    with pytest.raises(ExprError):
        evaluate(node, BARS, NumpyProvider())


def test_provider_errors_become_expr_errors_at_the_call() -> None:
    with pytest.raises(ExprError) as info:
        evaluate(parse("close > 1 and sma(0) > 1"), BARS, NumpyProvider())
    assert info.value.position == 14 and "window must be" in info.value.message
    with pytest.raises(ExprError) as info:
        evaluate(parse("rsi(close, 14) > 1"), BARS, NumpyProvider())
    assert info.value.position == 0 and "takes no series" in info.value.message


def test_wrong_shape_from_provider() -> None:
    class Bad(NumpyProvider):
        def compute(self, name, bars, args, kwargs, series):
            return np.zeros(3)

    with pytest.raises(ExprError, match=r"returned shape \(3,\)") as info:
        evaluate(parse("close > sma(5)"), BARS, Bad())
    assert info.value.position == 8


# --- limits ----------------------------------------------------------------------------------


def test_length_limit() -> None:
    ok = "close > 1" + " " * (1000 - 9)
    assert len(ok) == 1000 and parse(ok) == parse("close > 1")
    with pytest.raises(ExprError) as info:
        parse(ok + " ")
    assert info.value.position == 1000 and "too long" in info.value.message
    with pytest.raises(ExprError) as info:
        parse("close > 1", max_length=5)
    assert info.value.position == 5


def test_one_megabyte_input_fails_fast() -> None:
    # "Fast" without a clock (shared machines are noisy): the fault is found at the length
    # limit, so nothing past position 1000 was read.
    for big in ("(" * 1_000_000, "close > 1 and " * 75_000, "x" * 1_000_000):
        with pytest.raises(ExprError) as info:
            parse(big)
        assert info.value.position == 1000


@pytest.mark.parametrize("prefix", ["(", "-", "not ", "sma(", "abs(", "cross_above(close, ", "-("])
def test_deep_nesting_fails_fast_without_recursion_error(prefix: str) -> None:
    src = prefix * 10_000 + "close"
    with pytest.raises(ExprError) as info:
        parse(src, max_length=10**7)
    assert "nested too deeply" in info.value.message
    assert info.value.position <= 33 * len(prefix)  # at the 33rd level at the latest


def test_recursion_error_is_converted_even_with_huge_limits() -> None:
    with pytest.raises(ExprError, match="nested too deeply"):
        parse("(" * 50_000 + "close > 1" + ")" * 50_000, max_length=10**7, max_depth=10**7)


def test_depth_boundary() -> None:
    def nested(k: int) -> str:
        return "(" * k + "close > 1" + ")" * k

    parse(nested(31))  # parentheses themselves don't make nodes; the comparison is depth 2
    with pytest.raises(ExprError) as info:
        parse(nested(33))
    assert info.value.position == 32
    # a long arithmetic chain is a deep tree: 30 additions + the comparison = depth 32
    parse("close" + " + close" * 30 + " > 1")
    with pytest.raises(ExprError) as info:  # 31 additions: the comparison is at depth 33
        parse("close" + " + close" * 31 + " > 1")
    assert info.value.position == len("close" + " + close" * 31) + 1
    with pytest.raises(ExprError) as info:
        parse("close + close > 1", max_depth=2)
    assert info.value.position == 14  # the comparison is at depth 3


def test_node_limit() -> None:
    part = "close > 1"
    # 66 comparisons x 3 nodes + the 'and' node = 199 nodes: fits
    parse(" and ".join([part] * 66))
    src = " and ".join([part] * 67)
    with pytest.raises(ExprError) as info:
        parse(src)
    # the 67th comparison node is the 201st node: reported at its '>'
    assert info.value.position == 66 * len(part + " and ") + len("close ")
    assert "too large" in info.value.message
    with pytest.raises(ExprError) as info:
        parse("close > 1 and open > 2", max_nodes=4)
    assert info.value.position == 21  # the literal 2 is the 5th node


# --- fuzz ------------------------------------------------------------------------------------

VOCAB = [
    "close",
    "open",
    "high",
    "low",
    "volume",
    "sma",
    "ema",
    "rsi",
    "atr",
    "adx",
    "bb_lower",
    "macd",
    "macd_signal",
    "sma50",
    "rsi14",
    "ema12",
    "foo",
    "cross_above",
    "cross_below",
    "abs",
    "min",
    "max",
    "shift",
    "window",
    "k",
    "and",
    "or",
    "not",
    "AND",
    "Not",
    "(",
    "(",
    ")",
    ")",
    ",",
    "=",
    "<",
    ">",
    "<=",
    ">=",
    "==",
    "!=",
    "+",
    "-",
    "*",
    "/",
    "1",
    "14",
    "2.5",
    "1e3",
    "0",
    ".5",
    "-3",
    "__import__",
    "'",
    '"',
    ";",
    ".",
    "$",
]


def _random_num(rng: random.Random, depth: int = 0) -> str:
    """A random number-typed expression (params may still be out of range)."""
    if depth > 3 or rng.random() < 0.3:
        return rng.choice(["close", "open", "volume", "14", "2.5", "sma50", "rsi", "ema(12)"])
    a, b = _random_num(rng, depth + 1), _random_num(rng, depth + 1)
    kind = rng.randrange(5)
    if kind == 0:
        return f"{a} {rng.choice('+-*/')} {b}"
    if kind == 1:
        return f"-({a})"
    if kind == 2:
        return f"{rng.choice(['min', 'max'])}({a}, {b})"
    if kind == 3:
        return f"shift({a}, {rng.choice(['1', '3', '0', '2.5'])})"
    name = rng.choice(["sma", "ema", "rsi", "bb_lower", "macd", "abs"])
    return f"{name}({rng.choice([a, str(rng.randrange(-2, 40))])})"


def _random_bool(rng: random.Random, depth: int = 0) -> str:
    """A random condition, sometimes with a type error."""
    kind = rng.randrange(5) if depth < 3 else 0
    if kind == 0:
        op = rng.choice(["<", ">", "<=", ">=", "==", "!="])
        return f"{_random_num(rng, depth + 1)} {op} {_random_num(rng, depth + 1)}"
    if kind == 1:
        a, b = _random_bool(rng, depth + 1), _random_bool(rng, depth + 1)
        return f"({a}) {rng.choice(['and', 'or'])} ({b})"
    if kind == 2:
        return f"not ({_random_bool(rng, depth + 1)})"
    if kind == 3:
        name = rng.choice(["cross_above", "cross_below"])
        return f"{name}({_random_num(rng, depth + 1)}, {_random_num(rng, depth + 1)})"
    return _random_num(rng, depth + 1)  # a type error at the top


def _try(source: str, provider: NumpyProvider, bars: Bars) -> str:
    """Run the whole pipeline; return how far it got. Only ExprError may escape as a failure."""
    try:
        node = parse(source)
    except ExprError:
        return "parse"
    try:
        check(node, provider)
        evaluate(node, bars, provider)
    except ExprError:
        return "check"
    return "ok"


def test_fuzz_only_expr_errors() -> None:
    rng = random.Random(20261121)
    provider = NumpyProvider()
    bars = make_bars(60, seed=1)
    outcomes: dict[str, int] = {"parse": 0, "check": 0, "ok": 0}
    alphabet = "closeandrsm()<>=!+-*/.,0123456789 _eEnotORé€\x00\n\t'\"[]{}#;:\\"
    for i in range(2000):
        length = rng.randrange(0, 40)
        if i % 2:
            raw = bytes(rng.randrange(256) for _ in range(length))
            src = raw.decode("utf-8", errors="replace") if i % 4 == 1 else raw.decode("latin-1")
        else:
            src = "".join(rng.choice(alphabet) for _ in range(length))
        outcomes[_try(src, provider, bars)] += 1
    for _ in range(2000):
        soup = " ".join(rng.choice(VOCAB) for _ in range(rng.randrange(1, 14)))
        outcomes[_try(soup, provider, bars)] += 1
    for _ in range(2000):
        src = _random_bool(rng)
        if rng.random() < 0.3:  # mutate: drop or duplicate a character
            j = rng.randrange(len(src))
            src = src[:j] + src[j + 1 :] if rng.random() < 0.5 else src[:j] + src[j] + src[j:]
        outcomes[_try(src, provider, bars)] += 1
    assert outcomes["ok"] > 100 and outcomes["check"] > 100 and outcomes["parse"] > 1000


# --- nothing is eval'ed ----------------------------------------------------------------------


def test_nothing_is_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec/compile/__import__ called")

    real_import = builtins.__import__
    hostile = [
        "__import__('os').system('true')",
        "__import__(os) > 1",
        "open('/etc/passwd') > 1",
        "eval(close) > 1",
        "exec > 1",
        "close.__class__ > 1",
        "[c for c in ()]",
        "lambda: 1",
        "close > 1 if 1 else 0",
    ]
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", forbidden)
    imported: list[str] = []

    def spy_import(name: str, *args: object, **kwargs: object) -> object:
        imported.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", spy_import)
    for src in hostile:
        with pytest.raises(ExprError):
            evaluate(parse(src), BARS, NumpyProvider())
    for src in EXAMPLES:
        evaluate(parse(src), BARS, NumpyProvider())
    assert "os" not in imported


def test_source_has_no_dynamic_code_execution() -> None:
    root = Path(__file__).resolve().parents[3] / "engine" / "strategy"
    for name in ("expr.py", "expr_parse.py", "expr_eval.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__", "getattr"}
                assert node.func.id not in {"globals", "locals", "vars"}, name


# --- evaluation semantics --------------------------------------------------------------------


def test_nan_comparisons_are_false() -> None:
    nan_close = BARS.close.copy()
    nan_close[[0, 5, 9]] = np.nan
    bars = Bars(BARS.ts, BARS.open, BARS.high, BARS.low, nan_close, BARS.volume)
    isnan = np.isnan(nan_close)
    p = NumpyProvider()
    for op in ("<", "<=", ">", ">=", "==", "!="):
        got = evaluate(parse(f"close {op} open"), bars, p)
        assert not got[isnan].any(), op
    np.testing.assert_array_equal(evaluate(parse("close == close"), bars, p), ~isnan)
    np.testing.assert_array_equal(
        evaluate(parse("close != open"), bars, p), (nan_close != BARS.open) & ~isnan
    )
    # 'not' negates the (False) comparison, as documented
    np.testing.assert_array_equal(evaluate(parse("not close > -1e9"), bars, p), isnan)


def test_crosses_are_false_on_the_first_bar_and_around_nan() -> None:
    a = np.array([1.0, 3.0, np.nan, 3.0, 1.0, 3.0, 0.0])
    b = np.full(7, 2.0)
    bars = Bars(np.arange(7, dtype=np.int64), b, b, b, a, b)
    up = evaluate(parse("cross_above(close, open)"), bars, NumpyProvider())
    dn = evaluate(parse("cross_below(close, open)"), bars, NumpyProvider())
    np.testing.assert_array_equal(up, [False, True, False, False, False, True, False])
    np.testing.assert_array_equal(dn, [False, False, False, False, True, False, True])
    # a series starting above never "crosses" on bar 0
    assert not evaluate(parse("cross_above(close, 0)"), bars, NumpyProvider())[0]


def test_shift_of_a_condition_and_constants() -> None:
    p = NumpyProvider()
    cond = gt(B.close, B.open)
    got = evaluate(parse("shift(close > open, 2)"), BARS, p)
    np.testing.assert_array_equal(got, np.concatenate([[False, False], cond[:-2]]))
    assert evaluate(parse("1 < 2"), BARS, p).all()
    assert not evaluate(parse("2 < 1"), BARS, p).any()
    assert evaluate(parse("shift(close, 5000) > 0"), BARS, p).sum() == 0
    empty = make_bars(0)
    assert evaluate(parse("close > sma(3) and 1 < 2"), empty, p).shape == (0,)


def test_series_argument_goes_to_series() -> None:
    p = NumpyProvider()
    evaluate(parse("sma(volume, 20) > 1 and sma(-close, 5) < 0 and sma(open, window=3) > 0"), B, p)
    assert p.calls == [
        ("sma", (20.0,), {}, 1),
        ("sma", (5.0,), {}, 1),
        ("sma", (), {"window": 3.0}, 1),
    ]


def test_identical_calls_are_computed_once_per_evaluate() -> None:
    p = NumpyProvider()
    src = "sma(20) > 100 and close > sma(window=20) or sma20 < 1e9 and sma(20) > 0"
    got = evaluate(parse(src), BARS, p)
    m = ref_sma(B.close, 20)
    np.testing.assert_array_equal(got, (gt(m, 100) & gt(B.close, m)) | (lt(m, 1e9) & gt(m, 0)))
    assert [name for name, *_ in p.calls] == ["sma"]
    p.calls.clear()
    evaluate(parse("sma(close, 20) > 1 and sma(volume, 20) > 1 and sma(close, 20) < 1e9"), B, p)
    assert len(p.calls) == 2
    evaluate(parse("sma(20) > 1"), B, p)
    assert len(p.calls) == 3  # the cache lives for one evaluate call


def test_indicator_calls() -> None:
    node = parse(
        "cross_above(ema12, ema(26)) and rsi(14) < 30 and ema(12) > sma(window=20) "
        "and sma(volume, 20) > abs(macd)"
    )
    assert indicator_calls(node) == [
        ("ema", (12.0,), ()),
        ("ema", (26.0,), ()),
        ("rsi", (14.0,), ()),
        ("sma", (), (("window", 20.0),)),
        ("sma", (20.0,), ()),
        ("macd", (), ()),
    ]
    assert indicator_calls(parse("close > open")) == []


def test_nodes_and_errors_pickle() -> None:
    node = parse("not (adx(14) > 25) or volume > 2 * sma(volume, 20)")
    again = pickle.loads(pickle.dumps(node))
    assert again == node
    np.testing.assert_array_equal(
        evaluate(again, BARS, NumpyProvider()), evaluate(node, BARS, NumpyProvider())
    )
    err = pickle.loads(pickle.dumps(ExprError("boom", 7)))
    assert isinstance(err, ValueError) and (err.message, err.position) == ("boom", 7)
    assert str(err) == "boom at position 7"
    with pytest.raises(Exception, match=r"frozen|cannot assign"):
        node.pos = 3  # type: ignore[misc]
