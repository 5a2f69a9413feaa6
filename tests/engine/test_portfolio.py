"""Portfolios: one cash balance across symbols on the union clock, checked by hand and against
the one-symbol loop."""

import dataclasses
import json

import numpy as np
import pytest

from engine.data.store import Bars
from engine.execution import Execution
from engine.run import _run, run_backtest
from engine.strategy.form import Condition, Exits, Level, Strategy

DAY = 86_400 * 10**9
VOLUME_RULES = Strategy(
    name="volume rules",
    long_entry=(Condition("expr", "volume > 1.5"),),
    long_exit=(Condition("expr", "volume < 0.5"),),
)
PLAIN = Execution(
    fee_model="none", sizing="fraction", size=1.5, min_trade_amount=0.0, max_trade_amount=1e9,
    max_units_per_trade=1e9, atr_multiplier=0.0, max_open_positions=2, min_balance_threshold=0.0,
    cooldown_bars=0, daily_momentum_limit=0, weekly_momentum_limit=0,
)  # fmt: skip


def flat_bars(days: list[int], prices: list[float], volume: list[float]) -> Bars:
    """Bars at the given days whose open, high, low and close are all the price."""
    x = np.array(prices, dtype=np.float64)
    return Bars(np.array(days, np.int64) * DAY, x, x, x, x, np.array(volume, np.float64))


def as_json(out) -> str:
    return json.dumps(dataclasses.asdict(out), sort_keys=True, allow_nan=False, default=list)


