"""The peers a user would pick instead, each set up to fill at the next bar's open.

Every runner takes the bars dict from bench.data and returns the closed trades as an (k, 2)
array of (entry bar index, exit bar index), after doing everything it is timed for. Decisions
start at bar WARMUP in every engine, so indicator warm-up conventions never differ.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bench.data import WARMUP

FEE = 0.001
CASH = 1_000_000.0


def frame(bars: dict[str, np.ndarray]) -> pd.DataFrame:
    """Return the bars as the OHLCV DataFrame backtesting.py and backtrader read."""
    index = pd.DatetimeIndex(pd.to_datetime(bars["ts"], unit="ns"), name="Date")
    return pd.DataFrame(
        {k.capitalize(): bars[k] for k in ("open", "high", "low", "close", "volume")}, index=index
    )


# vectorbt ---------------------------------------------------------------------------------------


def vectorbt_signals(close: pd.Series, fast, slow, filt: int):
    """Return (entries, exits) decided on each bar's close; fast/slow may be lists (columns)."""
    import vectorbt as vbt

    ma_fast = vbt.MA.run(close, fast, short_name="fast")
    ma_slow = vbt.MA.run(close, slow, short_name="slow")
    ma_filt = vbt.MA.run(close, filt, short_name="filt")
    up = ma_fast.ma_crossed_above(ma_slow).to_numpy()
    down = ma_fast.ma_crossed_below(ma_slow).to_numpy().copy()
    above = close.to_numpy() > ma_filt.ma.to_numpy()
    if up.ndim == 2:
        above = above.reshape(-1, 1)
    entries = up & above
    entries[:WARMUP] = False
    down[:WARMUP] = False
    return entries, down


def run_vectorbt(bars, fast=10, slow=30, filt=50):
    """Indicators, signals, portfolio (next-open fills) and its total return; return trades."""
    import vectorbt as vbt

    close = pd.Series(bars["close"])
    entries, exits = vectorbt_signals(close, fast, slow, filt)
    pf = vbt.Portfolio.from_signals(
        close,
        _shift(entries),
        _shift(exits),
        price=pd.Series(bars["open"]),
        fees=FEE,
        size=np.inf,
        init_cash=CASH,
        freq="1min",
    )
    pf.total_return()
    return pf


def vectorbt_trades(pf) -> np.ndarray:
    """Return a one-column portfolio's closed trades as (entry index, exit index)."""
    rec = pf.trades.closed.records
    return np.stack([rec["entry_idx"].to_numpy(), rec["exit_idx"].to_numpy()], axis=1)


def _shift(mask: np.ndarray) -> np.ndarray:
    """Move each signal one bar later, so the order fills at the next bar's open."""
    out = np.zeros_like(mask)
    out[1:] = mask[:-1]
    return out


# backtesting.py ---------------------------------------------------------------------------------


def _sma(values, n: int) -> np.ndarray:
    return pd.Series(values).rolling(n).mean().to_numpy()


def run_backtesting(bars, fast=10, slow=30, filt=50, data: pd.DataFrame | None = None):
    """Backtest with next-open fills and 0.1% commission; return its closed trades."""
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    class SmaCross(Strategy):
        def init(self):
            close = self.data.Close
            self.fast = self.I(_sma, close, fast)
            self.slow = self.I(_sma, close, slow)
            self.filt = self.I(_sma, close, filt)

        def next(self):
            if len(self.data) <= WARMUP:
                return
            if self.position:
                if crossover(self.slow, self.fast):
                    self.position.close()
            elif crossover(self.fast, self.slow) and self.data.Close[-1] > self.filt[-1]:
                self.buy()

    import backtesting.backtesting as engine_module

    engine_module._tqdm = lambda seq, **_: seq  # no progress bar on the benchmark's output
    df = frame(bars) if data is None else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(df, SmaCross, cash=CASH, commission=FEE, trade_on_close=False)
        stats = bt.run()
    trades = stats["_trades"]
    return np.stack([trades["EntryBar"].to_numpy(), trades["ExitBar"].to_numpy()], axis=1)


# backtrader -------------------------------------------------------------------------------------


def run_backtrader(bars, fast=10, slow=30, filt=50, data: pd.DataFrame | None = None):
    """Cerebro with cheat-on-open: decide on the close, size all in at the next open."""
    import backtrader as bt

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.fast = bt.indicators.SMA(self.data.close, period=fast)
            self.slow = bt.indicators.SMA(self.data.close, period=slow)
            self.filt = bt.indicators.SMA(self.data.close, period=filt)
            self.cross = bt.indicators.CrossOver(self.fast, self.slow)
            self.pending = 0
            self.trades: list[tuple[int, int]] = []

        def next(self):
            i = len(self) - 1
            if i < WARMUP or i >= self.data.buflen() - 1:
                return
            if self.position.size > 0:
                if self.cross[0] < 0:
                    self.pending = -1
            elif self.cross[0] > 0 and self.data.close[0] > self.filt[0]:
                self.pending = 1

        def next_open(self):
            if self.pending == 1:
                # A hair under all in, so float rounding never makes the broker reject the order
                units = self.broker.getcash() / (self.data.open[0] * (1.0 + FEE)) * (1 - 1e-9)
                self.buy(size=units)
            elif self.pending == -1:
                self.close()
            self.pending = 0

        def notify_trade(self, trade):
            if trade.isclosed:
                self.trades.append((trade.baropen - 1, trade.barclose - 1))

    df = frame(bars) if data is None else data
    cerebro = bt.Cerebro(cheat_on_open=True, stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=FEE)
    strat = cerebro.run()[0]
    return np.array(strat.trades, dtype=np.int64).reshape(-1, 2)
