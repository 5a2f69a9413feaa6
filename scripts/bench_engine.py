#!/usr/bin/env python
"""Benchmark barstream's engine against a bare numba loop and the peers a user would pick instead.

    .venv/bin/python scripts/bench_engine.py [--sizes 10000,100000,1000000] [--repeat 5]
                                             [--no-check] [--skip backtrader,...] [--profile]
                                             [--stat median|min] [--no-serve]
                                             [--engine-root DIR]  # another checkout's engine
    .venv/bin/python scripts/bench_engine.py --portfolio [--repeat 3]  # 100 symbols x 100k bars

One process, one run. Every engine runs the same strategy on the same seeded synthetic 1-minute
series: SMA 10/30 crossover with an SMA 50 filter, decided on a bar's close, filled at the next
bar's open, 0.1% fee per fill, all in. Before any speed figure is printed, ``--check`` (on by
default) verifies that every engine closes the same trades (entry and exit bar of each) and exits
non-zero, showing the first differences, if they do not. Then it prints median times, ns per bar
and ratios, numba compile time (cold and from a warm on-disk cache, each in a fresh subprocess),
a 100-variant parameter sweep, where barstream's time goes at the largest size (signals, bar
loop, metrics, result lists; ``--profile`` adds cProfile's view), serving the largest run's
results (serialised, stored and read through a real ``barstream serve`` on its embedded
PostgreSQL, with scripts/bench_results.py's steps; ``--no-serve`` leaves it out), and a summary of
the targets of issue 11. ``--portfolio`` instead
times one run over 100 symbols x 100k bars and its peak memory against the input (issue 5).

The bare loop in scripts/bench/floor.py is written apart from the engine: it is the floor.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from bench import barstream as bs  # noqa: E402
from bench import floor, peers, report  # noqa: E402
from bench.data import WARMUP, synthetic_bars  # noqa: E402
from bench.peers import CASH  # noqa: E402

PEERS = ("vectorbt", "backtesting", "backtrader")
ONE_CHUNK = 10**9
SWEEP_BARS = 100_000
SWEEP_FAST = tuple(range(4, 24, 2))
SWEEP_SLOW = tuple(range(30, 130, 10))
SWEEP_TARGET = 200e6  # variant-bars per second on the machine's cores (issue 11)
RISK_SETTINGS = {"sizing", "cooldown_config", "atr_multiplier"}
TARGETS = {"floor": 2.0, "full_risk": 3.0, "vectorbt": 10.0}  # issue 11, at the largest size


@dataclass
class Engine:
    """A named runner: call() does all the timed work and returns (k, 2) closed trades."""

    name: str
    call: Callable[[], np.ndarray]
    checked: bool = True  # its trades must equal the reference
    runs: int | None = None  # fixed number of timed runs (None: --repeat)


@dataclass
class Row:
    """One line of the results table."""

    bars: int
    engine: str
    seconds: float
    runs: int
    trades: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000", help="bar counts, comma-separated")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per engine and size")
    p.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="verify the engines agree on the trades first (default on)",
    )
    p.add_argument("--skip", default="", help=f"peers to leave out: {', '.join(PEERS)}")
    p.add_argument(
        "--backtrader-limit",
        type=float,
        default=300.0,
        help="largest estimated seconds for backtrader's one run at the largest size",
    )
    p.add_argument("--no-sweep", action="store_true", help="leave out the parameter sweep")
    p.add_argument(
        "--no-serve",
        action="store_true",
        help="leave out serving the largest run's results (starts a server and its PostgreSQL)",
    )
    p.add_argument(
        "--stat",
        choices=("median", "min"),
        default="median",
        help="how the timed runs are summarised (min: the least disturbed run on a busy machine)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also print where barstream spends its time at the largest size",
    )
    p.add_argument("--no-compile", action="store_true", help="leave out the compile-time probes")
    p.add_argument(
        "--portfolio",
        action="store_true",
        help="only the 100-symbol x 100k-bar portfolio: time and peak memory vs the input",
    )
    p.add_argument(
        "--engine-root",
        type=Path,
        default=None,
        help="measure the engine package under this directory instead of the repo's",
    )
    p.add_argument("--compile-child", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--spawned-at", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.skip = {s.strip().replace(".py", "") for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(PEERS)
    if unknown:
        p.error(f"--skip: unknown peer(s) {', '.join(sorted(unknown))}")
    return args


def use_engine_root(root: Path | None) -> Path:
    """Import `engine` from root (default: this repository), bypassing an editable install."""
    root = (root or ROOT).resolve()
    sys.path.insert(0, str(root))
    if root != ROOT:
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in _module_of(f)]
    return root


def _module_of(finder: object) -> str:
    return getattr(finder, "__module__", None) or type(finder).__module__


# Engines ----------------------------------------------------------------------------------------


def engines(bars: dict, args: argparse.Namespace, big: bool) -> list[Engine]:
    """Return the engines to run at one size; `big` marks the largest size (backtrader once)."""
    ts0 = int(bars["ts"][0])
    bars_obj = bs.make_bars(bars)
    strategy = bs.make_strategy()
    plain, _ = bs.make_execution(bs.BENCH_SETTINGS)
    risky, lacking = bs.make_execution(bs.FULL_RISK_SETTINGS)
    df = peers.frame(bars)
    out = [
        Engine("bare loop (floor)", lambda: floor.run_staged(bars)[1]),
        Engine("bare loop, fused", lambda: floor.run_fused(bars)[1]),
        Engine("barstream", lambda: bs.trades(bs.run(bars_obj, strategy, plain, ONE_CHUNK), ts0)),
        Engine(
            "barstream, default chunks", lambda: bs.trades(bs.run(bars_obj, strategy, plain), ts0)
        ),
    ]
    if not set(lacking) & RISK_SETTINGS:  # the engine has the full risk model
        risk_run = lambda: bs.trades(bs.run(bars_obj, strategy, risky, ONE_CHUNK), ts0)  # noqa: E731
        out.append(Engine("barstream, full risk model", risk_run, checked=False))
    if "vectorbt" not in args.skip:
        out.append(Engine("vectorbt", lambda: peers.vectorbt_trades(peers.run_vectorbt(bars))))
    if "backtesting" not in args.skip:
        out.append(Engine("backtesting.py", lambda: peers.run_backtesting(bars, data=df)))
    if "backtrader" not in args.skip:
        out.append(
            Engine(
                "backtrader", lambda: peers.run_backtrader(bars, data=df), runs=1 if big else None
            )
        )
    return out


STAT = ["median"]  # --stat: how timed runs are summarised


def summarise(times: list[float]) -> float:
    """The median (or with --stat min, the least) of some timed runs."""
    return min(times) if STAT[0] == "min" else statistics.median(times)


def timed(call: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    """Return (seconds, result) of one call.

    What earlier calls left (a backtrader run leaves millions of objects) is collected and
    frozen first, so that no call pays for the cyclic collector walking another's heap.
    """
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    result = call()
    return time.perf_counter() - t0, result


# Check ------------------------------------------------------------------------------------------


def check_size(bars: dict, found: dict[str, np.ndarray]) -> tuple[int, list[str]]:
    """Compare every engine's trades with the floor's over the part where equity is meaningful."""
    equity, reference = floor.run_staged(bars)
    end = min(report.meaningful_end(equity, bars["close"]), len(equity) - 1)
    count, problems = report.compare_trades(reference, found, end)
    if end < len(equity) - 1:
        print(f"  (compared up to bar {end:,}: after it all-in equity buys under 10 units)")
    return count, problems


# Runs -------------------------------------------------------------------------------------------


def run_sizes(args: argparse.Namespace) -> list[Row]:
    """Check and time every engine at every size; exit non-zero on disagreement."""
    rows: list[Row] = []
    checks: list[str] = []
    for n in args.sizes:
        bars = synthetic_bars(n)
        big = n == max(args.sizes)
        todo = engines(bars, args, big)
        if big and "backtrader" not in args.skip:
            todo = _backtrader_budget(todo, rows, n, args.backtrader_limit)
        first = {e.name: timed(e.call) for e in todo}  # warms every JIT, gives the trades
        rows.extend(_time_engines(todo, n, first, args.repeat))
        if args.check:
            found = {k: v[1] for k, v in first.items() if _engine(todo, k).checked}
            count, problems = check_size(bars, found)
            if problems:
                print(f"\nCHECK FAILED at {n:,} bars: the engines disagree on the trades")
                print("\n".join(problems))
                sys.exit(1)
            checks.append(
                f"- {n:,} bars: {count:,} closed trades identical across {'; '.join(found)}"
            )
    if args.check:
        print("\nCheck passed (trade by trade: entry bar, exit bar):")
        print("\n".join(checks))
    return rows


def _engine(todo: list[Engine], name: str) -> Engine:
    return next(e for e in todo if e.name == name)


def _time_engines(
    todo: list[Engine], n: int, first: dict[str, tuple[float, np.ndarray]], repeat: int
) -> list[Row]:
    """Median of each engine's timed runs, taken in rounds (one run of each engine a round), so
    a slow spell of a shared machine falls on every engine alike; an engine with runs=1 counts
    its first (check) run."""
    times: dict[str, list[float]] = {e.name: [] for e in todo}
    for _ in range(repeat):
        for e in todo:
            if e.runs != 1 and len(times[e.name]) < (e.runs or repeat):
                times[e.name].append(timed(e.call)[0])
    return [
        Row(n, e.name, summarise(times[e.name]), len(times[e.name]), len(first[e.name][1]))
        if e.runs != 1
        else Row(n, e.name, first[e.name][0], 1, len(first[e.name][1]))
        for e in todo
    ]


def _backtrader_budget(todo: list[Engine], rows: list[Row], n: int, limit: float) -> list[Engine]:
    """Leave backtrader out at n bars when its time per bar so far predicts more than limit."""
    done = [r for r in rows if r.engine == "backtrader"]
    if not done:
        return todo
    last = max(done, key=lambda r: r.bars)
    estimate = last.seconds / last.bars * n
    if estimate <= limit:
        return todo
    print(f"  backtrader left out at {n:,} bars: estimated {estimate:.0f} s > {limit:.0f} s")
    return [e for e in todo if e.name != "backtrader"]


# Table ------------------------------------------------------------------------------------------


def results_table(rows: list[Row]) -> str:
    """Return the markdown table: time, ns/bar, ratio to barstream and to the floor."""
    by = {(r.bars, r.engine): r for r in rows}
    lines = []
    for r in rows:
        base = by.get((r.bars, "barstream"))
        flo = by.get((r.bars, "bare loop (floor)"))
        lines.append(
            [
                f"{r.bars:,}",
                r.engine,
                f"{r.seconds:.4f}",
                f"{r.seconds / r.bars * 1e9:,.1f}",
                _ratio(r.seconds, base.seconds if base else None),
                _ratio(r.seconds, flo.seconds if flo else None),
                f"{r.trades:,}",
                str(r.runs),
            ]
        )
    header = [
        "bars",
        "engine",
        f"{STAT[0]} s",
        "ns/bar",
        "x barstream",
        "x floor",
        "trades",
        "runs",
    ]
    return report.table(header, lines)


def _ratio(a: float, b: float | None) -> str:
    if b is None or b <= 0:
        return "—"
    r = a / b
    return f"{r:,.0f}x" if r >= 100 else f"{r:.2f}x"


# Compile time -----------------------------------------------------------------------------------


def compile_probes(engine_root: Path) -> dict[str, dict]:
    """Time the first run_backtest in a fresh process: cold cache, then warm from disk."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-numba-") as tmp:
        data = Path(tmp) / "bars.npz"
        np.savez(data, **synthetic_bars(SWEEP_BARS))
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "cache")}
        for label in ("cold", "warm"):
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--compile-child",
                str(data),
                "--engine-root",
                str(engine_root),
                "--spawned-at",
                repr(time.time()),
            ]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"compile probe ({label}) failed:\n{done.stderr[-2000:]}")
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def compile_child(data: Path, spawned_at: float) -> None:
    """In a fresh process: import, load, first run_backtest, then steady runs; print JSON."""
    t_import = time.time()
    from engine.run import run_backtest  # noqa: F401

    imported = time.time()
    with np.load(data) as z:
        bars = {k: z[k] for k in z.files}
    loaded = time.time()
    args = (bs.make_bars(bars), bs.make_strategy(), bs.make_execution(bs.BENCH_SETTINGS)[0])
    t0 = time.time()
    bs.run(*args, ONE_CHUNK)
    first_end = time.time()
    steady = statistics.median(timed(lambda: bs.run(*args, ONE_CHUNK))[0] for _ in range(3))
    print(
        json.dumps(
            {
                "python_start": t_import - spawned_at,
                "import": imported - t_import,
                "first": first_end - t0,
                "steady": steady,
                "start_to_first_result": first_end - spawned_at - (loaded - imported),
            }
        )
    )


