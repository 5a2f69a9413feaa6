"""engine.book: a one-symbol run's curves and records start uninitialised (the loop writes them
before anything reads them), the records start long enough for the entries the signals allow,
and the ATR distances equal their column-by-column form."""

import dataclasses

import numpy as np
import pytest

from engine import book as book_module
from engine import drive
from engine.book import FIRST_RECORDS, MOST_FIRST_RECORDS, distances, first_records
from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.execution import Execution
from engine.nb.indicators import atr_nb
from engine.nb.records import D_STOP, D_TP, D_TRAIL
from engine.output import BacktestOutput
from engine.run import run_backtest
from engine.strategy.compile import compile_strategy
from engine.strategy.form import Exits, Level

CROSS = {"name": "sma_cross_up", "params": {"window_fast": 10, "window_slow": 30}}
UNCROSS = {"name": "sma_cross_down", "params": {"window_fast": 10, "window_slow": 30}}
SPEC = {
    "entry": [CROSS, {"name": "is_above_sma", "signal_type": "FILTER", "params": {"window": 50}}],
    "exit": [UNCROSS],
}
RISKY_SPEC = {
    "side": "both", "entry": [CROSS], "exit": [UNCROSS], "short_entry": [UNCROSS],
    "short_exit": [CROSS], "take_profit": {"type": "r", "value": 2.0},
    "stop_loss": {"type": "atr", "value": 1.5}, "trailing_stop": {"type": "percent", "value": 0.004},
    "max_hold_bars": 90,
}  # fmt: skip
RISKY_EX = Execution(
    allow_short=True, fee_bps=5, slippage_bps=1, sizing="risk", max_risk_per_trade=0.01,
    atr_period=14, atr_multiplier=2.0, max_open_positions=2, leverage=2.0,
    cooldown_config={"1m": {"short_loss_limit": 3, "long_loss_limit": 5,
                            "short_window_bars": 120, "long_window_bars": 900}},
)  # fmt: skip
PLAIN = Execution(sizing="fraction", size=1.0, fee_bps=10, atr_multiplier=0.0)
CASES = {
    "plain": (SPEC, PLAIN),
    "at the close": (SPEC, dataclasses.replace(PLAIN, fill="close")),
    "shorts, stops, cooldowns": (RISKY_SPEC, RISKY_EX),
}


def _poisoned(shape, dtype=float, order="C"):
    """np.empty as it may come back from reused memory: every byte 0xFF (floats are NaN)."""
    out = np.zeros(shape, dtype=dtype, order=order)
    out.view(np.uint8)[...] = 0xFF
    return out


def _run(spec: dict, ex: Execution) -> BacktestOutput:
    start = 1_704_067_200_000_000_000
    data = {"BTC-USD": generate_bars(DEMO_SYMBOLS[1], start, 20_000, np.random.default_rng(11))}
    strategy = compile_strategy(spec)
    return run_backtest(
        data, strategy, ex, 10_000.0, int(data["BTC-USD"].ts[400]), chunk_bars=3_000
    )


@pytest.mark.parametrize("case", CASES)
def test_uninitialised_curves_and_records_change_nothing(case, monkeypatch):
    spec, ex = CASES[case]
    clean = _run(spec, ex)
    monkeypatch.setattr(book_module, "FIRST_RECORDS", 16)  # the records grow many times
    monkeypatch.setattr(book_module, "MOST_FIRST_RECORDS", 16)
    monkeypatch.setattr(np, "empty", _poisoned)  # engine.book and engine.drive look it up here
    dirty = _run(spec, ex)
    assert clean.metrics == dirty.metrics and clean.metrics["trade_count"] > 20
    for name in ("equity", "trades", "round_trips", "exposure", "open_positions"):
        assert getattr(clean, name) == getattr(dirty, name), name
    assert clean.returns_by_month == dirty.returns_by_month and clean.logs == dirty.logs


