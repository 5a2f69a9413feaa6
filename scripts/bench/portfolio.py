"""The 100-symbol portfolio benchmark: time and peak memory of one run_backtest over 100 symbols.

Every symbol is a seeded synthetic 1-minute series (its own seed); ``offset`` shifts symbol k's
bars by k minutes, so the clock is a true union instead of one shared set of times. Memory is
the peak of the allocations traced (tracemalloc) during one run, against the bytes of the input
arrays (ts, open, high, low, close, volume of every symbol); the process's peak resident set is
printed beside it.
"""

from __future__ import annotations

import dataclasses
import resource
import statistics
import time
import tracemalloc

import numpy as np

from bench import barstream as bs
from bench.data import MINUTE_NS, synthetic_bars

TARGET_SECONDS = 1.0
TARGET_MEMORY = 3.0
SETTINGS = {**bs.BENCH_SETTINGS, "max_open_positions": 100}


def make_portfolio(symbols: int, n: int, offset: bool) -> dict:
    """Return symbol -> Bars of n bars each."""
    out = {}
    for k in range(symbols):
        arrays = synthetic_bars(n, seed=1_000 + k)
        if offset:
            arrays["ts"] = arrays["ts"] + k * MINUTE_NS
        out[f"S{k:03d}"] = bs.make_bars(arrays)
    return out


def input_bytes(bars: dict) -> int:
    """Return the bytes of every input array."""
    fields = ("ts", "open", "high", "low", "close", "volume")
    return sum(np.asarray(getattr(b, f)).nbytes for b in bars.values() for f in fields)


def run_once(bars: dict, strategy, execution) -> object:
    """One run over the whole portfolio, decisions from bar 100 of the first symbol."""
    from engine.run import run_backtest

    t0 = int(next(iter(bars.values())).ts[100])
    return run_backtest(bars, strategy, execution, 1_000_000.0, t0, resolution="1m")


def measure(symbols: int, n: int, repeat: int, offset: bool) -> dict:
    """Return seconds (median), traced peak bytes, input bytes, max RSS and trade count."""
    bars = make_portfolio(symbols, n, offset)
    strategy = bs.make_strategy()
    execution, _ = bs.make_execution(SETTINGS)
    run_once(make_portfolio(2, 1_000, offset), strategy, execution)  # compile / load the cache
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = run_once(bars, strategy, execution)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    run_once(bars, strategy, execution)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "seconds": statistics.median(times),
        "peak": peak,
        "input": input_bytes(bars),
        "rss": rss,
        "trades": len(out.round_trips),  # type: ignore[union-attr]
        "clock": out.bars,  # type: ignore[union-attr]
    }


def report(symbols: int = 100, n: int = 100_000, repeat: int = 3) -> str:
    """Return the markdown section: one line per clock layout and the verdict on the targets."""
    lines = [
        "| clock | symbols x bars | median s | traced peak MB | input MB | peak / input "
        "| process max RSS MB | round trips |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for offset in (False, True):
        m = measure(symbols, n, repeat, offset)
        ratio = m["peak"] / m["input"]
        name = "symbols offset by k minutes" if offset else "shared bar times"
        lines.append(
            f"| {name} ({m['clock']:,} steps) | {symbols} x {n:,} | {m['seconds']:.3f} "
            f"| {m['peak'] / 1e6:,.0f} | {m['input'] / 1e6:,.0f} | {ratio:.2f}x "
            f"| {m['rss'] / 1e6:,.0f} | {m['trades']:,} |"
        )
        verdicts.append(
            f"- {name}: {m['seconds']:.3f} s (target < {TARGET_SECONDS:g} s: "
            f"{'met' if m['seconds'] < TARGET_SECONDS else 'MISSED'}); peak {ratio:.2f}x input "
            f"(target < {TARGET_MEMORY:g}x: {'met' if ratio < TARGET_MEMORY else 'MISSED'})"
        )
    settings = dataclasses.asdict(bs.make_execution(SETTINGS)[0])
    head = (
        f"SMA 10/30 cross with close > SMA 50 on every symbol, fraction sizing 1.0 (each entry "
        f"spends equity / {symbols}), max_open_positions {settings['max_open_positions']}, "
        "0.1% fee a fill, one shared cash balance; compile time excluded; peak = tracemalloc's "
        "peak during one run (the input arrays exist before it and are not counted).\n"
    )
    return head + "\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts)