def compile_table(probes: dict[str, dict]) -> tuple[str, bool]:
    """Return the compile-time table and whether the warm first run starts within a second."""
    lines = []
    for label, p in probes.items():
        overhead = p["start_to_first_result"] - p["steady"]
        lines.append(
            [
                label,
                f"{p['python_start']:.2f}",
                f"{p['import']:.2f}",
                f"{p['first']:.3f}",
                f"{p['steady']:.3f}",
                f"{p['first'] - p['steady']:.3f}",
                f"{overhead:.2f}",
            ]
        )
    warm = probes["warm"]
    ok = warm["start_to_first_result"] - warm["steady"] < 1.0
    header = [
        "numba cache",
        "python start s",
        "import engine s",
        "first run_backtest s",
        "steady s",
        "compile/load s",
        "process start → first result - steady s",
    ]
    return report.table(header, lines), ok


# Sweep ------------------------------------------------------------------------------------------


def sweep(args: argparse.Namespace) -> tuple[str, dict[str, float]]:
    """100 (fast, slow) variants over 100k bars: run_sweep on every core vs vectorbt broadcasting."""
    bars = synthetic_bars(SWEEP_BARS)
    pairs = [(f, s) for f in SWEEP_FAST for s in SWEEP_SLOW]
    ts0 = int(bars["ts"][0])
    bars_obj = bs.make_bars(bars)
    plain, _ = bs.make_execution(bs.BENCH_SETTINGS)
    strategies = [bs.make_strategy(f, s) for f, s in pairs]
    cores = os.cpu_count() or 1

    def loop() -> list[int]:
        return [len(bs.trades(bs.run(bars_obj, st, plain), ts0)) for st in strategies]

    fast, slow = [p[0] for p in pairs], [p[1] for p in pairs]

    def theirs() -> list[int]:
        pf = peers.run_vectorbt(bars, fast, slow)
        return [int(c) for c in pf.trades.closed.count().to_numpy()]

    runners: dict[str, Callable[[], list[int]]] = {}
    if bs.has_sweep():
        runners[f"barstream run_sweep, {cores} threads"] = lambda: bs.sweep(
            bars_obj, strategies, plain, cores
        )
        runners["barstream run_sweep, 1 thread"] = lambda: bs.sweep(bars_obj, strategies, plain, 1)
    runners["barstream (loop of run_backtest)"] = loop
    if "vectorbt" not in args.skip:
        runners["vectorbt (one from_signals, 100 columns)"] = theirs
    counts = {k: f() for k, f in runners.items()}  # warm-up and check
    if args.check and len(set(map(tuple, counts.values()))) > 1:
        ref = next(iter(counts))
        for name, got in counts.items():
            bad = [(pairs[i], counts[ref][i], got[i]) for i in range(len(pairs))]
            bad = [b for b in bad if b[1] != b[2]][:5]
            if bad:
                print(f"\nSWEEP CHECK FAILED: {name} vs {ref}, (fast, slow), trades: {bad}")
        sys.exit(1)
    times = {
        k: summarise([timed(f)[0] for _ in range(max(3, args.repeat))]) for k, f in runners.items()
    }
    work = len(pairs) * SWEEP_BARS
    vbt = next((t for k, t in times.items() if k.startswith("vectorbt")), None)
    lines = [
        [k, f"{t:.3f}", f"{t / len(pairs) * 1e3:.2f}", f"{work / t / 1e6:.1f}",
         _ratio(vbt, t) if vbt else "-", f"{sum(counts[k]):,}"]
        for k, t in times.items()
    ]  # fmt: skip
    header = [
        "sweep: 100 (fast, slow) pairs, 100k bars", "total s", "ms per variant",
        "M variant-bars/s", "x faster than vectorbt", "trades",
    ]  # fmt: skip
    best = max(work / t for k, t in times.items() if k.startswith("barstream"))
    verdict = "met" if best >= SWEEP_TARGET else "MISSED"
    note = (
        f"fast ∈ {SWEEP_FAST[0]}..{SWEEP_FAST[-1]} step 2, slow ∈ {SWEEP_SLOW[0]}.."
        f"{SWEEP_SLOW[-1]} step 10, filter SMA 50, {STAT[0]} of {max(3, args.repeat)} runs"
        + (", per-variant trade counts checked equal" if args.check and len(counts) > 1 else "")
        + f". Target ≥ {SWEEP_TARGET / 1e6:.0f} M variant-bars/s on {cores} cores: "
        + f"{best / 1e6:.1f} M — {verdict}."
    )
    return report.table(header, lines) + f"\n\n{note}", times


