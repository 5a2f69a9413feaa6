"""Fused signals (engine.strategy.fuse): the one-pass masks equal the general path's, bit for bit.

Random strategies of the shapes the fuser takes (catalog crosses and level filters, simple
condition expressions, and-ed in entries, or-ed in exits) over several seeded series: a random
walk, prices with gaps of NaN, flat prices, a series shorter than the windows. Each one's four
masks from evaluate() must equal those of evaluate(fused=False), and run_backtest's trades
must be the same with the fuser on and off. Strategies outside the shapes (a coarser
timeframe, a score rule, a shifted channel, an `or`) take the general path.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import engine.strategy.evaluate as evaluate_module
from engine.data.store import RESOLUTIONS, Bars
from engine.execution import Execution
from engine.run import run_backtest
from engine.strategy.catalog import SIGNALS
from engine.strategy.evaluate import evaluate
from engine.strategy.form import Condition, ScoreItem, ScoreRule, Strategy
from engine.strategy.fuse import AVERAGES, SIGNAL_TERMS, fusing, general_path, plan

MINUTE = RESOLUTIONS["1m"]
HOUR = RESOLUTIONS["1h"]


def bars_of(close: np.ndarray, step: int = MINUTE) -> Bars:
    """Bars around a close series (open the previous close, high/low a spread around both)."""
    n = close.size
    open_ = np.concatenate([close[:1], close[:-1]]) if n else close
    spread = np.abs(np.sin(np.arange(n))) * 0.5 + 0.1
    high = np.fmax(open_, close) + spread
    low = np.fmin(open_, close) - spread
    volume = 100.0 + 50.0 * np.cos(np.arange(n)) ** 2
    ts = 1_704_067_200_000_000_000 + np.arange(n, dtype=np.int64) * step
    return Bars(ts, open_, high, low, close, volume)


def walk(seed: int, n: int) -> np.ndarray:
    """A seeded random walk around 100."""
    rng = np.random.default_rng(seed)
    return 100.0 + np.cumsum(rng.normal(0.0, 0.5, n))


def series() -> dict[str, Bars]:
    """The seeded series every strategy runs on."""
    gappy = walk(7, 1500)
    gappy[[0, 1, 2, 400, 401, 900]] = np.nan  # NaN warm-up and gaps inside
    steps = np.repeat(np.array([100.0, 101.0, 100.0, 99.0]), 250)  # flat stretches, few moves
    return {
        "walk": bars_of(walk(1, 3000)),
        "walk2": bars_of(walk(2, 2000)),
        "gaps": bars_of(gappy),
        "flat": bars_of(np.full(600, 100.0)),
        "steps": bars_of(steps),
        "short": bars_of(walk(3, 25)),
        "one": bars_of(walk(4, 1)),
    }


SERIES = series()
FUSABLE = sorted(SIGNAL_TERMS)
EVENTS = [s for s in FUSABLE if "EXIT" in SIGNALS[s].roles]
FIELDS = ("open", "high", "low", "close", "volume")


def random_params(name: str, rng: np.random.Generator) -> tuple:
    """Valid random params of a catalog signal (small windows so short series cross too)."""
    spec = SIGNALS[name]
    values: dict = {}
    for key, p in spec.params.items():
        if isinstance(p.default, int):
            values[key] = int(rng.integers(p.minimum, min(p.maximum, 60) + 1))
        else:
            values[key] = round(float(rng.uniform(p.minimum, min(p.maximum, 100.0))), 3)
    for small, large in spec.ordered:
        if values[small] >= values[large]:
            values[small], values[large] = sorted((values[small], values[large]))
            if values[small] == values[large]:
                values[large] += 1
    return tuple(sorted(values.items()))


def random_operand(rng: np.random.Generator) -> str:
    """A bar field, a number, or an indicator call with number arguments."""
    pick = rng.integers(6)
    if pick == 0:
        return str(FIELDS[rng.integers(len(FIELDS))])
    if pick == 1:
        return f"{rng.uniform(0, 120):.2f}"
    if pick == 2:
        return f"rsi({rng.integers(2, 30)})"
    if pick == 3:
        return f"ema({rng.integers(2, 80)})"
    if pick == 4:
        return f"bb_upper({rng.integers(2, 40)}, {rng.uniform(0.5, 3):.1f})"
    return f"sma(window={rng.integers(2, 80)})"


def random_term(rng: np.random.Generator) -> str:
    """A comparison or a cross of two operands (not both numbers)."""
    a, b = random_operand(rng), random_operand(rng)
    while a[0].isdigit() and b[0].isdigit():
        b = random_operand(rng)
    if rng.integers(3) == 0:
        return f"{('cross_above', 'cross_below')[rng.integers(2)]}({a}, {b})"
    return f"{a} {('<', '<=', '>', '>=')[rng.integers(4)]} {b}"


def random_condition(rng: np.random.Generator, entry: bool) -> Condition:
    """A fusable condition: mostly catalog signals, sometimes an expression."""
    if rng.integers(4) == 0:
        parts = [random_term(rng) for _ in range(rng.integers(1, 3) if entry else 1)]
        return Condition("expr", " and ".join(parts), role="TRIGGER" if entry else "EXIT")
    names = FUSABLE if entry else EVENTS
    name = names[rng.integers(len(names))]
    role = ("TRIGGER", "FILTER")[rng.integers(2)] if entry else "EXIT"
    return Condition("signal", name, random_params(name, rng), role=role)


def random_strategy(rng: np.random.Generator) -> Strategy:
    """Up to three conditions per rule; a rule may be empty; sometimes a same-timeframe one."""

    def rule(entry: bool) -> tuple[Condition, ...]:
        conds = [random_condition(rng, entry) for _ in range(rng.integers(0, 4))]
        if conds and rng.integers(5) == 0:
            conds[0] = dataclasses.replace(conds[0], timeframe="1m")  # the run's own bars
        return tuple(conds)

    return Strategy("random", long_entry=rule(True), long_exit=rule(False),
                    short_entry=rule(True), short_exit=rule(False))  # fmt: skip


def fusable(strategy: Strategy) -> bool:
    """Whether the fuser takes the strategy (at most three extra series and four averages)."""
    return plan(strategy, "1m") is not None


def strategies(count: int, seed: int) -> list[Strategy]:
    """`count` random strategies the fuser takes."""
    rng = np.random.default_rng(seed)
    out: list[Strategy] = []
    while len(out) < count:
        s = random_strategy(rng)
        if fusable(s):
            out.append(s)
    return out


def assert_masks_equal(strategy: Strategy, bars: Bars) -> None:
    """The fused and the general path's four masks are equal, element for element."""
    fused = evaluate(strategy, bars, "1m")
    general = evaluate(strategy, bars, "1m", fused=False)
    for name, f, g in zip(fused._fields, fused, general, strict=True):
        assert f.dtype == np.bool_ and f.shape == (len(bars),), name
        assert np.array_equal(f, g), (name, strategy, np.flatnonzero(f != g)[:5])


