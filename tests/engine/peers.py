"""The SMA 10/30 crossover run by backtesting.py and by our engine with aligned settings, shared by
the differential tests (tests/engine/test_differential.py states the conventions aligned)."""

import warnings

import numpy as np
import pandas as pd
from backtesting import Backtest
from backtesting import Strategy as BtStrategy
from backtesting.lib import crossover

from engine.data.store import Bars
from engine.execution import Execution
from engine.output import BacktestOutput
from engine.run import run_backtest
from engine.strategy.form import Condition, Strategy

CASH = 10_000.0
WINDOWS = (("window_fast", 10), ("window_slow", 30))
SMA_CROSS = Strategy(
    name="sma 10/30",
    long_entry=(Condition("signal", "sma_cross_up", WINDOWS),),
    long_exit=(Condition("signal", "sma_cross_down", WINDOWS),),
)
ALIGNED = Execution(
    fee_model="fixed_bps", fee_bps=10.0, fill="next_open", sizing="fraction", size=1.0,
    lot_size=1.0, min_balance_threshold=0.0, min_trade_amount=0.0, max_open_positions=1,
    max_trades_per_day=1_000_000, max_units_per_trade=1e15, max_trade_amount=1e18,
    atr_multiplier=0.0, cooldown_bars=0, daily_momentum_limit=0, weekly_momentum_limit=0,
)  # fmt: skip


class SmaCross(BtStrategy):
    """backtesting.py's own SMA crossover, with its own SMA (pandas) and crossover."""

    def init(self) -> None:
        close = pd.Series(self.data.Close)
        self.fast = self.I(lambda: close.rolling(10).mean().to_numpy())
        self.slow = self.I(lambda: close.rolling(30).mean().to_numpy())

    def next(self) -> None:
        if crossover(self.fast, self.slow):
            self.buy()
        elif crossover(self.slow, self.fast):
            self.position.close()


def to_bars(df: pd.DataFrame) -> Bars:
    """Convert a backtesting.py OHLCV frame to our Bars."""
    ts = df.index.as_unit("ns").asi8.astype(np.int64)
    cols = [df[c].to_numpy(np.float64) for c in ("Open", "High", "Low", "Close", "Volume")]
    return Bars(ts, *cols)


def peer(df: pd.DataFrame) -> pd.Series:
    """Run backtesting.py on df."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(df, SmaCross, cash=CASH, commission=0.001).run()


def ours(df: pd.DataFrame, ppy: float | None = None, start: int = 0) -> BacktestOutput:
    """Run our engine on df with the aligned settings from bar `start`, every equity bar kept."""
    bars = to_bars(df)
    return run_backtest(
        {"X": bars}, SMA_CROSS, ALIGNED, CASH, int(bars.ts[start]), max_points=len(bars),
        periods_per_year=ppy,
    )  # fmt: skip
