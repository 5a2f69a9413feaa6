"""The template catalog: named strategy templates with typed params, a JSON Schema and a compiler.

``tpl_ma_cross``, ``tpl_rsi_reversion`` and ``tpl_breakout`` compile to the internal Strategy
(through engine.strategy.compile, so they run on engine.run.run_backtest); ``tpl_grid`` and
``tpl_dca`` compile to plans that engine.templates.run.run_template runs on kernels of their own.

    >>> compile_template("tpl_grid", {"grid_levels": 3, "upper_price": "120", "lower_price": 100})
    GridPlan(levels=(100.0, 110.0, 120.0), order_size=None)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.params import Param
from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.form import Strategy
from engine.templates.params import REQUIRED, TemplateError, object_schema, tparam, validate
from engine.templates.plans import DcaPlan, GridPlan

Plan = Strategy | GridPlan | DcaPlan
DCA_INTERVALS = ("1h", "4h", "1d", "1w", "1M")


@dataclass(frozen=True)
class Template:
    """A named template: params, whether it trades several symbols, and how it compiles."""

    name: str
    description: str
    params: dict[str, Param]
    multi_symbol: bool
    build: Callable[[dict[str, Any]], Plan]
    example: dict[str, Any]
    constraints: tuple[str, ...] = ()


def _side() -> Param:
    """The side param of the signal templates."""
    return tparam("string", "long", "long: long only; both: also short (needs allow_short)",
                  choices=("long", "both"))  # fmt: skip


def _levels() -> dict[str, Param]:
    """Optional percent stop loss and take profit of the signal templates."""
    return {
        "stop_loss": tparam("number", None, "stop below entry, a fraction: 0.02 = 2%",
                            0.0, 0.99, exclusive_minimum=True),
        "take_profit": tparam("number", None, "target beyond entry, a fraction: 0.05 = 5%",
                              0.0, 100.0, exclusive_minimum=True),
    }  # fmt: skip


def _ordered(p: dict[str, Any], small: str, large: str) -> None:
    """Raise unless p[small] < p[large], naming `small`."""
    if p[small] >= p[large]:
        raise TemplateError(f"params.{small}", f"must be less than {large}")


def _strategy(
    name: str, p: dict[str, Any], long: tuple[list, list], short: tuple[list, list]
) -> Strategy:
    """Compile a v2 strategy object with the template's rules, side and levels."""
    spec: dict[str, Any] = {"name": name, "side": p["side"], "entry": long[0], "exit": long[1]}
    if p["side"] == "both":
        spec["short_entry"], spec["short_exit"] = short
    for key in ("stop_loss", "take_profit"):
        if p[key] is not None:
            spec[key] = {"type": "percent", "value": p[key]}
    try:
        return compile_strategy(spec)
    except StrategyError as exc:  # params are checked first, so this is a catalog bug
        raise TemplateError("params", str(exc)) from exc


def _sig(name: str, role: str, **params: int | float) -> dict[str, Any]:
    """Return a catalog signal object."""
    return {"name": name, "signal_type": role, "params": params}


def build_ma_cross(p: dict[str, Any]) -> Strategy:
    """Long on the fast MA crossing above the slow one, out (or short) on the cross below."""
    _ordered(p, "window_fast", "window_slow")
    w = {"window_fast": p["window_fast"], "window_slow": p["window_slow"]}
    up, down = f"{p['ma_type']}_cross_up", f"{p['ma_type']}_cross_down"
    return _strategy(
        "tpl_ma_cross", p,
        ([_sig(up, "TRIGGER", **w)], [_sig(down, "EXIT", **w)]),
        ([_sig(down, "TRIGGER", **w)], [_sig(up, "EXIT", **w)]),
    )  # fmt: skip


def build_rsi_reversion(p: dict[str, Any]) -> Strategy:
    """Long when RSI crosses back above oversold, out when RSI is above overbought."""
    _ordered(p, "oversold", "overbought")
    w, lo, hi = p["window"], p["oversold"], p["overbought"]
    return _strategy(
        "tpl_rsi_reversion", p,
        ([_sig("rsi_cross_up", "TRIGGER", window=w, threshold=lo)],
         [_sig("rsi_overbought", "EXIT", window=w, threshold=hi)]),
        ([_sig("rsi_cross_down", "TRIGGER", window=w, threshold=hi)],
         [_sig("rsi_oversold", "EXIT", window=w, threshold=lo)]),
    )  # fmt: skip


def build_breakout(p: dict[str, Any]) -> Strategy:
    """Long when the close first breaks the previous bar's Donchian high, out below its low."""
    n, x = p["entry_window"], p["exit_window"]
    up = {"condition": f"cross_above(close, shift(donchian_upper({n}), 1))"}
    down = {"condition": f"cross_below(close, shift(donchian_lower({n}), 1))"}
    return _strategy(
        "tpl_breakout", p,
        ([up], [_sig("donchian_breakout_down", "EXIT", window=x)]),
        ([down], [_sig("donchian_breakout_up", "EXIT", window=x)]),
    )  # fmt: skip


def build_grid(p: dict[str, Any]) -> GridPlan:
    """Return the grid's price lines."""
    _ordered(p, "lower_price", "upper_price")
    lo, hi, n = p["lower_price"], p["upper_price"], p["grid_levels"]
    if p["spacing"] == "geometric":
        levels = lo * (hi / lo) ** (np.arange(n) / (n - 1))
    else:
        levels = lo + (hi - lo) * np.arange(n) / (n - 1)
    levels[0], levels[-1] = lo, hi  # exact bounds, whatever the rounding
    return GridPlan(tuple(float(x) for x in levels), p["order_size"])