def test_two_symbols_share_one_cash_balance():
    # Both enter at day 1's open: A first (sorted order) spends 1.5 x 1000 / 2 = 750 on 75 units
    # at 10; B then wants 750 / 20 = 37.5 units but only 250 cash is left: 12.5 units.
    # Both exits are decided on day 2; A sells at day 3's open (12), B has no day-3 bar, keeps
    # its price 22 there and sells at day 4's open (24).
    a = flat_bars([0, 1, 2, 3, 4], [10, 10, 12, 12, 13], [2, 1, 0, 1, 1])
    b = flat_bars([0, 1, 2, 4], [20, 20, 22, 24], [2, 1, 0, 1])
    out = run_backtest({"B": b, "A": a}, VOLUME_RULES, PLAIN, 1000.0, 0, resolution="1d")
    trades = [(t["symbol"], t["timestamp"] // DAY, t["side"], t["quantity"], t["price"])
              for t in out.trades]  # fmt: skip
    assert trades == [
        ("A", 1, "buy", 75.0, 10.0),
        ("B", 1, "buy", 12.5, 20.0),
        ("A", 3, "sell", 75.0, 12.0),
        ("B", 4, "sell", 12.5, 24.0),
    ]
    # equity: 1000; 0 + 750 + 250; 900 + 275; 900 cash + B at its last price 22; 1200
    assert [p["equity"] for p in out.equity] == [1000.0, 1000.0, 1175.0, 1175.0, 1200.0]
    assert [p["cash"] for p in out.equity] == [1000.0, 0.0, 0.0, 900.0, 1200.0]
    assert [(t["symbol"], t["pnl"]) for t in out.round_trips] == [("A", 150.0), ("B", 50.0)]
    assert [p["gross_exposure"] for p in out.equity] == [0.0, 1000.0, 1175.0, 275.0, 0.0]
    day3 = [e for e in out.exposure if e["timestamp"] == 3 * DAY]
    assert [(e["symbol"], e["quantity"], e["value"]) for e in day3] == [
        ("A", 0.0, 0.0),
        ("B", 12.5, 275.0),
    ]
    assert out.bars == 5 and out.metrics["total_return"] == pytest.approx(0.2)


def test_max_open_positions_counts_across_the_portfolio():
    a = flat_bars([0, 1, 2, 3, 4], [10, 10, 12, 12, 13], [2, 1, 0, 1, 1])
    b = flat_bars([0, 1, 2, 4], [20, 20, 22, 24], [2, 1, 0, 1])
    one = dataclasses.replace(PLAIN, max_open_positions=1)
    out = run_backtest({"A": a, "B": b}, VOLUME_RULES, one, 1000.0, 0, resolution="1d")
    assert [(t["symbol"], t["side"]) for t in out.trades] == [("A", "buy"), ("A", "sell")]
    assert "B: 4 bars traded (0 warm-up), 0 fills, 0 round trips, 1 entries refused" in out.logs[1]


MACD = (("window_fast", 12), ("window_slow", 26), ("window_sign", 9))
RISKY = Strategy(
    name="macd both ways",
    long_entry=(Condition("signal", "macd_bullish_cross", MACD),),
    long_exit=(Condition("signal", "macd_bearish_cross", MACD),),
    short_entry=(Condition("signal", "macd_bearish_cross", MACD),),
    short_exit=(Condition("signal", "macd_bullish_cross", MACD),),
    exits=Exits(take_profit=Level("r", 2.0), trailing_stop=Level("percent", 0.004)),
)


@pytest.mark.parametrize(
    "settings",
    [
        {"fee_bps": 10.0, "slippage_bps": 5.0, "atr_multiplier": 2.0, "max_hold_bars": 300},
        {"allow_short": True, "fee_model": "tiered_maker_taker", "sizing": "fraction",
         "size": 0.5, "leverage": 3, "max_open_positions": 3, "max_trades_per_day": 40,
         "enable_volatility_adjustment": True, "target_volatility": 0.0005, "fill": "close"},
        {"allow_short": True, "fee_model": "match_exchange", "venue": "kraken", "leverage": 10,
         "sizing": "fraction", "max_units_per_trade": 1e9, "max_trade_amount": 1e12,
         "cooldown_config": {"1m": {"short_loss_limit": 2, "long_loss_limit": 3,
                                    "short_window_bars": 60, "long_window_bars": 240}}},
    ],
)  # fmt: skip
def test_a_portfolio_of_one_symbol_equals_the_one_symbol_run(demo_bars, settings):
    ex = Execution.from_dict(settings)
    start = int(demo_bars.ts[300])
    args = ({"BTC": demo_bars}, RISKY, ex, 10_000.0, start, None, 777, 500, "1m", None)
    alone = _run(*args, portfolio=False)
    portfolio = _run(*args, portfolio=True)
    assert as_json(portfolio) == as_json(alone)
    assert len(alone.round_trips) > 10


def test_portfolio_is_chunk_invariant(demo_bars):
    half = len(demo_bars) // 2
    fields = ("ts", "open", "high", "low", "close", "volume")
    other = Bars(*(np.asarray(getattr(demo_bars, f))[half:] for f in fields))
    bars = {"X": demo_bars, "Y": other}
    ex = Execution(allow_short=True, sizing="fraction", size=0.8, leverage=2.0, fee_bps=5.0)
    start = int(demo_bars.ts[200])
    a = run_backtest(bars, RISKY, ex, 10_000.0, start, chunk_bars=5)
    b = run_backtest(bars, RISKY, ex, 10_000.0, start, chunk_bars=1 << 40)
    assert as_json(a) == as_json(b)
    assert {t["symbol"] for t in a.trades} == {"X", "Y"}


def test_union_clock_merge_equals_sorting_the_times():
    from engine.frame import clock_of

    rng = np.random.default_rng(8)
    for trial in range(300):
        runs = [np.unique(rng.integers(0, 60, int(rng.integers(0, 40)))) for _ in range(3)]
        if trial % 5 == 0 and runs[1].size > 2:
            runs[1] = runs[1][::-1].copy()  # out of order: the merge falls back to a sort
        sizes = np.array([r.size for r in runs])
        bounds = np.stack([np.cumsum(sizes) - sizes, np.cumsum(sizes)], axis=1)
        starts = bounds[:, 0] + np.array([rng.integers(0, r.size + 1) for r in runs])
        ts = np.concatenate(runs).astype(np.int64)
        parts = [ts[a:b] for a, b in zip(starts, bounds[:, 1], strict=True) if b > a]
        want = np.unique(np.concatenate(parts)) if parts else ts[:0]
        if parts and all(np.array_equal(p, parts[0]) for p in parts):  # kept as they are
            want = parts[0]
        assert np.array_equal(clock_of(ts, bounds, starts), want)
