"""Hypothesis generators of expressions and strategy objects, valid and broken, for the fuzz tests."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import RESOLUTIONS, Bars, resample
from engine.strategy.catalog import SIGNALS
from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.conditions import compile_text
from engine.strategy.evaluate import evaluate as evaluate_strategy
from engine.strategy.expr import ExprError, check, evaluate, parse
from engine.strategy.indicators import INDICATORS
from engine.strategy.lookback import warmup_bars
from engine.strategy.provider import PROVIDER

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def bounded(examples: int) -> settings:
    """Derandomized settings with this many examples."""
    return settings(SETTINGS, max_examples=examples)


# 400 hourly bars resampled from real-looking minute bars: enough for 4h and 1d conditions.
HOURLY: Bars = resample(
    generate_bars(DEMO_SYMBOLS[2], 1_704_067_200_000_000_000, 400 * 60, np.random.default_rng(5)),
    RESOLUTIONS["1h"],
)


FIELDS = ["open", "high", "low", "close", "volume", "Close", "VOLUME"]


ZERO_SERIES = ["(close - close)", "0 * volume", "(close - open)"]  # zeros: x / 0 in a kernel


INDICATOR_NAMES = sorted(INDICATORS)


BUILTINS = ["cross_above", "cross_below", "abs", "min", "max", "shift"]


UNKNOWN = ["foo", "nan", "inf", "Infinity", "__import__", "eval", "sma_", "x1", "_", "smaa"]


PARAM_NAMES = sorted({k for spec in INDICATORS.values() for k, _ in spec.params} | {"k", "n"})


ODD_NUMBERS = [
    "0", "1", "2", "14", "50", "5000", "5001", "2000", "1e308", "1e309", "1e-400", "0.5",
    ".5", "5.", "2.5", "1e3", "1E3", "0e0", "00012", "1_000", "9" * 400, "1.0000000000000002",
    "4.9e-324", "1.7976931348623157e308",
]  # fmt: skip


NUMBER = re.compile(r"-?[0-9.]+")  # a literal, which an indicator call takes as a param


numbers = st.one_of(
    st.integers(-10, 6000).map(str),
    st.sampled_from(ODD_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def call(name: str, args: list[str]) -> str:
    return f"{name}({', '.join(args)})"


@st.composite
def num_expr(draw: st.DrawFn, depth: int = 0) -> str:
    """A number-typed expression (its params may be out of range, its names unknown)."""
    kind = draw(st.integers(0, 3)) if depth >= 3 else draw(st.integers(0, 10))
    if kind == 0:
        return draw(numbers)
    if kind == 1:
        return draw(st.sampled_from(FIELDS + ZERO_SERIES))
    if kind == 2:  # a bare indicator, a shorthand (sma50, ema_12) or an unknown name
        name = draw(st.sampled_from(INDICATOR_NAMES + UNKNOWN))
        suffix = draw(st.sampled_from(["", "", "14", "_20", "0", "5001", "1e3"]))
        return name + suffix
    if kind == 3:
        return call(draw(st.sampled_from(INDICATOR_NAMES)), [])
    if kind in (4, 5):  # an indicator call: optional series, numbers, keywords
        name = draw(st.sampled_from(INDICATOR_NAMES + UNKNOWN[:2]))
        args: list[str] = []
        if draw(st.booleans()):
            args.append(draw(num_expr(depth + 1)))
        args += draw(st.lists(numbers, max_size=3))
        params = [k for k, _ in INDICATORS[name].params] if name in INDICATORS else []
        keys = draw(st.lists(st.sampled_from(params + PARAM_NAMES), max_size=3, unique=True))
        args += [f"{k}={draw(numbers)}" for k in keys]
        return call(name, args)
    if kind == 6:
        op = draw(st.sampled_from("+-*/"))
        return f"{draw(num_expr(depth + 1))} {op} {draw(num_expr(depth + 1))}"
    if kind == 7:
        return f"-({draw(num_expr(depth + 1))})"
    if kind == 8:
        fn = draw(st.sampled_from(["abs", "min", "max"]))
        arity = {"abs": 1, "min": 2, "max": 2}[fn] + draw(st.sampled_from([0, 0, 0, 1, -1]))
        return call(fn, [draw(num_expr(depth + 1)) for _ in range(max(arity, 0))])
    if kind == 9:
        return call("shift", [draw(num_expr(depth + 1)), draw(numbers)])
    return f"({draw(num_expr(depth + 1))})"


@st.composite
def bool_expr(draw: st.DrawFn, depth: int = 0) -> str:
    """A condition, or now and then a number (a type error at the top)."""
    kind = draw(st.integers(0, 2)) if depth >= 3 else draw(st.integers(0, 7))
    if kind in (0, 1):
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return f"{draw(num_expr(depth + 1))} {op} {draw(num_expr(depth + 1))}"
    if kind == 2:
        name = draw(st.sampled_from(["cross_above", "cross_below"]))
        return call(name, [draw(num_expr(depth + 1)), draw(num_expr(depth + 1))])
    if kind == 3:
        word = draw(st.sampled_from(["and", "or", "AND", "Or"]))
        return f"({draw(bool_expr(depth + 1))}) {word} ({draw(bool_expr(depth + 1))})"
    if kind == 4:
        return f"not ({draw(bool_expr(depth + 1))})"
    if kind == 5:
        return call("shift", [draw(bool_expr(depth + 1)), draw(numbers)])
    if kind == 6:
        return f"({draw(bool_expr(depth + 1))})"
    return draw(num_expr(depth + 1))


TOKENS = [
    *FIELDS, *INDICATOR_NAMES[:6], *BUILTINS, *UNKNOWN[:4], "and", "or", "not", "(", ")", ",",
    "=", "<", ">", "<=", ">=", "==", "!=", "+", "-", "*", "/", "1", "1e308", ".", "'", "\x00",
    "é", "€", "\n", "window=", "sma(", "))", "((",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A grammar expression with a few random edits."""
    text = draw(bool_expr())
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        edit = draw(st.integers(0, 4))
        if edit == 0:
            text = text[:i] + text[i + 1 :]
        elif edit == 1:
            text = text[:i] + text[i : i + 2] + text[i:]
        elif edit == 2:
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
        elif edit == 3:
            text = text[:i]
        else:
            text = text[:i] + draw(st.text(max_size=3)) + text[i:]
    return text


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(),  # NaN and infinities too: the server's JSON parser admits them
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def pick(
    draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], on: bool
) -> Any:
    """`good`, or with `on` about one time in eight `bad` (a middle value: hypothesis favours
    the ends of a range)."""
    if on and draw(st.integers(0, 15)) in (7, 8):
        return draw(bad)
    return draw(good)