# Summary ----------------------------------------------------------------------------------------


def summary(rows: list[Row], compile_ok: bool | None) -> str:
    """One paragraph: each target, its measured ratio at the largest size, met or not."""
    n = max(r.bars for r in rows)
    at = {r.engine: r.seconds for r in rows if r.bars == n}
    ours = at.get("barstream")
    parts = []

    def judge(label: str, value: float | None, target: float, higher_is_better: bool) -> None:
        if value is None:
            parts.append(f"{label}: not measured")
            return
        met = value >= target if higher_is_better else value <= target
        sign = "≥" if higher_is_better else "≤"
        parts.append(f"{label} {sign} {target:g}x: {value:.2f}x — {'met' if met else 'MISSED'}")

    flo = at.get("bare loop (floor)")
    judge("barstream / bare loop", _div(ours, flo), TARGETS["floor"], False)
    judge(
        "barstream, default chunks / bare loop",
        _div(at.get("barstream, default chunks"), flo),
        TARGETS["floor"],
        False,
    )
    judge(
        "barstream with stops, ATR sizing and both cooldown tiers / bare loop",
        _div(at.get("barstream, full risk model"), flo),
        TARGETS["full_risk"],
        False,
    )
    judge("vectorbt / barstream", _div(at.get("vectorbt"), ours), TARGETS["vectorbt"], True)
    bt = _div(at.get("backtesting.py"), ours)
    parts.append("backtesting.py / barstream: " + (f"{bt:,.0f}x" if bt else "not measured"))
    if compile_ok is not None:
        parts.append(f"warm-cache first run under a second: {'PASS' if compile_ok else 'FAIL'}")
    return f"Targets at {n:,} bars (compile time excluded): " + "; ".join(parts) + "."


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# Main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    STAT[0] = args.stat
    root = use_engine_root(args.engine_root)
    if args.compile_child is not None:
        compile_child(args.compile_child, args.spawned_at or time.time())
        return 0
    print("# barstream engine benchmark\n")
    print("\n".join(report.machine(root)))
    print(f"- engine interface: {bs.interface()}" + _missing_settings())
    print(f"\nCommand: `{report.command_line()}`\n")
    if args.portfolio:
        from bench import portfolio

        print("## Portfolio: 100 symbols x 100,000 bars\n")
        print(portfolio.report(repeat=args.repeat))
        return 0
    print(
        "Strategy: SMA 10/30 cross with close > SMA 50, next-open fills, 0.1% fee a fill, "
        "all in; seeded synthetic 1-minute bars with drift; decisions from bar 100."
    )
    rows = run_sizes(args)
    print(f"\n## Speed ({STAT[0]} of --repeat runs; backtrader once at the largest size)\n")
    print(results_table(rows))
    compile_ok = None
    if not args.no_compile:
        text, compile_ok = compile_probes_text(root)
        print(text)
    if not args.no_sweep:
        text, _ = sweep(args)
        print("\n## Parameter sweep\n")
        print(text)
    print(f"\n## Where barstream spends its time ({max(args.sizes):,} bars, by stage)\n")
    print(stages(max(args.sizes), args.repeat))
    if not args.no_serve:
        print(f"\n## Serving the results of the {max(args.sizes):,}-bar run\n")
        print(serving(max(args.sizes), args.repeat))
    if args.profile:
        print(f"\n## Where barstream spends its time ({max(args.sizes):,} bars, cProfile)\n")
        print(profile_barstream(max(args.sizes)))
    print("\n## Summary\n")
    print(summary(rows, compile_ok))
    return 0


