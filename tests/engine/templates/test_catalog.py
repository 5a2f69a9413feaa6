"""Template catalog: params validation by name, JSON Schemas, and Strategy masks checked with pandas."""

from __future__ import annotations

import pickle

import jsonschema
import numpy as np
import pandas as pd
import pytest

from engine.data.store import Bars
from engine.execution import Execution
from engine.run import run_backtest
from engine.strategy.evaluate import evaluate
from engine.strategy.form import Level, Strategy
from engine.templates import (
    TEMPLATES,
    DcaPlan,
    GridPlan,
    TemplateError,
    check_symbols,
    compile_template,
    describe_templates,
)

H = 3600 * 10**9


def wave_bars(n: int = 600, seed: int = 3) -> Bars:
    """A noisy wave: many crosses, breakouts and RSI swings."""
    rng = np.random.default_rng(seed)
    close = 100 + 8 * np.sin(np.arange(n) / 15) + np.cumsum(rng.normal(0, 0.8, n))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) + rng.uniform(0, 1, n)
    low = np.minimum(open_, close) - rng.uniform(0, 1, n)
    return Bars(np.arange(n, dtype=np.int64) * H, open_, high, low, close, np.ones(n))


def seeded(x: pd.Series, n: int, alpha: float, start: int) -> pd.Series:
    """An exponential average seeded with the mean of x's n values from start."""
    y = x.copy()
    y.iloc[: start + n - 1] = np.nan
    y.iloc[start + n - 1] = x.iloc[start : start + n].mean()
    return y.ewm(alpha=alpha, adjust=False).mean()


def rsi(close: pd.Series, n: int) -> pd.Series:
    """Wilder's RSI, seeded with the simple means of the first n gains and losses."""
    change = close.diff()
    gain = seeded(change.clip(lower=0), n, 1 / n, 1)
    loss = seeded((-change).clip(lower=0), n, 1 / n, 1)
    return 100 - 100 / (1 + gain / loss)


def cross_up(a: pd.Series, b: pd.Series) -> np.ndarray:
    """a[i-1] <= b[i-1] and a[i] > b[i]."""
    return ((a.shift(1) <= b.shift(1)) & (a > b)).to_numpy()


def frame(bars: Bars) -> pd.DataFrame:
    """Bars as a DataFrame."""
    return pd.DataFrame({"high": bars.high, "low": bars.low, "close": bars.close})