def in_bounds(spec: Any) -> st.SearchStrategy[Any]:
    """A value inside a param's bounds: small ones mostly, the extremes too."""
    lo, hi = spec.minimum, spec.maximum
    if spec.type is int:
        return st.one_of(st.integers(lo, min(hi, lo + 60)), st.sampled_from([lo, hi]))
    return st.one_of(st.floats(lo, hi), st.sampled_from([lo, hi]))


def out_of_bounds(spec: Any) -> st.SearchStrategy[Any]:
    lo, hi = spec.minimum, spec.maximum
    return st.one_of(st.sampled_from([lo - 1, hi + 1, hi * 10, 0.5 + lo]), JUNK)


def ordered(spec: Any, values: dict[str, Any], given_keys: list[str]) -> dict[str, Any]:
    """Make `small < large` hold for the spec's ordered pairs, defaults included."""
    full = {**{k: p.default for k, p in spec.params.items()}, **values}
    for small, large in spec.ordered:
        if full[small] >= full[large]:
            if large in given_keys:
                full[large] = full[small] + 1
            else:
                full[small] = full[large] - 1
    return {k: full[k] for k in given_keys}


class Params:
    """An indicator spec's params as a dict (the catalog's are already one)."""

    def __init__(self, spec: Any) -> None:
        self.params = dict(spec.params)
        self.ordered = spec.ordered