def stages(n: int, repeat: int) -> str:
    """Return where one-chunk run_backtest spends its time at n bars, stage by stage (medians).

    Each stage is timed on its own through the engine's public pieces, in run order: the frame
    (set-up), the signals (fused, and the general path for comparison), the book (signals plus
    allocation), the bar loop, metrics, calendar returns, and the whole output (metrics, curves,
    the columnar result lists, calendar returns), whose peak traced memory is given too.
    """
    import tracemalloc

    from engine.book import curves, exposure_arrays, new_book, strategy_exits
    from engine.drive import run_chunks
    from engine.results import metrics_of, output_of
    from engine.run import prepare_frame
    from engine.stats import period_returns
    from engine.strategy.evaluate import evaluate

    data = synthetic_bars(n)
    bars = {"BENCH": bs.make_bars(data)}
    strategy, ex = bs.make_strategy(), bs.make_execution(bs.BENCH_SETTINGS)[0]
    exits, t0 = strategy_exits(strategy), int(data["ts"][WARMUP])
    frame = prepare_frame(bars, ex, t0, "1m")

    def book():
        return new_book(frame, bars, strategy, ex, exits, CASH, 2_000)

    done = book()
    run_chunks(done, ONE_CHUNK, None)
    equity = curves(done)[0]
    none = lambda: None  # noqa: E731
    steps: list[tuple[str, Callable[[], object], Callable[[object], object]]] = [
        ("set-up: prepare_frame", none, lambda _: prepare_frame(bars, ex, t0, "1m")),
        ("signals, fused (evaluate)", none, lambda _: evaluate(strategy, bars["BENCH"], "1m")),
        ("signals, general path (for comparison)", none,
         lambda _: evaluate(strategy, bars["BENCH"], "1m", fused=False)),
        ("book: signals + arrays (new_book)", none, lambda _: book()),
        ("bar loop (run_chunks, one chunk)", book, lambda b: run_chunks(b, ONE_CHUNK, None)),
        ("metrics (metrics_of)", none,
         lambda _: metrics_of(done, equity, exposure_arrays(done)[0], frame.ppy)),
        ("calendar returns (period_returns)", none, lambda _: period_returns(equity, done.clock)),
        ("output: metrics, curves, result lists (output_of)", none,
         lambda _: output_of(done, frame.ppy)),
        ("run_backtest end to end", none,
         lambda _: bs.run(bars["BENCH"], strategy, ex, ONE_CHUNK)),
    ]  # fmt: skip
    lines = []
    for name, setup, call in steps:
        times = []
        for _ in range(max(3, repeat)):
            arg = setup()
            times.append(timed(lambda arg=arg, call=call: call(arg))[0])
        lines.append((name, summarise(times)))
    total = lines[-1][1]
    tracemalloc.start()
    output_of(done, frame.ppy)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rows = [[k, f"{t * 1e3:.2f}", f"{t / total:.0%}"] for k, t in lines]
    table = report.table([f"stage at {n:,} bars", f"{STAT[0]} ms", "of end to end"], rows)
    return table + f"\n\nPeak traced memory of output_of: {peak / 2**20:.1f} MiB."


