"""Bar store load speed: a 1,000,000-bar 1-minute slice and a resampled 1h slice from the cache.

Run: .venv/bin/python scripts/bench_store.py [--bars 1200000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.data.demo import DEMO_SYMBOLS, generate_bars
from engine.data.store import MINUTE_NS, BarStore

T0 = 1_704_067_200 * 10**9


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of fn in milliseconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def machine() -> str:
    """A one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main() -> None:
    """Build a store in a temporary directory, time the loads, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_200_000, help="1-minute bars stored")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = BarStore(Path(tmp) / "bars")
        bars = generate_bars(DEMO_SYMBOLS[1], T0, args.bars, np.random.default_rng(1))
        store.write("BTC-USD", bars)
        start = T0 + 100_000 * MINUTE_NS
        end = start + (1_000_000 - 1) * MINUTE_NS
        assert len(store.load("BTC-USD", "1m", start, end)) == 1_000_000
        t = time.perf_counter()
        store.load("BTC-USD", "1h", start, end)
        build = (time.perf_counter() - t) * 1e3
        rows = [
            ("1m slice, 1,000,000 bars", "store.load('BTC-USD', '1m', start, end)",
             median_ms(lambda: store.load("BTC-USD", "1m", start, end), args.repeat)),
            ("1h slice from the cache, 16,667 bars", "store.load('BTC-USD', '1h', start, end)",
             median_ms(lambda: store.load("BTC-USD", "1h", start, end), args.repeat)),
            ("1h, fresh store (reopen the cache)", "BarStore(root).load('BTC-USD', '1h', start, end)",
             median_ms(lambda: BarStore(store.root).load("BTC-USD", "1h", start, end), args.repeat)),
            ("1h cache build from 1m (first use)", "store.load('BTC-USD', '1h', ...) once", build),
        ]  # fmt: skip
    print(f"machine: {machine()}")
    print(f"stored: {args.bars:,} 1-minute bars; median of {args.repeat} runs\n")
    print("| load | command | median ms |\n|---|---|---:|")
    for label, cmd, ms in rows:
        print(f"| {label} | `{cmd}` | {ms:.1f} |")


if __name__ == "__main__":
    main()
