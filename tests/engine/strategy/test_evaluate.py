"""evaluate(): rules combine conditions; coarser timeframes fire events once and hold states."""

import dataclasses

import numpy as np
import pandas as pd

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import Bars
from engine.strategy.compile import compile_strategy
from engine.strategy.evaluate import Masks, evaluate, interval_of

HOUR = 3_600_000_000_000


def hourly(n: int = 24 * 60) -> Bars:
    """Hourly bars from one-minute demo bars, resampled with pandas (an independent path)."""
    rng = np.random.default_rng(3)
    m = generate_bars(DEMO_SYMBOLS[2], 1_704_067_200_000_000_000, n * 60, rng)
    df = pd.DataFrame(
        {"open": m.open, "high": m.high, "low": m.low, "close": m.close, "volume": m.volume},
        index=pd.to_datetime(m.ts, utc=True),
    )
    h = df.resample("1h").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    ts = h.index.as_unit("ns").asi8
    return Bars(ts, *(h[c].to_numpy() for c in ("open", "high", "low", "close", "volume")))


def rsi_wilder(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder RSI with pandas' ewm (alpha 1/n), seeded by the simple mean like the engine."""
    delta = pd.Series(close).diff()
    gain, loss = delta.clip(lower=0), -delta.clip(upper=0)
    g = pd.concat([pd.Series([gain[1 : n + 1].mean()]), gain[n + 1 :]], ignore_index=True)
    lo = pd.concat([pd.Series([loss[1 : n + 1].mean()]), loss[n + 1 :]], ignore_index=True)
    ag = g.ewm(alpha=1 / n, adjust=False).mean().to_numpy()
    al = lo.ewm(alpha=1 / n, adjust=False).mean().to_numpy()
    rsi = np.full(len(close), np.nan)
    rsi[n:] = 100 - 100 / (1 + ag / al)
    return rsi


def test_rules_combine_all_of_entry_and_any_of_exit():
    bars = hourly()
    s = compile_strategy(
        {
            "side": "both",
            "entry": ["rsi(14) < 40", {"condition": "close > open", "signal_type": "FILTER"}],
            "exit": ["rsi(14) > 60", "close < open"],
            "short_entry": ["rsi(14) > 60"],
        }
    )
    m = evaluate(s, bars)
    assert isinstance(m, Masks) and interval_of(bars) == "1h"
    rsi = rsi_wilder(bars.close, 14)
    up = bars.close > bars.open
    with np.errstate(invalid="ignore"):
        assert np.array_equal(m.long_entry, (rsi < 40) & up)
        assert np.array_equal(m.long_exit, (rsi > 60) | ~up)
        assert np.array_equal(m.short_entry, rsi > 60)
    assert not m.short_exit.any()
    assert m.long_entry.any() and m.short_entry.any()


def test_catalog_signal_and_expression_agree():
    bars = hourly()
    by_signal = compile_strategy(
        {"entry": [{"name": "sma_cross_up", "params": {"window_fast": 10, "window_slow": 30}}]}
    )
    by_text = compile_strategy({"entry": ["cross_above(sma(10), sma(30))"]})
    a, b = evaluate(by_signal, bars).long_entry, evaluate(by_text, bars).long_entry
    assert a.any() and np.array_equal(a, b)


def test_coarser_trigger_fires_once_and_filter_holds():
    bars = hourly()
    trig = compile_strategy({"entry": [{"condition": "close > open", "timeframe": "4h"}]})
    filt = compile_strategy(
        {"entry": [{"condition": "close > open", "timeframe": "4h", "signal_type": "FILTER"}]}
    )
    t, f = evaluate(trig, bars).long_entry, evaluate(filt, bars).long_entry
    # Independent reference: 4h buckets from pandas; each is visible from the hour it closes.
    df = pd.DataFrame(
        {"open": bars.open, "close": bars.close}, index=pd.to_datetime(bars.ts, utc=True)
    )
    four = df.resample("4h").agg({"open": "first", "close": "last"})
    up = (four["close"] > four["open"]).to_numpy()
    closes = four.index.as_unit("ns").asi8 + 4 * HOUR
    ends = bars.ts + HOUR
    seen = np.searchsorted(closes, ends, side="right") - 1
    held = np.where(seen >= 0, up[np.maximum(seen, 0)], False)
    first = np.r_[seen[0] >= 0, seen[1:] != seen[:-1]]
    assert np.array_equal(f, held)
    assert np.array_equal(t, held & first)
    # A 4h bar's value is first seen at the hourly bar that ends when the 4h bar closes.
    assert t.sum() == up[: seen[-1] + 1].sum()


def score_spec(side: str = "long") -> dict:
    """A score strategy over RSI, a variable's SMA and a 4h state."""
    return {
        "type": "score",
        "side": side,
        "variables": {"r": "rsi(14)", "mean": "sma(20)"},
        "conditions": [
            {"name": "oversold", "when": "r < 45", "score": 2},
            {"name": "below_mean", "when": "close < mean", "score": 1.5},
            {"name": "up_4h", "when": "close > open", "score": 1, "timeframe": "4h"},
            {"name": "red", "when": "close < open", "score": -0.5},
        ],
        "threshold": 3,
        "risk": {"stop": {"type": "atr", "value": 1.5}},
        "exit": ["r > 60"],
    }


def test_score_entry_is_where_the_summed_score_reaches_the_threshold():
    bars = hourly()
    rsi = rsi_wilder(bars.close, 14)
    mean = pd.Series(bars.close).rolling(20).mean().to_numpy()
    up_4h = evaluate(compile_strategy({"entry": [{"condition": "close > open", "timeframe": "4h",
                                                  "signal_type": "FILTER"}]}), bars).long_entry  # fmt: skip
    with np.errstate(invalid="ignore"):
        score = 2 * (rsi < 45) + 1.5 * (bars.close < mean) + up_4h - 0.5 * (bars.close < bars.open)
        exit_ = rsi > 60
    expected = score >= 3
    assert expected.any() and not expected.all() and (score == 3).any()  # the boundary counts
    long_ = evaluate(compile_strategy(score_spec()), bars)
    assert np.array_equal(long_.long_entry, expected) and np.array_equal(long_.long_exit, exit_)
    assert not long_.short_entry.any() and not long_.short_exit.any()
    short = evaluate(compile_strategy(score_spec("short")), bars)
    assert np.array_equal(short.short_entry, expected) and np.array_equal(short.short_exit, exit_)
    assert not short.long_entry.any()


def test_score_rule_is_and_ed_with_the_sides_entry_conditions():
    bars = hourly()
    scored = compile_strategy(score_spec())
    plain = compile_strategy({"entry": ["close > open"]})
    both = dataclasses.replace(scored, long_entry=plain.long_entry)
    alone = evaluate(scored, bars).long_entry
    assert np.array_equal(evaluate(both, bars).long_entry, alone & (bars.close > bars.open))
