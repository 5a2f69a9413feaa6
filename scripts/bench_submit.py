"""Submission throughput (issue 12): `GET /healthz` and `POST /api/v2/backtests` requests/s in
the same run (their ratio is the figure that counts), then runs/s for a burst of small runs, each
checked to have run exactly once.

The client is lean on purpose: plain asyncio streams speaking HTTP/1.1 keep-alive over raw
sockets, in `--clients` processes of their own, each reporting its own CPU time (a client that
saturates its core measures itself, not the server). Run:

    .venv/bin/python scripts/bench_submit.py [--seconds 5] [--burst 1000] [--clients 1]
        [--connections 64] [--url URL --key KEY]

Without --url it starts its own server (a fresh data directory, demo data to 2024-04-01,
`BARSTREAM_MAX_ACTIVE_RUNS` raised so the limit does not answer the load). `measure(url, key)`
does the same against a running server and returns rows (name, value, unit, note); on a server
with the default active-run limit most creates are 429s, which are counted apart, never as
throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from bench.seed import seed_strategy

STRATEGY = seed_strategy("1h", "bench")
SMALL_RUN = {
    "symbols": ["ETH-USD"], "start": "2024-02-01T00:00:00Z", "end": "2024-03-01T00:00:00Z",
    "resolution": "1h", "capital": 10_000.0, "strategy": STRATEGY,
}  # fmt: skip
TERMINAL = ("completed", "failed", "cancelled")
RUN_ID = re.compile(rb'"run_id":"([0-9a-f-]{36})"')


# --- the lean client ---------------------------------------------------------------------------


def _request(host: str, method: str, path: str, key: str | None, body: bytes = b"") -> bytes:
    """One HTTP/1.1 keep-alive request, encoded once and sent many times."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body or method == "POST":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    """Send one request; return the status, the body and whether the server closes."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return int(head[9:12]), body, close


async def _hammer(
    addr: tuple[str, int], requests: list[bytes], connections: int, start: float, until: float
) -> dict[str, Any]:
    """Send requests on `connections` keep-alive connections from wall time `start` until
    `until` (or, when `until` is 0, each request in `requests` once); count the answers."""
    counts: Counter[int] = Counter()
    ids: list[str] = []
    todo = list(reversed(requests))
    await asyncio.sleep(max(0.0, start - time.time()))
    cpu0, t0 = time.process_time(), time.perf_counter()

    async def one() -> None:
        reader, writer = await asyncio.open_connection(*addr)
        i = 0
        while (time.time() < until) if until else todo:
            req = requests[i % len(requests)] if until else todo.pop()
            i += 1
            status, body, close = await _exchange(reader, writer, req)
            counts[status] += 1
            if status == 201 and (found := RUN_ID.search(body)):
                ids.append(found.group(1).decode())
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(*addr)
        writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    wall = time.perf_counter() - t0
    return {"counts": dict(counts), "ids": ids, "wall": wall, "cpu": time.process_time() - cpu0}


def _client(
    addr: tuple[str, int], requests: list[bytes], connections: int, start: float, until: float
) -> dict[str, Any]:
    """One client process: its own event loop."""
    return asyncio.run(_hammer(addr, requests, connections, start, until))


def _fleet(
    addr: tuple[str, int],
    requests: list[bytes],
    *,
    clients: int,
    connections: int,
    seconds: float = 0.0,
) -> dict[str, Any]:
    """Run `clients` processes at once (for `seconds`, or sharing out `requests` once each);
    return the answers by status, the run ids made, the rate and the clients' CPU share."""
    start = time.time() + 1.5  # every process is up and connected before the clock starts
    until = start + seconds if seconds else 0.0
    shares = [requests[i::clients] for i in range(clients)] if not seconds else [requests] * clients
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(clients, mp_context=ctx) as ex:
        jobs = [ex.submit(_client, addr, s, connections, start, until) for s in shares]
        parts = [j.result() for j in jobs]
    counts: Counter[int] = Counter()
    for p in parts:
        counts.update(p["counts"])
    wall = max(p["wall"] for p in parts)
    return {
        "counts": dict(counts),
        "ids": [i for p in parts for i in p["ids"]],
        "wall": wall,
        "rate": sum(counts.values()) / wall,
        "client_cpu": max(p["cpu"] / p["wall"] for p in parts),
    }


# --- the measurements --------------------------------------------------------------------------