def check_masks(strategy: Strategy, bars: Bars, expected: list[np.ndarray]) -> None:
    """Assert the four masks equal the expected ones and that each side has events."""
    masks = evaluate(strategy, bars, "1h")
    for got, want in zip(masks, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert masks.long_entry.sum() >= 3 and masks.long_exit.sum() >= 3


@pytest.mark.parametrize("kind", ["sma", "ema"])
def test_ma_cross_masks(kind: str) -> None:
    bars = wave_bars()
    close = frame(bars)["close"]
    if kind == "sma":
        fast, slow = close.rolling(5).mean(), close.rolling(20).mean()
    else:
        fast, slow = seeded(close, 5, 2 / 6, 0), seeded(close, 20, 2 / 21, 0)
    s = compile_template(
        "tpl_ma_cross", {"ma_type": kind, "window_fast": 5, "window_slow": 20, "side": "both"}
    )
    up, down = cross_up(fast, slow), cross_up(slow, fast)
    check_masks(s, bars, [up, down, down, up])


def test_rsi_reversion_masks() -> None:
    bars = wave_bars()
    r = rsi(frame(bars)["close"], 10)
    level = lambda x: pd.Series(x, index=r.index)  # noqa: E731
    s = compile_template("tpl_rsi_reversion", {"window": 10, "oversold": 35, "overbought": "65"})
    check_masks(
        s, bars,
        [cross_up(r, level(35.0)), (r > 65).to_numpy(), np.zeros(len(bars), bool),
         np.zeros(len(bars), bool)],
    )  # fmt: skip


def test_breakout_masks_and_levels() -> None:
    bars = wave_bars()
    f = frame(bars)
    upper = f["high"].rolling(12).max().shift(1)
    lower = f["low"].rolling(12).min().shift(1)
    exit_low = f["low"].rolling(5).min().shift(1)
    exit_high = f["high"].rolling(5).max().shift(1)
    s = compile_template(
        "tpl_breakout",
        {"entry_window": 12, "exit_window": 5, "side": "both", "stop_loss": 0.03,
         "take_profit": "0.1"},
    )  # fmt: skip
    c = f["close"]
    check_masks(
        s, bars,
        [cross_up(c, upper), (c < exit_low).to_numpy(), cross_up(-c, -lower),
         (c > exit_high).to_numpy()],
    )  # fmt: skip
    assert (s.exits.stop_loss, s.exits.take_profit) == (
        Level("percent", 0.03),
        Level("percent", 0.1),
    )


def test_signal_templates_run_through_run_backtest() -> None:
    bars = wave_bars()
    s = compile_template("tpl_ma_cross", {"window_fast": 5, "window_slow": 20})
    ex = Execution(sizing="fraction", size=1.0, max_open_positions=1, min_trade_amount=0.0)
    out = run_backtest({"X": bars, "Y": wave_bars(seed=4)}, s, ex, 10_000.0, 0)
    first = int(np.flatnonzero(evaluate(s, bars, "1h").long_entry)[0])
    buy = next(t for t in out.trades if t["symbol"] == "X")
    assert (buy["side"], buy["timestamp"], buy["price"]) == (
        "buy", (first + 1) * H, bars.open[first + 1],
    )  # fmt: skip


def test_catalog_shape_and_schemas() -> None:
    items = describe_templates()
    names = [t["name"] for t in items]
    assert names == ["tpl_grid", "tpl_dca", "tpl_ma_cross", "tpl_rsi_reversion", "tpl_breakout"]
    multi = {t["name"]: t["multi_symbol"] for t in items}
    assert multi == {"tpl_grid": False, "tpl_dca": False, "tpl_ma_cross": True,
                     "tpl_rsi_reversion": True, "tpl_breakout": True}  # fmt: skip
    for t in items:
        schema = t["params"]
        jsonschema.Draft202012Validator.check_schema(schema)
        assert set(schema["properties"]) == set(TEMPLATES[t["name"]].params)
        for key, prop in schema["properties"].items():
            if "default" in prop:
                jsonschema.validate(prop["default"], prop)  # every default fits its own schema
            else:
                assert key in schema["required"]
        jsonschema.validate(t["example"], schema)
        compile_template(t["name"], t["example"])
        if not schema["required"]:
            defaults = {k: p["default"] for k, p in schema["properties"].items()}
            jsonschema.validate(defaults, schema)
            assert compile_template(t["name"], {}) == compile_template(t["name"], defaults)


def test_seed_004_example_compiles() -> None:
    plan = compile_template(
        "tpl_grid", {"grid_levels": 8, "upper_price": "72000", "lower_price": "60000"},
        symbols=["BTCUSDT"],
    )  # fmt: skip
    assert isinstance(plan, GridPlan)
    assert plan.levels == pytest.approx([60000 + k * 12000 / 7 for k in range(8)])
    assert plan.slots == 7 and plan.order_size is None


def test_geometric_grid_and_dca_defaults() -> None:
    plan = compile_template(
        "tpl_grid",
        {"grid_levels": 3, "upper_price": 400, "lower_price": 100, "spacing": "geometric"},
    )
    assert plan.levels == pytest.approx([100, 200, 400])
    assert compile_template("tpl_dca", {"amount": 50}) == DcaPlan(50.0, "1d")


BAD = [
    ("tpl_grid", {"lower_price": 1}, "params.upper_price", "is required"),
    (
        "tpl_grid",
        {"upper_price": 2, "lower_price": 1, "grid_levels": 1},
        "params.grid_levels",
        "at least 2",
    ),
    (
        "tpl_grid",
        {"upper_price": 2, "lower_price": 1, "grid_levels": "8"},
        "params.grid_levels",
        "integer",
    ),
    (
        "tpl_grid",
        {"upper_price": 2, "lower_price": 1, "grid_levels": True},
        "params.grid_levels",
        "integer",
    ),
    ("tpl_grid", {"upper_price": 2, "lower_price": 2}, "params.lower_price", "less than"),
    ("tpl_grid", {"upper_price": "7e4", "lower_price": 1}, "params.upper_price", "decimal"),
    ("tpl_grid", {"upper_price": -5, "lower_price": 1}, "params.upper_price", "above 0"),
    (
        "tpl_grid",
        {"upper_price": 2, "lower_price": 1, "spacing": "log"},
        "params.spacing",
        "arithmetic, geometric",
    ),
    (
        "tpl_grid",
        {"upper_price": 2, "lower_price": 1, "order_size": 0},
        "params.order_size",
        "above 0",
    ),
    ("tpl_grid", {"upper_price": 2, "lower_price": 1, "levels": 3}, "params.levels", "unknown"),
    ("tpl_dca", {}, "params.amount", "is required"),
    ("tpl_dca", {"amount": 10, "interval": "2d"}, "params.interval", "1h, 4h, 1d, 1w, 1M"),
    ("tpl_dca", {"amount": 10, "every_bars": 0}, "params.every_bars", "at least 1"),
    ("tpl_dca", {"amount": 10, "take_profit": 0}, "params.take_profit", "above 0"),
    ("tpl_dca", {"amount": 10, "stop_loss": 1}, "params.stop_loss", "at most 0.99"),
    ("tpl_ma_cross", {"window_fast": 50, "window_slow": 50}, "params.window_fast", "less than"),
    ("tpl_ma_cross", {"ma_type": "wma"}, "params.ma_type", "sma, ema"),
    ("tpl_ma_cross", {"side": "short"}, "params.side", "long, both"),
    ("tpl_rsi_reversion", {"oversold": 80}, "params.oversold", "less than overbought"),
    ("tpl_rsi_reversion", {"window": 1}, "params.window", "at least 2"),
    ("tpl_rsi_reversion", {"overbought": 101}, "params.overbought", "at most 100"),
    ("tpl_breakout", {"entry_window": 1}, "params.entry_window", "at least 2"),
    ("tpl_breakout", {"exit_window": 0}, "params.exit_window", "at least 1"),
    ("tpl_breakout", {"stop_loss": "nan"}, "params.stop_loss", "decimal"),
    ("tpl_breakout", [], "params", "object"),
    ("tpl_nope", {}, "template", "unknown template"),
]


@pytest.mark.parametrize(("name", "params", "path", "text"), BAD)
def test_param_errors_name_the_param(name: str, params: object, path: str, text: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(name, params)
    assert info.value.path == path
    assert text in info.value.message
    assert info.value.code == "INVALID_PARAMETER"
    assert str(info.value).startswith(f"{path}: ")
    if name in TEMPLATES and isinstance(params, dict) and "less than" not in text:
        schema = next(t["params"] for t in describe_templates() if t["name"] == name)
        with pytest.raises(jsonschema.ValidationError):  # the schema rejects it too
            jsonschema.validate(params, schema)


def test_symbol_counts() -> None:
    check_symbols("tpl_ma_cross", ["A", "B", "C"])
    check_symbols("tpl_grid", ["A"])
    for name in ("tpl_grid", "tpl_dca"):
        with pytest.raises(TemplateError, match=r"^symbols: .*one symbol, got 2"):
            compile_template(name, {"amount": 1, "upper_price": 2, "lower_price": 1},
                             symbols=["A", "B"])  # fmt: skip
    with pytest.raises(TemplateError, match=r"^symbols: at least one"):
        check_symbols("tpl_breakout", [])


def test_template_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(TemplateError("params.grid_levels", "must be an integer")))
    assert (err.path, err.message, str(err)) == (
        "params.grid_levels", "must be an integer", "params.grid_levels: must be an integer",
    )  # fmt: skip