@pytest.mark.parametrize("name", sorted(SERIES))
def test_random_strategies_same_masks(name: str) -> None:
    """Two hundred random fusable strategies give the general path's masks on every series."""
    bars = SERIES[name]
    for strategy in strategies(200, seed=sum(map(ord, name))):
        assert_masks_equal(strategy, bars)


@pytest.mark.parametrize("signal", FUSABLE)
def test_every_fusable_signal_alone(signal: str) -> None:
    """Each catalog signal the fuser knows, alone in an entry and (events) in an exit."""
    rng = np.random.default_rng(len(signal))
    for _ in range(5):
        params = random_params(signal, rng)
        entry = Condition("signal", signal, params, role="FILTER")
        exits = (Condition("signal", signal, params, role="EXIT"),) if signal in EVENTS else ()
        strategy = Strategy("one", long_entry=(entry,), long_exit=exits, short_entry=(entry,))
        assert fusable(strategy)
        for bars in SERIES.values():
            assert_masks_equal(strategy, bars)


def test_reused_average_arrays_hold_no_stale_values() -> None:
    """The thread's average arrays are reused between calls: poisoned ones change nothing."""
    for name in ("walk", "short", "gaps"):
        bars = SERIES[name]
        for strategy in strategies(10, seed=5):
            AVERAGES.rows(3000)[:] = np.inf  # garbage where the next call's averages go
            assert_masks_equal(strategy, bars)


