"""barstream through its public entry point, engine.run.run_backtest, as a user would call it.

Written against the planned interface (engine.strategy.form.Strategy, engine.execution.Execution
with seed 001's setting names); falls back to the foundation interface (a compiled strategy dict,
engine.run.Execution) while the rewrite has not landed. Settings an Execution does not know are
reported, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np

from bench.data import MINUTE_NS, WARMUP
from bench.peers import CASH

HUGE = 1e15  # the largest cap Execution takes

BENCH_SETTINGS = {
    "fee_model": "fixed_bps",
    "fee_bps": 10.0,
    "slippage_bps": 0.0,
    "sizing": "fraction",
    "size": 1.0,
    "lot_size": 0.0,
    "atr_multiplier": 0.0,
    "min_trade_amount": 0.0,
    "max_trade_amount": HUGE,
    "max_units_per_trade": HUGE,
    "max_trades_per_day": 100_000,
    "max_open_positions": 1,
    "min_balance_threshold": 0.0,
    "max_risk_per_trade": 1.0,
    "enable_volatility_adjustment": False,
    "cooldown_config": {},
    "cooldown_bars": 0,
    "daily_momentum_limit": 0,
    "weekly_momentum_limit": 0,
}

FULL_RISK_SETTINGS = {
    **BENCH_SETTINGS,
    "sizing": "risk",
    "max_risk_per_trade": 0.01,
    "atr_period": 14,
    "atr_multiplier": 2.0,
    "cooldown_config": {
        "1m": {
            "short_loss_limit": 4,
            "long_loss_limit": 6,
            "short_window_bars": 240,
            "long_window_bars": 720,
        }
    },
}


def interface() -> str:
    """Name the engine interface found: "planned" (engine.execution exists) or "foundation"."""
    import importlib.util

    return "planned" if importlib.util.find_spec("engine.execution") else "foundation"


def make_bars(bars: dict[str, np.ndarray]):
    """Return the engine's Bars for the benchmark series."""
    from engine.data.store import Bars

    return Bars(*(bars[k] for k in ("ts", "open", "high", "low", "close", "volume")))


def make_strategy(fast: int = 10, slow: int = 30, filt: int = 50):
    """The benchmark strategy in the engine's strategy form."""
    if interface() == "foundation":
        from engine.strategy.compile import compile_strategy

        cross = {"window_fast": fast, "window_slow": slow}
        return compile_strategy(
            {
                "entry": [
                    {"name": "sma_cross_up", "signal_type": "TRIGGER", "params": cross},
                    {"name": "is_above_sma", "signal_type": "FILTER", "params": {"window": filt}},
                ],
                "exit": [{"name": "sma_cross_down", "params": cross}],
            }
        )
    from engine.strategy.form import Condition, Strategy

    cross = (("window_fast", fast), ("window_slow", slow))
    return Strategy(
        name=f"sma {fast}/{slow} > sma {filt}",
        long_entry=(
            Condition("signal", "sma_cross_up", cross, role="TRIGGER"),
            Condition("signal", "is_above_sma", (("window", filt),), role="FILTER"),
        ),
        long_exit=(Condition("signal", "sma_cross_down", cross, role="EXIT"),),
    )


def make_execution(settings: dict) -> tuple[object, list[str]]:
    """Return (Execution, names of settings it does not have)."""
    try:
        from engine.execution import Execution
    except ImportError:
        from engine.run import Execution

        settings = _foundation(settings)
    known = {f.name for f in dataclasses.fields(Execution)}
    missing = sorted(set(settings) - known)
    return Execution(**{k: v for k, v in settings.items() if k in known}), missing


def _foundation(settings: dict) -> dict:
    """Translate the planned names to the foundation Execution (no stop is None there)."""
    out = dict(settings)
    if not out.get("atr_multiplier"):
        out["atr_multiplier"] = None
    return out


def run(bars_obj, strategy, execution, chunk_bars: int | None = None):
    """Call run_backtest over the whole series, decisions from bar WARMUP on."""
    from engine.run import run_backtest

    params = inspect.signature(run_backtest).parameters
    kwargs: dict = {}
    if chunk_bars is not None:
        kwargs["chunk_bars"] = chunk_bars
    if "resolution" in params:
        kwargs["resolution"] = "1m"
    args = [{"BENCH": bars_obj}, strategy, execution]
    if "capital" in params:
        args.append(CASH)
    t0 = int(bars_obj.ts[WARMUP])
    if "trade_start_ns" in params:
        args.append(t0)
    return run_backtest(*args, **kwargs)


def trades(output, ts0: int) -> np.ndarray:
    """Return the closed round trips as (entry bar index, exit bar index)."""
    trips = output.round_trips
    if hasattr(trips, "columns"):  # columnar output (engine.output.Table): no rows built
        times = np.stack([trips["entry_time"], trips["exit_time"]], axis=1).astype(np.int64)
        return (times - ts0) // MINUTE_NS
    rows = [
        ((t["entry_time"] - ts0) // MINUTE_NS, (t["exit_time"] - ts0) // MINUTE_NS) for t in trips
    ]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def has_sweep() -> bool:
    """Return whether the engine has run_sweep with a worker count (engine.sweep)."""
    try:
        from engine.sweep import run_sweep
    except ImportError:
        return False
    return "workers" in inspect.signature(run_sweep).parameters


def sweep(bars_obj, strategies: list, execution, workers: int) -> list[int]:
    """Run the strategies as one engine.sweep.run_sweep on `workers` threads; trades per variant."""
    from engine.sweep import Variant, run_sweep

    variants = [Variant(k, {}, st) for k, st in enumerate(strategies, start=1)]
    t0 = int(bars_obj.ts[WARMUP])
    rows, _ = run_sweep(
        {"BENCH": bars_obj}, variants, execution, CASH, t0, rank_by="total_return",
        resolution="1m", workers=workers,
    )  # fmt: skip
    rows.sort(key=lambda r: r["number"])
    return [int(r["metrics"]["trade_count"]) for r in rows]
