"""Property tests of the condition grammar and the strategy compiler, with hypothesis.

Expressions come from a grammar (numbers of every size and spelling, bar fields, indicator
calls with positional, series and keyword arguments, built-ins, arithmetic, comparisons,
and/or/not, nesting) and from mutations of its output (characters dropped, doubled or swapped,
tokens inserted, text cut). For each one:

- ``parse`` succeeds or raises ExprError at a position inside the text (0..len);
- ``check`` with the real indicator registry succeeds or raises ExprError;
- whatever passes ``check`` evaluates on real-looking bars without raising: a fault that only
  data would show (a param out of range, a series given to an indicator of high/low/close) must
  be found by ``check``, before a run is queued.

Strategy objects (v2 rules, seed 001, score strategies) built from valid parts and junk either
compile or raise StrategyError naming a path; what compiles evaluates to masks on the same bars.

Derandomized with bounded examples, so the file runs in a few seconds and the same way each time."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.evaluate import evaluate as evaluate_strategy
from engine.strategy.expr import ExprError, check, parse
from engine.strategy.provider import PROVIDER
from tests.engine.strategy.generators import (
    HOURLY,
    JUNK,
    REGRESSIONS,
    ZERO_DIVISIONS,
    bool_expr,
    bounded,
    chain,
    compiles_and_evaluates,
    good_bool,
    mutated,
    outcome,
    rule_strategy,
    score_strategy,
    seed001_strategy,
)


@pytest.mark.parametrize("src", REGRESSIONS)
def test_series_argument_faults_are_found_by_check(src: str) -> None:
    with pytest.raises(ExprError, match="takes no series argument") as info:
        check(parse(src), PROVIDER)
    assert 0 <= info.value.position < len(src)


@pytest.mark.parametrize("src", ZERO_DIVISIONS)
def test_indicators_of_series_with_zeros_evaluate(src: str) -> None:
    assert outcome(src) == "ok"


def test_out_of_range_params_are_named_briefly() -> None:
    """`sma(1e308)` was refused with the value written out in 309 digits."""
    with pytest.raises(ExprError) as info:
        check(parse("sma(1e308) > 1"), PROVIDER)
    assert info.value.message == "sma.window must be between 1 and 5000, got 1e+308"


@bounded(600)
@example("atr(close) > 1")
@example("roc(close - close) > 0")
@example("sma(1e308) > 1")
@example("sma(window=1e309) > 1")
@example("shift(close, 1000000) > 1")
@example("sma(5000) > close and rsi(1) < 50 and stddev(2) > 0")
@example("bb_upper(close, 2, 0) > close")
@example("macd(window_slow=5, window_fast=5) > 0")
@given(st.one_of(bool_expr(), mutated(), good_bool(), st.text(max_size=40)))
def test_parse_check_evaluate(src: str) -> None:
    outcome(src)


def test_the_grammar_reaches_every_stage() -> None:
    """The generators are not degenerate: many texts parse, many check, many evaluate."""
    seen: dict[str, int] = {"parse": 0, "check": 0, "ok": 0}

    @bounded(300)
    @given(st.one_of(bool_expr(), mutated(), good_bool()))
    def run(src: str) -> None:
        seen[outcome(src)] += 1

    run()
    assert all(v >= 20 for v in seen.values()), seen


@bounded(150)
@given(st.one_of(rule_strategy(), score_strategy()))
def test_strategies_compile_or_name_the_path(spec: dict[str, Any]) -> None:
    compiles_and_evaluates(spec, "v2")


@bounded(100)
@given(st.one_of(rule_strategy(bad=False), score_strategy(bad=False)))
def test_valid_strategies_compile_and_evaluate(spec: dict[str, Any]) -> None:
    compiles_and_evaluates(spec, "v2", valid=True)


@bounded(60)
@given(st.booleans().flatmap(lambda bad: seed001_strategy(bad=bad)), st.booleans())
def test_seed001_strategies(spec: dict[str, Any], strict: bool) -> None:
    compiles_and_evaluates(spec, "seed001" if strict else "v2")


@bounded(40)
@given(seed001_strategy(bad=False))
def test_valid_seed001_strategies_compile(spec: dict[str, Any]) -> None:
    compiles_and_evaluates(spec, "seed001", valid=True)
    compiles_and_evaluates(spec, "v2", valid=True)  # every seed 001 strategy is a v2 one


@bounded(60)
@given(JUNK, st.sampled_from(["v2", "seed001"]))
def test_anything_at_all_is_a_strategy_error(spec: Any, dialect: str) -> None:
    assert not compiles_and_evaluates(spec, dialect)


@pytest.mark.parametrize(("depth", "op"), [(1, "-"), (5, "-"), (10, "-"), (30, "-"), (1, "+")])
def test_chained_variables_are_refused_not_a_recursion_error(depth: int, op: str) -> None:
    """50 variables, each nesting the one before 10 deep, raised RecursionError while counting
    the substituted tree (a 500 from the server); now a StrategyError naming the variable."""
    with pytest.raises(StrategyError) as info:
        compile_strategy(chain(depth, op=op))
    assert info.value.path.startswith(("variables.", "conditions[0].when"))
    assert "too large" in info.value.message or "nested too deeply" in info.value.message


def test_a_short_chain_of_variables_compiles() -> None:
    strategy = compile_strategy(chain(2, count=5))
    assert strategy.score is not None
    evaluate_strategy(strategy, HOURLY, "1h")
