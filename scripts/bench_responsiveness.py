"""How responsive the API stays while large sweep submissions are validated (issue 14, item 9).

Starts a server (or uses --url and --key), measures /healthz latency alone, then while N
submissions of a 10,000-variant sweep arrive at once, and prints a table. Run:

    .venv/bin/python scripts/bench_responsiveness.py [--burst 10] [--url URL --key KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench.seed import seed_strategy

STRATEGY = seed_strategy("1h", "sweep")
GRID = {
    "entry[0].params.window_fast": list(range(5, 25)),
    "entry[0].params.window_slow": list(range(30, 55)),
    "entry[1].params.window": list(range(20, 220, 10)),
}  # 20 x 25 x 20 = 10,000 variants


def body() -> dict:
    return {"symbols": ["ETH"], "start": "2024-03-01T00:00:00Z", "end": "2024-04-01T00:00:00Z",
            "resolution": "1h", "strategy": STRATEGY, "sweep": {"grid": GRID}}  # fmt: skip


def start_server(port: int) -> tuple[subprocess.Popen, str, Path]:
    data = Path(tempfile.mkdtemp(prefix="bench-resp-"))
    log = data / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "BARSTREAM_WORKERS": "1", "BARSTREAM_MAX_ACTIVE_RUNS": "1000"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    key = re.search(r"API key \(shown once\): (\S+)", log.read_text()).group(1)  # type: ignore[union-attr]
    return proc, key, data


async def latencies(client: httpx.AsyncClient, stop: asyncio.Event, every: float) -> list[float]:
    out = []
    while not stop.is_set():
        t0 = time.perf_counter()
        await client.get("/healthz")
        out.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(every)
    return out


async def measure(url: str, key: str, burst: int) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as c, \
            httpx.AsyncClient(base_url=url, timeout=30) as probe:  # fmt: skip
        stop = asyncio.Event()
        alone = asyncio.create_task(latencies(probe, stop, 0.02))
        await asyncio.sleep(3)
        stop.set()
        base = await alone
        stop = asyncio.Event()
        during = asyncio.create_task(latencies(probe, stop, 0.02))
        t0 = time.perf_counter()
        made = await asyncio.gather(
            *(c.post("/api/v2/backtests", json=body()) for _ in range(burst))
        )
        submit = time.perf_counter() - t0
        stop.set()
        busy = await during
        for r in made:
            if r.status_code == 201:
                await c.post(f"/api/v2/backtests/{r.json()['run_id']}/cancel")
    return {"base": base, "busy": busy, "submit": submit,
            "codes": sorted({r.status_code for r in made})}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--burst", type=int, default=10)
    ap.add_argument("--url")
    ap.add_argument("--key")
    ap.add_argument("--port", type=int, default=8931)
    args = ap.parse_args()
    proc = None
    if args.url:
        url, key = args.url, args.key
    else:
        proc, key, _ = start_server(args.port)
        url = f"http://127.0.0.1:{args.port}"
    try:
        got = asyncio.run(measure(url, key, args.burst))
    finally:
        if proc is not None:
            proc.send_signal(2)
            proc.wait(60)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"command: {' '.join(sys.argv)}")
    print(f"burst: {args.burst} submissions of a 10,000-variant sweep at once;"
          f" answered {got['codes']} in {got['submit']:.2f} s")  # fmt: skip
    print(f"{'/healthz latency':<28}{'n':>6}{'mean ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name in ("base", "busy"):
        xs = sorted(got[name])
        p95 = xs[int(0.95 * (len(xs) - 1))] if xs else float("nan")
        label = "alone (the floor)" if name == "base" else "during the burst"
        print(f"{label:<28}{len(xs):>6}{statistics.mean(xs):>10.1f}{p95:>10.1f}{max(xs):>10.1f}")


if __name__ == "__main__":
    main()