@st.composite
def good_num(draw: st.DrawFn, depth: int = 0) -> str:
    """A number series that checks: fields, in-range indicator calls, arithmetic, built-ins."""
    kind = draw(st.integers(0, 2 if depth >= 2 else 6))
    if kind == 0:
        return draw(st.sampled_from([*FIELDS[:5], *ZERO_SERIES, "1", "0.5", "100", "-2"]))
    if kind in (1, 2):
        name = draw(st.sampled_from(INDICATOR_NAMES))
        spec = Params(INDICATORS[name])
        keys = list(spec.params)[: draw(st.integers(0, len(spec.params)))]
        values = ordered(spec, {k: draw(in_bounds(spec.params[k])) for k in keys}, keys)
        args = [repr(values[k]) for k in keys]
        if INDICATORS[name].source == ("close",) and depth < 2 and draw(st.booleans()):
            series = draw(good_num(depth + 1).filter(lambda t: not NUMBER.fullmatch(t)))
            args.insert(0, series)
        return call(name, args)
    if kind == 3:
        op = draw(st.sampled_from("+-*/"))
        return f"({draw(good_num(depth + 1))}) {op} ({draw(good_num(depth + 1))})"
    if kind == 4:
        fn = draw(st.sampled_from(["min", "max"]))
        return call(fn, [draw(good_num(depth + 1)), draw(good_num(depth + 1))])
    if kind == 5:
        return call("abs", [draw(good_num(depth + 1))])
    return call("shift", [draw(good_num(depth + 1)), str(draw(st.integers(1, 500)))])


@st.composite
def good_bool(draw: st.DrawFn, depth: int = 0) -> str:
    """A condition that checks."""
    kind = draw(st.integers(0, 1 if depth >= 2 else 4))
    if kind == 0:
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return f"{draw(good_num(depth + 1))} {op} {draw(good_num(depth + 1))}"
    if kind == 1:
        name = draw(st.sampled_from(["cross_above", "cross_below"]))
        return call(name, [draw(good_num(depth + 1)), draw(good_num(depth + 1))])
    if kind == 2:
        word = draw(st.sampled_from(["and", "or"]))
        return f"({draw(good_bool(depth + 1))}) {word} ({draw(good_bool(depth + 1))})"
    if kind == 3:
        return f"not ({draw(good_bool(depth + 1))})"
    return call("shift", [draw(good_bool(depth + 1)), str(draw(st.integers(1, 50)))])


def outcome(src: str) -> str:
    """Run parse, check and evaluate; only ExprError may stop it, at a position in the text."""
    try:
        node = parse(src)
    except ExprError as exc:
        assert 0 <= exc.position <= len(src), (src, exc)
        return "parse"
    try:
        check(node, PROVIDER)
    except ExprError as exc:
        assert 0 <= exc.position <= len(src), (src, exc)
        return "check"
    out = evaluate(node, HOURLY, PROVIDER)  # anything check passed must evaluate
    assert out.dtype == np.bool_ and out.shape == (len(HOURLY),)
    assert compile_text(src, "when") == src  # and compile, as a strategy condition
    return "ok"


# Each example a defect this file found, kept as a regression case.
REGRESSIONS = [
    # check passed a series argument to an indicator of high, low and close; evaluate refused it
    "atr(close) > 1",
    "vwap(volume, 3) > 1",
    "obv(close) > 0",
    "adx(-close) < 20",
    "donchian_upper(high) > donchian_lower(low)",
]


ZERO_DIVISIONS = [
    # a series argument with zeros: the numba kernels of roc and stddev raised ZeroDivisionError
    # at run time (an engine_error), found by tests/server/test_hypothesis_create.py
    "roc(adx(1)) > 1",
    "roc(close - close) > 0",
    "roc(close - open, 3) < 0",
    "stddev(close - open) > 0",
    "stddev(0 * volume, 2) >= 0",
]


TIMEFRAMES = st.sampled_from([None, None, "1h", "4h", "1d"])


