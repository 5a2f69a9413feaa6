"""The results benchmark (issue 11, columnar results): a 1M-bar run with 10,000+ round trips.

Prints the machine, the command and one table, old path beside new, measured in the same run:

- engine output build: engine.results.output_of (columns) against the output builder before it
  (list-of-dicts, read from git at OLD_REV), on the same finished Book, best of --repeat;
- serialise: the results body as the worker builds it (server.results: JSON rows laid out from
  the columns) against the old one (row dicts, ISO times per row, then orjson);
- store: stored_results.write (head + pages by COPY) against the old single jsonb insert, in a
  transaction rolled back, on the embedded PostgreSQL of a real `barstream serve`;
- read: GET results, a page of 500 round trips deep in the listing (v2 and v1), the v1 run
  with every trip, through that server, against the old read (the whole jsonb body parsed and
  encoded again); the server's peak RSS while serving, and tracemalloc peaks in-process.

    .venv/bin/python scripts/bench_results.py [--bars 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from bench.barstream import BENCH_SETTINGS, make_bars, make_execution, make_strategy
from bench.data import START_NS, synthetic_bars
from bench.report import command_line, machine, table
from bench_server import Node, PeakRss

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OLD_REV = "b403456"  # the last commit with list-of-dicts outputs and the jsonb body
SYMBOL = "BENCHRES-USD"
# The engine benchmark's settings (all in, no cooldowns) within the wire's bounds.
SERVER_SETTINGS = {
    **{k: v for k, v in BENCH_SETTINGS.items() if k not in ("max_trade_amount", "max_units_per_trade")},
    "max_trade_amount": 1e9, "max_units_per_trade": 1e9,
}  # fmt: skip


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The fastest of `repeat` calls (ms) and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return min(times), out


def peak_mb(fn: Callable[[], Any]) -> float:
    """The tracemalloc peak of one call (MB)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def old_module(path: str, name: str) -> Any:
    """A module's source at OLD_REV, loaded under another name."""
    source = subprocess.run(
        ["git", "show", f"{OLD_REV}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    exec(compile(source, f"{OLD_REV}:{path}", "exec"), module.__dict__)
    return module


def wire_body(out: Any) -> dict[str, Any]:
    """What server.results builds from an engine output: each listing laid out once as JSON rows."""
    from server.json_rows import encode

    names = ("equity", "trades", "round_trips", "open_positions", "exposure")
    return {"metrics": out.metrics, **{k: encode(getattr(out, k)) for k in names}}


def finished_run(n: int) -> tuple[Any, float, float]:
    """Run the benchmark strategy over n synthetic bars; its finished Book, ppy, and run ms."""
    import engine.run as run_module
    from engine import results as new

    captured: dict[str, Any] = {}

    def capture(book: Any, ppy: float) -> Any:
        captured["book"], captured["ppy"] = book, ppy
        return new.output_of(book, ppy)

    run_module.output_of = capture  # type: ignore[attr-defined]
    execution, _ = make_execution(BENCH_SETTINGS)
    bars = make_bars(synthetic_bars(n))
    t0 = time.perf_counter()
    try:
        run_module.run_backtest({"BENCH": bars}, make_strategy(), execution, 10_000.0,
                                int(bars.ts[100]), resolution="1m")  # fmt: skip
    finally:
        run_module.output_of = new.output_of  # type: ignore[attr-defined]
    return captured["book"], captured["ppy"], (time.perf_counter() - t0) * 1e3


def engine_rows(n: int, repeat: int) -> tuple[list[list[str]], Any, dict[str, Any]]:
    """Build the output both ways from one finished Book; return rows, the output, old body."""
    from engine import results as new

    old = old_module("engine/results.py", "old_results")
    book, ppy, run_ms = finished_run(n)
    new_ms, output = best(lambda: new.output_of(book, ppy), repeat)
    old_ms, old_out = best(lambda: old.output_of(book, ppy), repeat)
    trips, fills = len(output.round_trips), len(output.trades)

    new_wire = wire_body
    worker = old_module("server/worker_main.py", "old_worker")
    new_ser, body = best(lambda: new_wire(output), repeat)
    old_ser, old_body = best(lambda: orjson.dumps(worker._wire(old_out)), repeat)
    rows = [
        [f"run ({n:,} bars, end to end, engine only)", "", f"{run_ms:.0f} ms", f"{trips:,} trips, "
         f"{fills:,} fills, {len(output.equity):,} equity points"],
        ["output build (output_of)", f"{old_ms:.1f} ms", f"{new_ms:.1f} ms",
         f"{old_ms / new_ms:.1f}x; columns, no per-row objects"],
        ["  peak memory (tracemalloc)", f"{peak_mb(lambda: old.output_of(book, ppy)):.1f} MB",
         f"{peak_mb(lambda: new.output_of(book, ppy)):.1f} MB", ""],
        ["serialise body (worker)", f"{old_ser:.1f} ms", f"{new_ser:.1f} ms",
         "old: row dicts, ISO per row, orjson; new: JSON rows from columns"],
        ["  peak memory (tracemalloc)", f"{peak_mb(lambda: orjson.dumps(worker._wire(old_out))):.1f} MB",
         f"{peak_mb(lambda: new_wire(output)):.1f} MB", ""],
    ]  # fmt: skip
    return rows, body, orjson.loads(old_body)


async def store_times(
    node: Node, run_id: str, body: dict, old_body: dict | None, repeat: int
) -> dict[str, float]:
    """Best ms of writing and reading the stored form (and the old one, given its body).

    Keys: new_w, new_r (head and first pages), new_f (every row); old_w, old_r with old_body.
    Each write is in a transaction rolled back, so the run's own stored results stay.
    """
    import asyncpg

    from server import stored_results

    conn = await asyncpg.connect(node.dsn())
    await conn.set_type_codec(  # as server.db.pool sets it
        "jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
        schema="pg_catalog",
    )  # fmt: skip
    rid = uuid.UUID(run_id)
    out: dict[str, list[float]] = {k: [] for k in ("new_w", "old_w", "new_r", "old_r", "new_f")}
    try:
        for _ in range(repeat):
            for kind in ("new", "old") if old_body is not None else ("new",):
                tx = conn.transaction()
                await tx.start()
                await conn.execute("DELETE FROM result_parts WHERE run_id = $1", rid)
                await conn.execute("DELETE FROM results WHERE run_id = $1", rid)
                t0 = time.perf_counter()
                if kind == "new":
                    await stored_results.write(conn, rid, body)
                else:
                    await conn.execute(
                        "INSERT INTO results (run_id, body) VALUES ($1, $2)", rid, old_body
                    )
                out[f"{kind}_w"].append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                if kind == "new":
                    head = await stored_results.head_text(conn, rid)
                    first = {k: await stored_results.page(conn, rid, k, 0, 500)
                             for k in stored_results.LISTINGS}  # fmt: skip
                    stored_results.splice(first, head)
                    out["new_r"].append((time.perf_counter() - t0) * 1e3)
                    t0 = time.perf_counter()
                    await stored_results.full(conn, rid)
                    out["new_f"].append((time.perf_counter() - t0) * 1e3)
                else:
                    text = await conn.fetchval(
                        "SELECT body::text FROM results WHERE run_id = $1", rid
                    )
                    orjson.dumps({"run_id": run_id, **orjson.loads(text)})
                    out["old_r"].append((time.perf_counter() - t0) * 1e3)
                await tx.rollback()
    finally:
        await conn.close()
    return {k: min(v) for k, v in out.items() if v}


async def store_rows(node: Node, run_id: str, body: dict, old_body: dict, repeat: int) -> list:
    """Write and read the stored form both ways in transactions rolled back."""
    m = await store_times(node, run_id, body, old_body, repeat)
    return [
        ["store (one transaction)", f"{m['old_w']:.1f} ms", f"{m['new_w']:.1f} ms",
         "old: one jsonb body; new: head jsonb + pages of 500 rows by COPY"],
        ["read results in-process (DB + encode)", f"{m['old_r']:.1f} ms", f"{m['new_r']:.1f} ms",
         "old: whole body parsed, encoded again; new: head + first pages joined"],
        ["read every trip and fill in-process", f"{m['old_r']:.1f} ms", f"{m['new_f']:.1f} ms",
         "new: stored pages joined in the database"],
    ]  # fmt: skip


def http_rows(node: Node, run_id: str, repeat: int) -> list[list[str]]:
    """Time the server's answers and sample its RSS while it serves them."""
    base = f"{node.url}/api/v2/backtests/{run_id}"
    total = httpx.get(f"{base}/results", headers=node.headers(), timeout=60).json()["paging"]
    deep = total["round_trips"]["total"] // 2
    from server.listings import encode

    gets = [
        ("GET /api/v2/backtests/{id}/results", f"{base}/results", "first 500 trips and fills"),
        ("GET …/round_trips page (500, mid-listing)",
         f"{base}/round_trips?limit=500&cursor={encode(deep)}", f"rows {deep:,}+"),
        ("GET /api/v1/backtests/{id}/trades page (1000)",
         f"{node.url}/api/v1/backtests/{run_id}/trades?limit=1000&cursor={encode(deep)}", ""),
        ("GET /api/v1/backtests/{id} (every trip)", f"{node.url}/api/v1/backtests/{run_id}",
         f"{total['round_trips']['total']:,} trips"),
    ]  # fmt: skip
    rows = []
    with httpx.Client(headers=node.headers(), timeout=120) as client, PeakRss(node) as rss:
        client.get(f"{base}/results")  # warm the connection and the server's caches
        for label, url, note in gets:
            times, size = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                r = client.get(url)
                times.append((time.perf_counter() - t0) * 1e3)
                assert r.status_code == 200, r.text[:300]
                size = len(r.content)
            rows.append([label, "", f"{statistics.median(times):.1f} ms",
                         f"{note} ({size / 2**20:.2f} MB; median of {repeat})"])  # fmt: skip
    rows.append(["server peak RSS while serving", "", f"{rss.peak:.0f} MB", "sampled every 0.2 s"])
    return rows


def server_run(node: Node, n: int) -> str:
    """Write the bars into the node's store, run the strategy through the API; its id."""
    from engine.data.store import BarStore

    BarStore(node.data_dir / "bars").write(SYMBOL, make_bars(synthetic_bars(n)))
    end_ns = START_NS + n * 60 * 10**9
    body = {
        "symbols": [SYMBOL], "resolution": "1m", "capital": 10_000.0,
        "start": "2020-01-01T02:00:00Z",
        "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end_ns / 1e9 - 60)),
        "strategy": {"entry": ["cross_above(sma(10), sma(30))", "close > sma(50)"],
                     "exit": ["cross_below(sma(10), sma(30))"]},
        "execution": SERVER_SETTINGS,
    }  # fmt: skip
    r = httpx.post(f"{node.url}/api/v2/backtests", json=body, headers=node.headers(), timeout=60)
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    while True:
        state = httpx.get(f"{node.url}/api/v2/backtests/{run_id}", headers=node.headers()).json()
        if state["state"] in ("completed", "failed", "cancelled"):
            assert state["state"] == "completed", state
            return run_id
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("\n".join(machine(ROOT)))
    print(f"command: {command_line()}\n")
    rows, body, old_body = engine_rows(args.bars, args.repeat)
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        node = Node(Path(tmp) / "node", {"BARSTREAM_WORKERS": "1"})
        node.start()
        try:
            run_id = server_run(node, args.bars)
            got = httpx.get(f"{node.url}/api/v2/backtests/{run_id}/results",
                            headers=node.headers(), timeout=60).json()["paging"]  # fmt: skip
            rows.append(["the same bars through the server", "", "",
                         f"{got['round_trips']['total']:,} trips, {got['trades']['total']:,} fills"])  # fmt: skip
            rows += asyncio.run(store_rows(node, run_id, body, old_body, args.repeat))
            rows += http_rows(node, run_id, args.repeat)
        finally:
            node.stop()
    print(table(["step", "before", "after", "notes"], rows))


if __name__ == "__main__":
    main()