def test_records_start_at_two_per_possible_entry_within_bounds():
    none, some = np.zeros(50_000, dtype=np.bool_), np.zeros(50_000, dtype=np.bool_)
    some[::10] = True  # 5,000 long entry bars
    shorts = np.zeros(50_000, dtype=np.bool_)
    shorts[5::20] = True  # 2,500 short entry bars
    assert first_records((none, none, none, none), 50_000) == FIRST_RECORDS
    assert first_records((some, none, shorts, none), 50_000) == 2 * 7_500
    assert first_records((some, none, none, none), 3) == 8  # never more than two a bar (+2)
    every = np.ones(50_000, dtype=np.bool_)
    assert first_records((every, none, every, none), 50_000) == MOST_FIRST_RECORDS


def test_records_sized_by_the_signals_never_grow(monkeypatch):
    """With a floor of 16 records a run of some hundred round trips is sized from its entry signals and
    never stops to grow them; capped at 16 as well, it grows (the check can fail)."""
    grown: list[int] = []
    monkeypatch.setattr(drive, "_grow", lambda b: grown.append(b.fills.size) or _grow(b))
    monkeypatch.setattr(book_module, "FIRST_RECORDS", 16)
    out = _run(SPEC, PLAIN)
    assert 2 * out.metrics["trade_count"] > 16 and not grown
    monkeypatch.setattr(book_module, "MOST_FIRST_RECORDS", 16)
    assert _run(SPEC, PLAIN).metrics == out.metrics and grown


_grow = drive._grow


ATR_CASES = [
    (Exits(), 2.0),  # the seed's stop: atr_multiplier ATRs
    (Exits(), 0.0),  # none
    (Exits(stop_loss=Level("atr", 1.5), take_profit=Level("atr", 3.0)), 2.0),
    (Exits(stop_loss=Level("percent", 0.01), trailing_stop=Level("atr", 0.5)), 2.0),
    (Exits(take_profit=Level("r", 2.0), trailing_stop=Level("percent", 0.004)), 0.0),
]


@pytest.mark.parametrize(("exits", "multiplier"), ATR_CASES)
def test_atr_distances_equal_the_columns_written_one_by_one(exits, multiplier):
    """distances() against the plain numpy form: a NaN array, each ATR column set in turn."""
    data = generate_bars(
        DEMO_SYMBOLS[0], 1_704_067_200_000_000_000, 3_000, np.random.default_rng(2)
    )
    ex = Execution(atr_period=14, atr_multiplier=multiplier)
    want = np.full((len(data), 3), np.nan)
    atr = atr_nb(data.high, data.low, data.close, 14)
    if exits.stop_loss is None and multiplier > 0:
        want[:, D_STOP] = multiplier * atr
    for col, level in ((D_STOP, exits.stop_loss), (D_TP, exits.take_profit),
                       (D_TRAIL, exits.trailing_stop)):  # fmt: skip
        if level is not None and level.kind == "atr":
            want[:, col] = level.value * atr
    got = distances(data, ex, exits)
    assert got.shape == want.shape and np.array_equal(got, want, equal_nan=True)


def test_atr_stops_on_too_few_bars_for_an_atr_change_nothing():
    """Ten bars, a 14-bar ATR: every distance is NaN, so the stops never trigger."""
    strategy = compile_strategy(
        {"entry": [{"condition": "close > open"}], "exit": [{"condition": "close < open"}]}
    )
    data = {"BTC-USD": generate_bars(DEMO_SYMBOLS[0], 1_704_067_200_000_000_000, 10,
                                     np.random.default_rng(4))}  # fmt: skip
    t0 = int(data["BTC-USD"].ts[0])
    bare = run_backtest(
        data, strategy, dataclasses.replace(PLAIN, atr_multiplier=0.0), 10_000.0, t0
    )
    stopped = run_backtest(
        data, strategy, dataclasses.replace(PLAIN, atr_multiplier=2.0), 10_000.0, t0
    )
    assert len(bare.round_trips) >= 2
    assert stopped.round_trips == bare.round_trips and stopped.metrics == bare.metrics