def test_general_path_block_turns_fusing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside general_path() (a sweep) evaluate() never fuses; outside it fuses again."""
    strategy = strategies(1, seed=11)[0]
    calls: list[int] = []
    real = evaluate_module.fused_masks
    monkeypatch.setattr(evaluate_module, "fused_masks", lambda *a: calls.append(1) or real(*a))
    with general_path():
        assert not fusing()
        inside = evaluate(strategy, SERIES["walk"], "1m")
    assert fusing() and calls == []
    outside = evaluate(strategy, SERIES["walk"], "1m")
    assert calls == [1]
    for f, g in zip(outside, inside, strict=True):
        assert np.array_equal(f, g)


def test_cross_and_level_by_hand() -> None:
    """A hand-made series: where SMA 2 crosses SMA 3, and where close > 100.5 holds."""
    close = np.array([100.0, 100.0, 100.0, 103.0, 101.0, 98.0, 97.0, 101.0, 104.0, 99.0])
    # SMA2: nan 100 100 101.5 102 99.5 97.5 99 102.5 101.5
    # SMA3: nan nan 100 101 101.33 100.67 98.67 98.67 100.67 101.33
    bars = bars_of(close)
    cross = (("window_fast", 2), ("window_slow", 3))
    strategy = Strategy(
        "hand",
        long_entry=(Condition("signal", "sma_cross_up", cross),
                    Condition("expr", "close > 100.5", role="FILTER")),
        long_exit=(Condition("signal", "sma_cross_down", cross, role="EXIT"),),
    )  # fmt: skip
    assert fusable(strategy)
    masks = evaluate(strategy, bars, "1m")
    assert np.flatnonzero(masks.long_entry).tolist() == [3, 7]  # 7: 99 > 98.67 after <=; 101
    assert np.flatnonzero(masks.long_exit).tolist() == [5]  # 99.5 < 100.67 after 102 >= 101.33
    assert not masks.short_entry.any() and not masks.short_exit.any()


def test_coarser_timeframe_takes_general_path() -> None:
    """A condition on 4h bars is seen only once its bar closes: not fused."""
    cross = (("window_fast", 3), ("window_slow", 8))
    base = Condition("signal", "sma_cross_up", cross)
    coarse = Strategy("4h", long_entry=(dataclasses.replace(base, timeframe="4h"),))
    same = Strategy("1h", long_entry=(dataclasses.replace(base, timeframe="1h"),))
    assert plan(coarse, "1h") is None
    assert plan(same, "1h") is not None
    bars = bars_of(walk(5, 24 * 40), step=HOUR)
    for strategy in (coarse, same):
        fused, general = evaluate(strategy, bars, "1h"), evaluate(strategy, bars, "1h", fused=False)
        for f, g in zip(fused, general, strict=True):
            assert np.array_equal(f, g)


@pytest.mark.parametrize(
    "strategy",
    [
        Strategy(
            "channel", long_entry=(Condition("signal", "donchian_breakout_up", (("window", 20),)),)
        ),
        Strategy(
            "volume",
            long_entry=(
                Condition("signal", "volume_spike", (("multiplier", 2.0), ("window", 20))),
            ),
        ),
        Strategy("or", long_entry=(Condition("expr", "close > sma(20) or rsi(14) < 30"),)),
        Strategy("exit and", long_exit=(Condition("expr", "close > 1 and close < 2"),)),
        Strategy("shift", long_entry=(Condition("expr", "close > shift(close, 1)"),)),
        Strategy("series arg", long_entry=(Condition("expr", "volume > sma(volume, 20)"),)),
        Strategy("arithmetic", long_entry=(Condition("expr", "close > 1.01 * sma(20)"),)),
        Strategy("equal", long_entry=(Condition("expr", "close == 100"),)),
        Strategy(
            "five averages",
            long_entry=tuple(Condition("expr", f"close > sma({w})") for w in (2, 3, 4, 5, 6)),
        ),
        Strategy(
            "score",
            score=ScoreRule((ScoreItem("a", Condition("expr", "close > sma(5)"), 1.0),), 1.0),
        ),
    ],
    ids=lambda s: s.name,
)
def test_other_shapes_take_general_path(strategy: Strategy) -> None:
    """Shapes outside the fuser's are left to the general path, which still computes them."""
    assert plan(strategy, "1m") is None
    masks = evaluate(strategy, SERIES["walk"], "1m")
    assert all(m.shape == (len(SERIES["walk"]),) for m in masks)


def trades(output) -> list[tuple]:
    """Every round trip and fill of a run, as comparable tuples."""
    trips = [tuple(sorted(t.items())) for t in output.round_trips]
    fills = [tuple(sorted(f.items())) for f in output.trades]
    return trips + fills


@pytest.mark.parametrize("name", ["walk", "walk2", "gaps"])
def test_run_backtest_same_trades(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_backtest makes the same fills, round trips and metrics with the fuser on and off."""
    bars = SERIES[name]
    execution = Execution(
        fee_bps=10.0, sizing="fraction", size=1.0, allow_short=True, atr_multiplier=0.0
    )
    start = int(bars.ts[60])
    traded = 0
    for strategy in strategies(25, seed=len(name)):
        fused = run_backtest({"X": bars}, strategy, execution, 10_000.0, start, resolution="1m")
        with monkeypatch.context() as m:
            m.setattr(evaluate_module, "plan", lambda *_: None)
            general = run_backtest(
                {"X": bars}, strategy, execution, 10_000.0, start, resolution="1m"
            )
        assert trades(fused) == trades(general)
        assert fused.metrics == general.metrics
        traded += len(fused.round_trips)
    assert traded > 50  # the strategies trade: the comparison has something to compare