BAD_TIMEFRAMES = st.one_of(st.sampled_from(["1m", "hour", "2h", ""]), JUNK)


BAD_ROLES = st.one_of(st.sampled_from(["EXIT", "nope", "", "filter "]), JUNK)


def expr_text(draw: st.DrawFn, bad: bool) -> Any:
    return pick(draw, good_bool(), st.one_of(bool_expr(), mutated(), JUNK), bad)


@st.composite
def signal_obj(draw: st.DrawFn, *, entry: bool, bad: bool) -> Any:
    """A catalog signal object with a role it may play."""
    side = ("TRIGGER", "FILTER") if entry else ("EXIT",)
    names = sorted(n for n, spec in SIGNALS.items() if set(spec.roles) & set(side))
    name = pick(draw, st.sampled_from(names), st.sampled_from(["nope", *sorted(SIGNALS)]), bad)
    obj: dict[str, Any] = {"name": name}
    if name in SIGNALS and draw(st.booleans()):
        spec = SIGNALS[name]
        keys = draw(st.lists(st.sampled_from(sorted(spec.params) or ["window"]), unique=True))
        keys = [k for k in keys if k in spec.params]
        values = ordered(spec, {k: draw(in_bounds(spec.params[k])) for k in keys}, keys)
        for k in keys:
            values[k] = pick(draw, st.just(values[k]), out_of_bounds(spec.params[k]), bad)
        obj["params"] = values
    if draw(st.booleans()):
        obj["timeframe"] = pick(draw, TIMEFRAMES, BAD_TIMEFRAMES, bad)
    if name in SIGNALS and draw(st.booleans()):
        roles = [r for r in SIGNALS[name].roles if r in side] if entry else ["EXIT", "TRIGGER"]
        obj["signal_type"] = pick(draw, st.sampled_from(roles), BAD_ROLES, bad)
    if bad and draw(st.integers(0, 15)) == 7:
        obj[draw(st.sampled_from(["extra", "atr_period", "condition"]))] = draw(JUNK)
    return obj


@st.composite
def condition_obj(draw: st.DrawFn, *, entry: bool, bad: bool) -> Any:
    """A v2 condition: a signal object, {"condition": ...}, a bare string, or junk."""
    kind = draw(st.integers(0, 5 if bad else 4))
    if kind <= 1:
        return draw(signal_obj(entry=entry, bad=bad))
    if kind == 2:
        return expr_text(draw, bad)
    if kind <= 4:
        obj: dict[str, Any] = {"condition": expr_text(draw, bad)}
        if draw(st.booleans()):
            obj["timeframe"] = pick(draw, TIMEFRAMES, BAD_TIMEFRAMES, bad)
        if draw(st.booleans()):
            roles = ["TRIGGER", "FILTER"] if entry else ["EXIT", "TRIGGER"]
            obj["signal_type"] = pick(draw, st.sampled_from(roles), BAD_ROLES, bad)
        return obj
    return draw(JUNK)


@st.composite
def level_obj(draw: st.DrawFn, kinds: tuple[str, ...], *, bad: bool) -> Any:
    """A stop or target level: {"type", "value"}."""
    kind = pick(draw, st.sampled_from(kinds), st.sampled_from(["pips", "r", None]), bad)
    value = pick(draw, st.floats(0.001, 0.9), st.one_of(st.floats(-1, 2000), JUNK), bad)
    return pick(draw, st.just({"type": kind, "value": value}), JUNK, bad)


LEVELS = {
    "stop_loss": ("atr", "percent"),
    "take_profit": ("atr", "percent", "r"),
    "trailing_stop": ("atr", "percent"),
}