def build_dca(p: dict[str, Any]) -> DcaPlan:
    """Return the DCA schedule, amount and exits."""
    interval = None if p["every_bars"] is not None else p["interval"]
    return DcaPlan(p["amount"], interval, p["every_bars"], p["take_profit"], p["stop_loss"])


def _templates() -> tuple[Template, ...]:
    """Every template."""
    stops = _levels()
    return (
        Template(
            "tpl_grid",
            "Grid: resting limit buys on price lines below the market, each filled buy answered "
            "by a sell one line up and each filled sell by a buy one line down (maker fees)",
            {
                "grid_levels": tparam("integer", 10, "number of price lines, bounds included", 2, 1000),
                "upper_price": tparam("number", REQUIRED, "top price line", 0, None, True),
                "lower_price": tparam("number", REQUIRED, "bottom price line", 0, None, True),
                "spacing": tparam("string", "arithmetic", "equal price steps or equal ratios",
                                  choices=("arithmetic", "geometric")),
                "order_size": tparam("number", None, "base units per order; null splits capital "
                                     "x leverage equally over the grid_levels - 1 slots",
                                     0, None, True),
            },
            False, build_grid,
            {"grid_levels": 8, "upper_price": "72000", "lower_price": "60000"},
            ("lower_price < upper_price",),
        ),
        Template(
            "tpl_dca",
            "Dollar-cost averaging: a market buy of amount at the open of the first bar of every "
            "period; an optional take profit sells everything and starts a new cycle",
            {
                "amount": tparam("number", REQUIRED, "quote currency per buy (fee on top)",
                                 0, None, True),
                "interval": tparam("string", "1d", "calendar period in UTC (1w starts Monday)",
                                   choices=DCA_INTERVALS),
                "every_bars": tparam("integer", None, "buy every N bars instead of per interval",
                                     1, 10**7),
                "take_profit": tparam("number", None, "limit sell of everything at average cost "
                                      "x (1 + take_profit); 0.05 = 5%", 0, 100, True),
                "stop_loss": tparam("number", None, "stop sell of everything at average cost "
                                    "x (1 - stop_loss); 0.1 = 10%", 0, 0.99, True),
            },
            False, build_dca,
            {"amount": "100", "interval": "1w", "take_profit": 0.1},
        ),
        Template(
            "tpl_ma_cross",
            "Moving-average crossover: long when the fast average crosses above the slow one",
            {
                "ma_type": tparam("string", "sma", "simple or exponential averages",
                                  choices=("sma", "ema")),
                "window_fast": tparam("integer", 10, "fast average window", 2, 1000),
                "window_slow": tparam("integer", 50, "slow average window", 3, 2000),
                "side": _side(),
                **stops,
            },
            True, build_ma_cross, {"ma_type": "ema", "window_fast": 12, "window_slow": 26},
            ("window_fast < window_slow",),
        ),
        Template(
            "tpl_rsi_reversion",
            "RSI mean reversion: long when RSI crosses back above oversold, exit above overbought",
            {
                "window": tparam("integer", 14, "RSI window", 2, 500),
                "oversold": tparam("number", 30.0, "oversold RSI level", 0, 100),
                "overbought": tparam("number", 70.0, "overbought RSI level", 0, 100),
                "side": _side(),
                **stops,
            },
            True, build_rsi_reversion, {"window": 14, "oversold": 25, "overbought": 75},
            ("oversold < overbought",),
        ),
        Template(
            "tpl_breakout",
            "Donchian breakout: long when the close first rises above the previous bar's "
            "entry_window-bar high, exit when it falls below the previous exit_window-bar low",
            {
                "entry_window": tparam("integer", 20, "channel window of the entry", 2, 2000),
                "exit_window": tparam("integer", 10, "channel window of the exit", 1, 2000),
                "side": _side(),
                **stops,
            },
            True, build_breakout, {"entry_window": 55, "exit_window": 20, "stop_loss": 0.05},
        ),
    )  # fmt: skip


TEMPLATES: dict[str, Template] = {t.name: t for t in _templates()}


def get_template(name: Any) -> Template:
    """Return a template by name, or raise TemplateError naming the field."""
    if not isinstance(name, str) or name not in TEMPLATES:
        raise TemplateError("template", f"unknown template {name!r}; one of {', '.join(TEMPLATES)}")
    return TEMPLATES[name]


def check_symbols(name: str, symbols: Sequence[str]) -> None:
    """Raise unless the template can trade this many symbols."""
    t = get_template(name)
    if not symbols:
        raise TemplateError("symbols", "at least one symbol is required")
    if len(symbols) > 1 and not t.multi_symbol:
        raise TemplateError("symbols", f"{name} trades one symbol, got {len(symbols)}")


def compile_template(name: str, params: Any, *, symbols: Sequence[str] | None = None) -> Plan:
    """Validate a template's params (and symbol count, if given) and compile it."""
    t = get_template(name)
    if symbols is not None:
        check_symbols(name, symbols)
    return t.build(validate(t.params, params, name))


def describe_templates() -> list[dict]:
    """Return the catalog as JSON-ready dicts for GET /api/v2/templates."""
    return [
        {
            "name": t.name,
            "description": t.description,
            "multi_symbol": t.multi_symbol,
            "params": object_schema(t.params),
            "constraints": list(t.constraints),
            "example": t.example,
        }
        for t in TEMPLATES.values()
    ]