def _get(url: str, key: str, path: str) -> tuple[int, Any, dict[str, str]]:
    """A plain GET for the bookkeeping around the measurements (not timed)."""
    import httpx

    r = httpx.get(url + path, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    return r.status_code, r.json(), dict(r.headers)


def _active(url: str, key: str) -> int:
    """How many of the caller's runs are queued or running."""
    return sum(
        int(_get(url, key, f"/api/v2/backtests?state={s}&limit=1")[2]["x-total-count"])
        for s in ("queued", "running")
    )


def _settle(url: str, key: str, timeout: float) -> float:
    """Wait until none of the caller's runs is queued or running; return when that was."""
    end = time.monotonic() + timeout
    while _active(url, key):
        if time.monotonic() > end:
            raise RuntimeError(f"runs still active after {timeout} s")
        time.sleep(0.05)
    return time.perf_counter()


def _cancel_all(addr: tuple[str, int], host: str, key: str, ids: list[str], conns: int) -> None:
    """Cancel runs made while measuring, so the burst starts on an idle server."""
    reqs = [_request(host, "POST", f"/api/v2/backtests/{i}/cancel", key) for i in ids]
    if reqs:
        _fleet(addr, reqs, clients=1, connections=conns)


async def _events(ws_url: str, key: str, run_id: str) -> list[dict[str, Any]]:
    """Every event of a finished run, read from its stream."""
    from websockets.asyncio.client import connect

    got = []
    url = f"{ws_url}/api/v2/backtests/{run_id}/stream?last_event_id=0"
    async with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        async for msg in ws:
            got.append(orjson.loads(msg))
    return got


def _ran_once(events: list[dict[str, Any]]) -> str | None:
    """Why a run's events do not show exactly one execution ending in `completed`, or None."""
    ids = [e["id"] for e in events]
    states = [e["data"]["state"] for e in events if e["type"] == "state"]
    if ids != list(range(1, len(ids) + 1)):
        return f"event ids not 1..N: {ids[:5]}…"
    if states != ["queued", "running", "completed"]:
        errors = [e["data"].get("error") for e in events if e["type"] == "state"]
        return f"states {states} {[e for e in errors if e]}"
    return None


async def _verify(url: str, key: str, ids: list[str]) -> list[str]:
    """Check each run in the listing once, completed, its stream gap-free with one execution."""
    import httpx

    problems = []
    if len(set(ids)) != len(ids):
        problems.append("a run id was answered twice")
    listed: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
        page = "/api/v2/backtests?limit=200&include_archived=true"
        while page:
            r = await c.get(page)
            listed.update(s["run_id"] for s in r.json() if s["run_id"] in set(ids))
            nxt = r.links.get("next", {}).get("url")
            page = str(nxt).removeprefix(url) if nxt else ""
    problems += [f"{i} listed {listed[i]} times" for i in ids if listed[i] != 1]
    limit = asyncio.Semaphore(16)
    ws_url = "ws" + url.removeprefix("http")

    async def check(run_id: str) -> str | None:
        async with limit:
            why = _ran_once(await _events(ws_url, key, run_id))
        return f"{run_id}: {why}" if why else None

    problems += [p for p in await asyncio.gather(*(check(i) for i in ids)) if p]
    return problems


def _burst(url: str, key: str, n: int, connections: int) -> dict[str, Any]:
    """Create n small runs at once (a 429 is tried again shortly: the server's active-run limit
    may be lower than n); time until every one has ended; verify each ran exactly once."""
    parts = urlsplit(url)
    addr, host = (parts.hostname or "127.0.0.1", parts.port or 80), parts.netloc
    create = _request(
        host, "POST", "/api/v2/backtests", key, orjson.dumps({**SMALL_RUN, "name": "burst"})
    )
    ids: list[str] = []
    answers: Counter[int] = Counter()
    t0 = time.perf_counter() + 1.5  # _fleet starts its clock this much later
    while len(ids) < n:
        made = _fleet(addr, [create] * (n - len(ids)), clients=1, connections=connections)
        ids += made["ids"]
        answers.update(made["counts"])
        if set(made["counts"]) - {201, 429}:
            break
        if len(ids) < n:
            time.sleep(0.5)
    created = time.perf_counter() - t0
    done = _settle(url, key, timeout=600)
    problems = asyncio.run(_verify(url, key, ids))
    if len(ids) != n:
        problems.insert(0, f"answers {dict(answers)}")
    return {
        "answers": dict(answers),
        "created": created,
        "seconds": done - t0,
        "problems": problems,
    }


def measure(base_url: str, api_key: str, **opts: Any) -> list[dict[str, Any]]:
    """Rows (name, value, unit, note): /healthz and create requests/s in the same run, their
    ratio, and runs/s for a burst of small runs (each verified to have run exactly once).

    Options: seconds (5), clients (1), connections (64), burst (1000)."""
    seconds, clients = opts.get("seconds", 5.0), opts.get("clients", 1)
    conns, burst = opts.get("connections", 64), opts.get("burst", 1000)
    parts = urlsplit(base_url)
    addr, host = (parts.hostname or "127.0.0.1", parts.port or 80), parts.netloc
    create = _request(host, "POST", "/api/v2/backtests", api_key, orjson.dumps(SMALL_RUN))
    _settle(base_url, api_key, timeout=600)
    _fleet(addr, [create] * 20, clients=1, connections=4)  # warm: first compiles, first loads
    health = _fleet(addr, [_request(host, "GET", "/healthz", None)], clients=clients,
                    connections=conns, seconds=seconds)  # fmt: skip
    posts = _fleet(addr, [create], clients=clients, connections=conns, seconds=seconds)
    ran = _active(base_url, api_key)
    _cancel_all(addr, host, api_key, posts["ids"], conns)
    _settle(base_url, api_key, timeout=600)
    made = posts["counts"].get(201, 0)
    created = made / posts["wall"]
    b = _burst(base_url, api_key, burst, conns)
    rows = [
        _row("GET /healthz", health["rate"], "requests/s",
             f"{clients} client process(es) x {conns} connections, client CPU"
             f" {health['client_cpu']:.0%}; answers {health['counts']}"),
        _row("POST /api/v2/backtests", created, "runs created/s",
             f"client CPU {posts['client_cpu']:.0%}; answers {posts['counts']}; {ran} of"
             f" {made} runs still queued or running at the end (then cancelled)"),
        _row("create / healthz", created / health["rate"], "ratio", "target >= 0.25"),
        _row(f"burst of {burst} small runs", burst / b["seconds"], "runs/s",
             f"all ended in {b['seconds']:.1f} s (created in {b['created']:.1f} s, answers"
             f" {b['answers']});"
             + (" every run completed exactly once (listed once; events 1..N: queued, running,"
                " completed)" if not b["problems"] else f" PROBLEMS: {b['problems'][:5]}")),
    ]  # fmt: skip
    if b["problems"]:
        raise RuntimeError(f"burst lost or repeated runs: {b['problems'][:10]}")
    return rows


def _row(name: str, value: float, unit: str, note: str) -> dict[str, Any]:
    return {"name": name, "value": value, "unit": unit, "note": note}


# --- running it on a server of its own ---------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers: int) -> tuple[subprocess.Popen[bytes], str, str, Path]:
    """A server on a free port in a fresh data directory; return it, its URL, its key and the
    directory."""
    import httpx

    data = Path(tempfile.mkdtemp(prefix="bench-submit-"))
    log, port = data / "server.log", _free_port()
    env = {
        **os.environ,
        "BARSTREAM_WORKERS": str(workers),
        "BARSTREAM_DEMO_END": "2024-04-01",
        "BARSTREAM_MAX_ACTIVE_RUNS": "1000000",
        "BARSTREAM_MAX_CONNECTIONS_PER_CLIENT": "4096",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    found = re.search(r"API key \(shown once\): (\S+)", log.read_text())
    if found is None:
        raise RuntimeError(f"no key in the server log:\n{log.read_text()}")
    return proc, url, found.group(1), data


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    """Start a server (unless --url), measure, print the machine, the command and the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--url")
    ap.add_argument("--key")
    args = ap.parse_args()
    proc, data = None, None
    url, key = args.url, args.key
    if not url:
        proc, url, key, data = start_server(args.workers)
    try:
        rows = measure(url, key, seconds=args.seconds, clients=args.clients,
                       connections=args.connections, burst=args.burst)  # fmt: skip
    finally:
        if proc is not None:
            proc.send_signal(2)
            proc.wait(120)
        if data is not None and sys.exc_info()[0] is None:
            shutil.rmtree(data, ignore_errors=True)  # kept (with server.log) when it failed
        elif data is not None:
            print(f"server log: {data / 'server.log'}", file=sys.stderr)
    print(f"machine: {_cpu_model()}, {os.cpu_count()} logical cores, Python"
          f" {platform.python_version()}; server workers: {args.workers}")  # fmt: skip
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"| {'measure':<28} | {'value':>10} | {'unit':<14} | note |")
    print(f"|{'-' * 30}|{'-' * 11}:|{'-' * 16}|------|")
    for r in rows:
        print(f"| {r['name']:<28} | {r['value']:>10,.2f} | {r['unit']:<14} | {r['note']} |")


if __name__ == "__main__":
    main()