@st.composite
def rule_strategy(draw: st.DrawFn, *, bad: bool = True) -> dict[str, Any]:
    """A v2 rule strategy object."""

    def rule(entry: bool, least: int) -> list[Any]:
        items = st.lists(condition_obj(entry=entry, bad=bad), min_size=least, max_size=3)
        return pick(draw, items, st.one_of(st.just([]), JUNK), bad)

    spec: dict[str, Any] = {"name": pick(draw, st.text(max_size=10), JUNK, bad)}
    side = pick(draw, st.sampled_from([None, None, "long", "short", "both"]), JUNK, bad)
    if side is not None:
        spec["side"] = side
    spec["entry"] = rule(True, 1)
    spec["exit"] = rule(False, 0)
    if side == "both" or (bad and draw(st.integers(0, 15)) == 7):
        spec["short_entry"] = rule(True, 1)
        spec["short_exit"] = rule(False, 0)
    for key, kinds in LEVELS.items():
        if draw(st.booleans()):
            spec[key] = draw(level_obj(kinds, bad=bad))
    if draw(st.booleans()):
        spec["max_hold_bars"] = pick(draw, st.integers(1, 500), st.integers(-1, 10**8), bad)
    if bad and draw(st.integers(0, 15)) == 7:
        spec[draw(st.sampled_from(["asset", "atr_multiplier", "type", "foo"]))] = draw(JUNK)
    return spec


@st.composite
def seed001_strategy(draw: st.DrawFn, *, bad: bool = True) -> dict[str, Any]:
    """Seed 001's strict form: one TRIGGER and one FILTER catalog signal, catalog exits."""
    entry = []
    for role in ("TRIGGER", "FILTER"):
        names = sorted(n for n, spec in SIGNALS.items() if role in spec.roles)
        sig = draw(signal_obj(entry=True, bad=bad))
        if sig.get("name") in SIGNALS and role not in SIGNALS[sig["name"]].roles:
            sig["name"] = draw(st.sampled_from(names))
            sig.pop("params", None)
        sig["signal_type"] = pick(draw, st.just(role), BAD_ROLES, bad)
        entry.append(sig)
    exits = draw(st.lists(signal_obj(entry=False, bad=bad), max_size=2))
    spec = {"name": "seed", "entry": draw(st.permutations(entry)), "exit": exits}
    if bad and draw(st.integers(0, 15)) == 7:
        spec[draw(st.sampled_from(["side", "stop_loss", "asset"]))] = draw(JUNK)
    return spec


GOOD_VARS = ["fast", "slow", "r", "a", "b", "_"]


# Refused, or (rsi, sma: an indicator's bare name) refused when the text also calls `rsi()`,
# which the grammar cannot tell from the bare name.
BAD_VARS = ["Fast", "x1", "close", "and", "shift", "é", "a-b", "x" * 41, "rsi", "sma"]