def serving(n: int, repeat: int) -> str:
    """Return the time and peak memory of serving an n-bar run's results, as bench_results does.

    The engine output of the same run as the tables above is serialised into the results body
    the worker stores (tracemalloc peak in-process), stored as head and pages in a transaction
    rolled back, and read back in-process; a real server, having run the same bars itself,
    answers GET results, pages of round trips and trades, and the v1 run with every trip, its
    peak RSS sampled meanwhile.
    """
    import asyncio

    import bench_results as br
    from bench_server import Node

    from engine.results import output_of

    book, ppy, _ = br.finished_run(n)
    output = output_of(book, ppy)
    build_ms, _ = br.best(lambda: output_of(book, ppy), repeat)
    ser_ms, body = br.best(lambda: br.wire_body(output), repeat)
    trips, fills = len(output.round_trips), len(output.trades)
    rows = [
        ["output build (output_of)", f"{build_ms:.1f} ms",
         f"peak {br.peak_mb(lambda: output_of(book, ppy)):.1f} MB (tracemalloc); "
         f"{trips:,} round trips, {fills:,} fills"],
        ["serialise the results body (JSON rows)", f"{ser_ms:.1f} ms",
         f"peak {br.peak_mb(lambda: br.wire_body(output)):.1f} MB (tracemalloc)"],
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-engine-serve-") as tmp:
        node = Node(Path(tmp) / "node", {"BARSTREAM_WORKERS": "1"})
        node.start()
        try:
            run_id = br.server_run(node, n)
            m = asyncio.run(br.store_times(node, run_id, body, None, repeat))
            rows += [
                ["store (head + pages by COPY, one transaction)", f"{m['new_w']:.1f} ms", ""],
                ["read results in-process (head + first pages)", f"{m['new_r']:.1f} ms", ""],
                ["read every trip and fill in-process", f"{m['new_f']:.1f} ms", ""],
            ]
            rows += [[r[0], r[2], r[3]] for r in br.http_rows(node, run_id, repeat)]
        finally:
            node.stop()
    head = ["serving the results", "time", "notes"]
    note = (
        "\n\nIn-process rows are the best of --repeat; HTTP rows the median, the server's own run."
    )
    return report.table(head, rows) + note


def profile_barstream(n: int, top: int = 8) -> str:
    """Return the functions with the most own time in one one-chunk run_backtest."""
    import cProfile
    import io
    import pstats

    bars = synthetic_bars(n)
    args = (bs.make_bars(bars), bs.make_strategy(), bs.make_execution(bs.BENCH_SETTINGS)[0])
    bs.run(*args, ONE_CHUNK)
    prof = cProfile.Profile()
    prof.runcall(bs.run, *args, ONE_CHUNK)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    lines = out.getvalue().strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
    return "```\n" + "\n".join([lines[0].strip(), *lines[start:]]) + "\n```"


def compile_probes_text(root: Path) -> tuple[str, bool]:
    probes = compile_probes(root)
    text, ok = compile_table(probes)
    verdict = "PASS" if ok else "FAIL"
    return (
        f"\n## Numba compile time (fresh process, {SWEEP_BARS:,} bars)\n\n{text}\n\n"
        f"Warm-cache first run within a second of process start (minus steady run time): "
        f"{verdict}"
    ), ok


def _missing_settings() -> str:
    missing = sorted(set(bs.make_execution(bs.FULL_RISK_SETTINGS)[1]))
    return f" (Execution lacks: {', '.join(missing)})" if missing else ""


if __name__ == "__main__":
    sys.exit(main())