@st.composite
def score_strategy(draw: st.DrawFn, *, bad: bool = True) -> dict[str, Any]:
    """A score strategy: typed variables built on earlier ones, scored conditions, a reachable
    threshold; with `bad`, junk, undefined names and cycles now and then."""
    var = pick(draw, st.sampled_from(GOOD_VARS), st.sampled_from(BAD_VARS), bad)
    names = draw(st.lists(st.just(var) | st.sampled_from(GOOD_VARS), max_size=3, unique=True))
    kinds: dict[str, str] = {}  # name -> "num" | "bool", of the variables defined so far

    def uses(kind: str, text: str) -> str:
        """Combine a text with a variable of the same kind, now and then."""
        same = [n for n, k in kinds.items() if k == kind]
        if bad and draw(st.integers(0, 15)) == 7:
            same = [*names, "undefined_var"]  # a cycle, or a name nobody defined
        if not same or not draw(st.booleans()):
            return text
        op = " + " if kind == "num" else draw(st.sampled_from([" and ", " or "]))
        return f"({text}){op}{draw(st.sampled_from(same))}"

    variables: dict[str, Any] = {}
    for name in names:
        kind = draw(st.sampled_from(["num", "bool"]))
        text = uses(kind, draw(good_num() if kind == "num" else good_bool()))
        variables[name] = pick(draw, st.just(text), st.one_of(num_expr(), JUNK), bad)
        kinds[name.lower()] = kind
    items = []
    for i in range(pick(draw, st.integers(1, 3), st.sampled_from([0, 51]), bad)):
        nums = [n for n, k in kinds.items() if k == "num"]
        when = uses("bool", draw(good_bool()))
        if nums and draw(st.booleans()):
            when = f"{draw(st.sampled_from(nums))} > {draw(good_num())}"
        item: dict[str, Any] = {
            "name": pick(draw, st.just(f"c{i}"), st.sampled_from(["c0", "", "x" * 70]), bad),
            "when": pick(draw, st.just(when), st.one_of(bool_expr(), JUNK), bad),
            "score": pick(draw, st.integers(-3, 5), st.one_of(st.integers(-1001, 1001), JUNK), bad),
        }
        if draw(st.booleans()):
            item["timeframe"] = pick(draw, TIMEFRAMES, BAD_TIMEFRAMES, bad)
        if draw(st.booleans()):
            item["signal_type"] = pick(draw, st.sampled_from(["TRIGGER", "FILTER"]), BAD_ROLES, bad)
        items.append(item)
    best = sum(max(x["score"], 0) for x in items if isinstance(x.get("score"), int))
    if items and best == 0 and isinstance(items[0].get("score"), int):
        items[0]["score"], best = 1, 1
    threshold = best * draw(st.sampled_from([1.0, 0.5, 0.25])) if best else 1
    spec: dict[str, Any] = {
        "name": "score",
        "type": pick(draw, st.just("score"), JUNK, bad),
        "variables": variables,
        "conditions": items,
        "threshold": pick(draw, st.just(threshold), st.one_of(st.just(best + 1), JUNK), bad),
        "risk": pick(
            draw,
            st.builds(
                lambda stop, rr: {"stop": stop, "reward_risk": rr},
                level_obj(("atr", "percent"), bad=bad),
                st.floats(0.1, 10),
            ),
            JUNK,
            bad,
        ),
    }
    if draw(st.booleans()):
        spec["exit"] = [uses("bool", draw(good_bool())) for _ in range(draw(st.integers(0, 2)))]
    if draw(st.booleans()):
        spec["side"] = pick(draw, st.sampled_from(["long", "short"]), st.just("both"), bad)
    return spec


def fine(timeframe: Any) -> bool:
    """A timeframe the server refuses for a 1h run (finer than it); None is the run's own."""
    return timeframe is not None and RESOLUTIONS[timeframe] < RESOLUTIONS["1h"]


# A valid-looking strategy may still be refused for its size once variables are substituted.
LIMITS = ("too large", "nested too deeply", "once variables are substituted")


def compiles_and_evaluates(spec: Any, dialect: str, *, valid: bool = False) -> bool:
    """Compile; a StrategyError names a path. What compiles evaluates to masks on the bars."""
    try:
        strategy = compile_strategy(spec, dialect=dialect)
    except StrategyError as exc:
        assert isinstance(exc.path, str) and exc.message, exc
        assert not valid or any(w in exc.message for w in LIMITS), (spec, exc)
        return False
    if any(fine(c.timeframe) for c in strategy.conditions):
        return True  # the server answers 400 for these (translate._check_timeframes)
    warmup_bars(strategy, "1h")
    masks = evaluate_strategy(strategy, HOURLY, "1h")
    for mask in masks:
        assert mask.dtype == np.bool_ and mask.shape == (len(HOURLY),)
    return True


def chain(depth: int, count: int = 50, op: str = "-") -> dict[str, Any]:
    """A score strategy whose variables each wrap the one before: va = -(-(close)), vb = -(-(va)) …"""
    names = [f"v{a}{b}" for a in "abcdefghij" for b in "abcdefghij"][:count]
    variables, prev = {}, "close"
    for name in names:
        variables[name] = f"{prev} + {prev}" if op == "+" else f"{'-(' * depth}{prev}{')' * depth}"
        prev = name
    return {
        "type": "score",
        "name": "chain",
        "variables": variables,
        "conditions": [{"name": "c", "when": f"{prev} > 1", "score": 1}],
        "threshold": 1,
        "risk": {"stop": {"type": "atr", "value": 1.0}},
    }
