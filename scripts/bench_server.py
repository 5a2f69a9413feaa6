"""The server benchmark (issue 12): real `barstream serve` processes, one node then two.

Prints the machine, the command and one table: cold and warm start to ready, submit→completed
p50/p99 for 10k- and 100k-bar runs, submissions/s against /healthz/s and runs/s under a burst
(from scripts/bench_submit.py when it exists), events/s into the table, the live delay of the
stream at 10 and 1,000 subscribers on one run beside a bare broadcaster's (the floor, measured
in the same run with the same clients) and at 2,000 subscribers across 200 runs, the backlog
replay rate of a run with 100k events, and the server's RSS. Run:

    .venv/bin/python scripts/bench_server.py [--subs 10,1000] [--runs 200] [--per-run 10]
        [--repeat 20] [--clients 4] [--no-submit] [--no-two-nodes]

Clients are lean and out of the server's process: `--clients` processes, each holding many raw
`websockets` connections (no compression), reading each message's id and timestamp without
parsing the rest, and reporting their own CPU time. A subscriber's live delay is its receive
time minus the event's `timestamp` (written by the run's writer just before the insert, ms
precision; same machine, same clock); only events stamped after every subscriber was connected
count. Every subscriber of a run must get the same bytes, ids 1..N, or the row says so.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing as mp
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from bench.seed import seed_strategy

ROOT = Path(__file__).resolve().parent.parent
STRATEGY = seed_strategy("1m", "bench")
KEY_LINE = re.compile(r"API key \(shown once\): (\S+)")
TERMINAL = ('"state":"completed"', '"state":"failed"', '"state":"cancelled"')


def minute_run(start: str, end: str) -> dict[str, Any]:
    """Seed 001's strategy on 1-minute ETH bars."""
    return {"symbols": ["ETH-USD"], "start": start, "end": end, "resolution": "1m",
            "capital": 10_000.0, "strategy": STRATEGY}  # fmt: skip


RUN_10K = minute_run("2024-03-01T00:00:00Z", "2024-03-07T22:40:00Z")  # 10,000 bars
RUN_100K = minute_run("2024-03-01T00:00:00Z", "2024-05-10T10:40:00Z")  # 100,000 bars
FANOUT_RUN = minute_run("2024-01-01T00:00:00Z", "2024-03-01T00:00:00Z")  # the watched run
SHORT_RUN = minute_run("2024-06-01T00:00:00Z", "2024-06-04T00:00:00Z")  # one of the 200
BLOCKER = minute_run("2024-01-01T00:00:00Z", "2025-12-01T00:00:00Z")  # holds a worker


# --- servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    """A `barstream serve` subprocess."""

    data_dir: Path
    env: dict[str, str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    key: str = ""
    started_in: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start it; return the seconds from the process start to /healthz 200."""
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / f"server-{self.port}.log"
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )  # fmt: skip
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.started_in = time.perf_counter() - t0
        found = KEY_LINE.search(log.read_text())
        if found and not self.key:
            self.key = found.group(1)
        return self.started_in

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def rss_mb(self) -> float:
        import psutil

        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def uss_mb(self) -> float:
        """Memory of the serving process's own (not file pages such as the mapped bars)."""
        import psutil

        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_full_info().uss / 2**20

    def dsn(self) -> str:
        return f"postgresql://postgres@/postgres?host={(self.data_dir / 'pg').resolve()}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class PeakRss:
    """Samples a node's RSS every 0.2 s in a thread; `peak` is the largest seen (MB)."""

    def __init__(self, node: Node) -> None:
        self.node, self.peak, self.uss, self._stop = node, 0.0, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.node.rss_mb())
            self.uss = max(self.uss, self.node.uss_mb())
            self._stop.wait(0.2)


def create(node: Node, body: dict[str, Any]) -> str:
    r = httpx.post(f"{node.url}/api/v2/backtests", json=body, headers=node.headers(), timeout=60)
    assert r.status_code == 201, r.text
    return r.json()["run_id"]


def cancel(node: Node, run_id: str) -> None:
    httpx.post(f"{node.url}/api/v2/backtests/{run_id}/cancel", headers=node.headers(), timeout=60)


def wait_idle(node: Node, timeout: float = 600) -> None:
    """Until no run of the key is queued or running."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        busy = 0
        for state in ("queued", "running"):
            r = httpx.get(f"{node.url}/api/v2/backtests", params={"state": state, "limit": 1},
                          headers=node.headers(), timeout=60)  # fmt: skip
            busy += int(r.headers.get("x-total-count", "0"))
        if not busy:
            return
        time.sleep(0.2)
    raise RuntimeError("runs did not finish")


# --- lean subscribers, in processes of their own ------------------------------------------------


def _stamp(raw: str) -> float:
    """The event's timestamp (epoch seconds), read without parsing the JSON."""
    i = raw.index('"timestamp":"') + 13
    return datetime.fromisoformat(raw[i : i + 24]).timestamp()


class RawSubscriber(asyncio.Protocol):
    """A WebSocket client in a few lines: the upgrade by hand, then unmasked server frames read
    straight from the buffer (the id and timestamp sliced out, the bytes checksummed); pings
    answered, the close echoed. Several times cheaper per message than a full client."""

    def __init__(self, host: str, path: str, out: dict[str, Any], done: asyncio.Future) -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()  # fmt: skip
        self.out, self.done, self.buf, self.upgraded = out, done, b"", False
        self.crc, self.n, self.first, self.last, self.ok, self.code = 0, 0, None, 0, True, None
        self.ready = asyncio.Event()
        self.stamp_raw, self.stamp = b"", 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buf += data
        if not self.upgraded:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._end(f"refused: {head[:40]!r}")
                return
            self.upgraded, self.buf = True, rest
            self.ready.set()
        self._frames(now)

    def _frames(self, now: float) -> None:
        buf, at = self.buf, 0
        while len(buf) - at >= 2:
            op, size, head = buf[at] & 0x0F, buf[at + 1] & 0x7F, 2
            if size == 126:
                if len(buf) - at < 4:
                    break
                size, head = int.from_bytes(buf[at + 2 : at + 4], "big"), 4
            elif size == 127:
                if len(buf) - at < 10:
                    break
                size, head = int.from_bytes(buf[at + 2 : at + 10], "big"), 10
            if len(buf) - at < head + size:
                break
            payload = buf[at + head : at + head + size]
            at += head + size
            if op == 1:
                self._message(payload, now)
            elif op == 9:
                self._send(0xA, payload)
            elif op == 8:
                self.code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._send(0x8, payload[:2])
                self._end(None)
                return
        self.buf = buf[at:]

    def _message(self, raw: bytes, now: float) -> None:
        ident = int(raw[6 : raw.index(b",")])
        self.ok = self.ok and (self.first is None or ident == self.last + 1)
        self.first = ident if self.first is None else self.first
        self.last, self.n = ident, self.n + 1
        self.crc = zlib.crc32(raw, self.crc)
        i = raw.index(b'"timestamp":"') + 13
        if raw[i : i + 24] != self.stamp_raw:  # events written together share a stamp
            self.stamp_raw = raw[i : i + 24]
            self.stamp = datetime.fromisoformat(self.stamp_raw.decode()).timestamp()
        self.out["stamps"].append(self.stamp)
        self.out["arrivals"].append(now)

    def _send(self, op: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | op, 0x80 | len(payload)]) + mask + masked)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(None if self.code else f"lost: {exc!r}")

    def _end(self, error: str | None) -> None:
        self.ready.set()
        if self.done.done():
            return
        if error:
            self.out["error"] = error
        self.out["subs"].append((self.crc, self.n, self.first, self.last, self.ok, self.code))
        self.transport.close()
        self.done.set_result(None)


async def _subscribe(url: str, out: dict[str, Any], ready: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    rest = url.split("://", 1)[1]
    host, _, path = rest.partition("/")
    done: asyncio.Future[None] = loop.create_future()
    h, _, port = host.partition(":")
    try:
        _, proto = await loop.create_connection(
            lambda: RawSubscriber(host, "/" + path, out, done), h, int(port)
        )
        await proto.ready.wait()
    except Exception as exc:  # counted, not raised: the row says how many failed
        out["error"] = repr(exc)
        out["subs"].append((0, 0, None, 0, False, None))
        ready.set()
        return
    ready.set()
    await done


async def _client_main(urls: list[str], pipe: Connection) -> None:
    import resource

    out: dict[str, Any] = {"stamps": [], "arrivals": [], "subs": []}
    gate = asyncio.Semaphore(64)  # handshakes in flight

    async def one(url: str, ready: asyncio.Event) -> None:
        async with gate:
            task = asyncio.create_task(_subscribe(url, out, ready))
            await ready.wait()
        await task

    readies = [asyncio.Event() for _ in urls]
    tasks = [asyncio.create_task(one(u, r)) for u, r in zip(urls, readies, strict=True)]
    pipe.send("connecting")
    for ready in readies:
        await ready.wait()
    t0 = time.perf_counter()  # the client's CPU is counted from here: the live phase
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*tasks)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    pipe.send({"subs": out["subs"], "stamps": out["stamps"], "arrivals": out["arrivals"],
               "cpu": cpu, "wall": time.perf_counter() - t0, "error": out.get("error")})  # fmt: skip


def client_process(urls: list[str], pipe: Connection) -> None:
    """A client process: subscribe to every URL, read to the close, report."""
    asyncio.run(_client_main(urls, pipe))


class Fleet:
    """Subscribers spread over client processes."""

    def __init__(self, urls: list[str], processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        per = [urls[i::processes] for i in range(processes)]
        for part in per:
            if not part:
                continue
            mine, theirs = ctx.Pipe()
            p = ctx.Process(target=client_process, args=(part, theirs), daemon=True)
            p.start()
            self.pipes.append(mine)
            self.procs.append(p)

    def results(self, timeout: float = 900) -> dict[str, Any]:
        """Wait for every process's report; merge them."""
        merged: dict[str, Any] = {"subs": [], "stamps": [], "arrivals": [], "cpu": [], "errors": []}
        for pipe in self.pipes:
            while True:
                if not pipe.poll(timeout):
                    raise RuntimeError("a client process did not report")
                msg = pipe.recv()
                if isinstance(msg, dict):
                    break
            merged["subs"] += msg["subs"]
            merged["stamps"] += msg["stamps"]
            merged["arrivals"] += msg["arrivals"]
            merged["cpu"].append(msg["cpu"] / max(msg["wall"], 1e-9))
            if msg["error"]:
                merged["errors"].append(msg["error"])
        for p in self.procs:
            p.join(30)
        return merged


def stream_urls(node: Node, run_id: str, n: int) -> list[str]:
    return [f"{node.ws}/api/v2/backtests/{run_id}/stream?api_key={node.key}"] * n


def wait_connected(node: Node, expected: int, timeout: float = 300) -> None:
    """Until the server holds `expected` open streams (from its connection count in ss)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["ss", "-Htn", "state", "established", f"sport = :{node.port}"],
                             capture_output=True, text=True).stdout  # fmt: skip
        if len(out.splitlines()) >= expected:
            return
        time.sleep(0.2)
    raise RuntimeError(f"only {len(out.splitlines())} of {expected} subscribers connected")


@dataclass
class Delays:
    """Live delays and the checks on what every subscriber got."""

    label: str
    p50: float = 0.0
    p99: float = 0.0
    samples: int = 0
    subs: int = 0
    identical: bool = False
    client_cpu: str = ""
    notes: list[str] = field(default_factory=list)


def summarise(label: str, got: dict[str, Any], live_from: float, groups: int = 1) -> Delays:
    """Delays of events stamped after `live_from`, and whether the subscribers agree (per run:
    `groups` distinct sequences expected)."""
    d = Delays(label, subs=len(got["subs"]))
    ms = sorted(
        (a - s) * 1000
        for s, a in zip(got["stamps"], got["arrivals"], strict=True)
        if s >= live_from
    )
    d.samples = len(ms)
    if ms:
        d.p50 = ms[len(ms) // 2]
        d.p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    sequences = {(crc, n, first, last) for crc, n, first, last, _, _ in got["subs"]}
    gap_free = all(ok and first == 1 for _, _, first, _, ok, _ in got["subs"])
    closes = {code for *_, code in got["subs"]}
    d.identical = gap_free and len(sequences) == groups and closes == {1000}
    if not d.identical:
        d.notes.append(f"sequences {len(sequences)} for {groups} run(s), gap-free {gap_free},"
                       f" closes {sorted(closes, key=str)}")  # fmt: skip
    if got["errors"]:
        d.notes.append(f"{len(got['errors'])} client error(s): {got['errors'][0]}")
    d.client_cpu = "/".join(f"{c:.0%}" for c in got["cpu"])
    return d


# --- the bare broadcaster (the floor) -------------------------------------------------------------


def broadcaster_process(port: int, pipe: Connection) -> None:
    """The floor: a websockets server (for the handshakes) that writes each group of messages,
    framed once, to every client's transport, with no database and no per-client work."""
    asyncio.run(_broadcast_main(port, pipe))


async def _broadcast_main(port: int, pipe: Connection) -> None:
    from websockets.asyncio.server import serve

    clients: set[Any] = set()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        pipe.send("listening")
        loop = asyncio.get_running_loop()
        schedule = await loop.run_in_executor(None, pipe.recv)  # [(offset s, template)]
        groups: dict[float, list[str]] = {}
        for offset, template in schedule:  # events written together go out together
            groups.setdefault(offset, []).append(template)
        t0 = time.time()
        for offset, templates in groups.items():
            await asyncio.sleep(max(0.0, t0 + offset - time.time()))
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            blob = b"".join(_text_frame(t.replace("@@STAMP@@", stamp).encode()) for t in templates)
            for ws in list(clients):  # built once, one write per client
                ws.transport.write(blob)
        # Closed right after the last message, as barstream closes a stream after the terminal
        # event: the closing handshakes overlap the last deliveries in both.
        await asyncio.gather(*(ws.close(1000) for ws in list(clients)))
        pipe.send("done")


def _text_frame(data: bytes) -> bytes:
    """An unmasked WebSocket text frame (what a server sends)."""
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + data
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + data


def schedule_of(events: list[str], live_from: float) -> list[tuple[float, str]]:
    """The run's live events as a replay schedule: same sizes and spacing, fresh stamps."""
    out = []
    t0 = None
    for raw in events:
        s = _stamp(raw)
        if s < live_from:
            continue
        t0 = s if t0 is None else t0
        i = raw.index('"timestamp":"') + 13
        out.append((s - t0, raw[:i] + "@@STAMP@@" + raw[i + 24 :]))
    return out


def floor(n: int, schedule: list[tuple[float, str]], processes: int) -> Delays:
    """The bare broadcaster to n subscribers, replaying `schedule`."""
    ctx = mp.get_context("spawn")
    port = free_port()
    mine, theirs = ctx.Pipe()
    p = ctx.Process(target=broadcaster_process, args=(port, theirs), daemon=True)
    p.start()
    assert mine.recv() == "listening"
    renum = [(off, re.sub(r'^\{"id":\d+', '{"id":' + str(i + 1), t))
             for i, (off, t) in enumerate(schedule)]  # fmt: skip
    fleet = Fleet([f"ws://127.0.0.1:{port}/"] * n, processes)
    bare = Node(Path("."), {})
    bare.port = port
    wait_connected(bare, n)
    live_from = time.time()
    mine.send(renum)
    got = fleet.results()
    mine.recv()
    p.join(10)
    d = summarise(f"bare broadcaster, {n:,} subscribers", got, live_from)
    return d


# --- the measures -----------------------------------------------------------------------------


def held_workers(node: Node, workers: int) -> list[str]:
    """Runs that occupy every worker, so what is submitted next waits in the queue."""
    ids = [create(node, BLOCKER) for _ in range(workers)]
    end = time.monotonic() + 120
    while time.monotonic() < end:
        r = httpx.get(f"{node.url}/api/v2/backtests", params={"state": "running"},
                      headers=node.headers(), timeout=60)  # fmt: skip
        if int(r.headers.get("x-total-count", "0")) >= workers:
            return ids
        time.sleep(0.1)
    raise RuntimeError("blockers did not start")


def fanout(nodes: list[Node], runs: int, per_run: int, processes: int, workers: int,
           label: str) -> tuple[Delays, list[str], str]:  # fmt: skip
    """`per_run` subscribers on each of `runs` runs (spread over `nodes`), connected while the
    runs wait behind blockers; return the delays, one subscriber's events and the peak RSS."""
    node = nodes[0]
    blockers = held_workers(node, workers * len(nodes))
    ids = [create(node, FANOUT_RUN if runs == 1 else SHORT_RUN) for _ in range(runs)]
    urls = []
    for i, run_id in enumerate(ids):
        for j in range(per_run):
            urls += stream_urls(nodes[(i * per_run + j) % len(nodes)], run_id, 1)
    with PeakRss(node) as rss:
        fleet = Fleet(urls, processes)
        for n in nodes:
            wait_connected(n, len(urls) // len(nodes))
        time.sleep(1.0)  # past the handshake: each stream checks its key and run, then joins
        live_from = time.time()
        for b in blockers:
            cancel(node, b)
        got = fleet.results()
    d = summarise(label, got, live_from, groups=runs)
    wait_idle(node)
    sample = asyncio.run(
        _read_raw(f"{node.ws}/api/v2/backtests/{ids[0]}/stream?api_key={node.key}")
    )
    return d, sample, f"{rss.peak:.0f} MB RSS, {rss.uss:.0f} MB private (USS)"


async def _read_raw(url: str) -> list[str]:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    out: list[str] = []
    async with connect(url, compression=None, max_size=None) as ws:
        try:
            async for raw in ws:
                out.append(str(raw))
        except ConnectionClosed:
            pass
    return out


def submit_to_completed(node: Node, body: dict[str, Any], repeat: int) -> tuple[float, float]:
    """p50 and p99 (ms) from POST to the terminal event read on the run's stream."""
    took = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run_id = create(node, body)
        events = asyncio.run(
            _read_raw(f"{node.ws}/api/v2/backtests/{run_id}/stream?api_key={node.key}")
        )
        took.append((time.perf_counter() - t0) * 1000)
        assert any(t in events[-1] for t in TERMINAL[:1]), events[-1]
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]


async def _pad(node: Node, n: int) -> str:
    """A completed run with `n` log events put before its own (ids shifted up)."""
    import asyncpg

    run_id = create(node, RUN_10K)
    await asyncio.to_thread(wait_idle, node)
    conn = await asyncpg.connect(node.dsn())
    try:
        async with conn.transaction():
            await conn.execute("UPDATE events SET id = id + $2 WHERE run_id = $1", run_id, n)
            await conn.execute(
                "INSERT INTO events (run_id, id, type, ts, data) SELECT $1, g, 'log', now(), "
                "jsonb_build_object('level', 'info', 'message', 'padding ' || g || ' ' || "
                "repeat('x', 120)) FROM generate_series(1, $2::bigint) g", run_id, n,
            )  # fmt: skip
            await conn.execute(
                "UPDATE runs SET last_event_id = last_event_id + $2 WHERE id = $1", run_id, n
            )
    finally:
        await conn.close()
    return run_id


def replay(node: Node, n: int) -> tuple[float, float]:
    """Events/s and MB/s for a new subscriber reading a 100k-event backlog from 0."""
    run_id = asyncio.run(_pad(node, n))
    t0 = time.perf_counter()
    events = asyncio.run(
        _read_raw(f"{node.ws}/api/v2/backtests/{run_id}/stream?api_key={node.key}")
    )
    took = time.perf_counter() - t0
    assert len(events) >= n, len(events)
    return len(events) / took, sum(len(e) for e in events) / took / 2**20


async def _table_rates(node: Node, since: float) -> tuple[float, int]:
    """Events inserted per second since `since`: the mean over busy seconds and the peak."""
    import asyncpg

    conn = await asyncpg.connect(node.dsn())
    try:
        rows = await conn.fetch(
            "SELECT date_trunc('second', ts) s, count(*) c FROM events "
            "WHERE ts >= to_timestamp($1) GROUP BY 1", since,
        )  # fmt: skip
    finally:
        await conn.close()
    counts = [r["c"] for r in rows]
    return (statistics.mean(counts) if counts else 0.0), max(counts, default=0)


# --- the table ----------------------------------------------------------------------------------


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, measure: str, value: str, note: str = "") -> None:
        self.rows.append((measure, value, note))
        print(f"  {measure}: {value}  {note}", file=sys.stderr, flush=True)

    def print(self) -> None:
        w = max(len(r[0]) for r in self.rows)
        v = max(len(r[1]) for r in self.rows)
        print(f"| {'measure':<{w}} | {'value':>{v}} | note |")
        print(f"|{'-' * (w + 2)}|{'-' * (v + 1)}:|------|")
        for m, val, note in self.rows:
            print(f"| {m:<{w}} | {val:>{v}} | {note} |")


def delay_row(t: Table, d: Delays, floor_d: Delays | None = None) -> None:
    ratio = f"; p99 {d.p99 / floor_d.p99:.1f}x the floor's" if floor_d and floor_d.p99 else ""
    check = "all identical, gap-free" if d.identical and not d.notes else "; ".join(d.notes)
    check = check if d.identical else "NOT identical: " + check
    t.add(
        f"live delay, {d.label}",
        f"{d.p50:.1f} / {d.p99:.1f} ms",
        f"p50 / p99 of {d.samples:,} deliveries{ratio}; {check}; client CPU {d.client_cpu}",
    )


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subs", default="10,1000", help="subscriber counts on one run")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--per-run", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=20, help="runs per submit→completed size")
    ap.add_argument("--clients", type=int, default=4, help="client processes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backlog", type=int, default=100_000)
    ap.add_argument("--no-submit", action="store_true", help="skip bench_submit's rows")
    ap.add_argument("--no-two-nodes", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    t = Table()
    base = Path(tempfile.mkdtemp(prefix="bench-server-"))
    env = {"BARSTREAM_WORKERS": str(args.workers), "BARSTREAM_MAX_ACTIVE_RUNS": "1000000",
           "BARSTREAM_MAX_CONNECTIONS_PER_CLIENT": "100000",
           "BARSTREAM_MAX_CONNECTIONS": "100000"}  # fmt: skip
    nodes: list[Node] = []
    try:
        node = Node(base / "a", env)
        nodes.append(node)
        t.add(
            "cold start to ready (empty data dir)",
            f"{node.start():.1f} s",
            "embedded PostgreSQL created, migrations, demo bars written, workers up",
        )
        node.stop()
        t.add("warm start to ready", f"{node.start():.1f} s", "same data dir")
        since = time.time()
        for label, body in (("10k", RUN_10K), ("100k", RUN_100K)):
            p50, p99 = submit_to_completed(node, body, args.repeat)
            t.add(
                f"submit→completed, {label}-bar run",
                f"{p50:.0f} / {p99:.0f} ms",
                f"p50 / p99 of {args.repeat} runs one at a time (POST to the terminal event"
                " on the stream); 20,000-bar chunks",
            )
        submit_rows(t, node, args.no_submit)
        mean, peak = asyncio.run(_table_rates(node, since))
        t.add(
            "events/s into the table, submissions",
            f"{mean:,.0f} / {peak:,}",
            "mean over busy seconds / busiest second (event timestamps)",
        )
        node.stop()
        node.env = {**env, "BARSTREAM_CHUNK_BARS": "50", "BARSTREAM_PACE_SECONDS": "0.005"}
        node.start()
        time.sleep(2)
        t.add(
            "server memory, idle",
            f"{node.rss_mb():.0f} MB RSS",
            f"{node.uss_mb():.0f} MB private (USS): the baseline for the rows below",
        )
        since = time.time()
        one_run(t, [node], args)
        many_runs(t, [node], args)
        mean, peak = asyncio.run(_table_rates(node, since))
        t.add(
            "events/s into the table, fan-out runs",
            f"{mean:,.0f} / {peak:,}",
            "mean over busy seconds / busiest second; 50-bar chunks",
        )
        rate, mb = replay(node, args.backlog)
        t.add(
            f"backlog replay, {args.backlog:,} events",
            f"{rate:,.0f} events/s",
            f"{mb:.1f} MB/s; one new subscriber from last_event_id 0 (lean client)",
        )
        t.add(
            "server memory after all that",
            f"{node.rss_mb():.0f} MB RSS",
            f"{node.uss_mb():.0f} MB of it private (USS); the rest is mapped bar files",
        )
        if not args.no_two_nodes:
            two_nodes(t, base, node, env, args)
    finally:
        for n in nodes[::-1]:
            n.stop()
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, Python"
          f" {platform.python_version()}; server workers: {args.workers}; clients:"
          f" {args.clients} processes")  # fmt: skip
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    t.print()
    shutil.rmtree(base, ignore_errors=True)


def submit_rows(t: Table, node: Node, skip: bool) -> None:
    if skip:
        t.add("submissions/s against /healthz/s", "not measured", "--no-submit")
        return
    if importlib.util.find_spec("bench_submit") is None:
        sys.path.insert(0, str(ROOT / "scripts"))
    if importlib.util.find_spec("bench_submit") is None:
        t.add(
            "submissions/s against /healthz/s", "not measured", "(scripts/bench_submit.py missing)"
        )
        t.add("runs/s under a burst", "not measured", "(scripts/bench_submit.py missing)")
        return
    import bench_submit  # type: ignore[import-not-found]

    wait_idle(node)
    try:
        rows = bench_submit.measure(node.url, node.key)
    except Exception as exc:  # its own failure is a row, not the end of this benchmark
        t.add("submissions/s against /healthz/s", "not measured", f"bench_submit failed: {exc!r}")
        return
    for r in rows:
        t.add(f"bench_submit: {r['name']}", f"{r['value']:,.2f} {r['unit']}", r["note"])


def one_run(t: Table, nodes: list[Node], args: argparse.Namespace, tag: str = "") -> None:
    for n in (int(x) for x in args.subs.split(",")):
        d, sample, rss = fanout(nodes, 1, n, min(args.clients, n), args.workers,
                                f"{n:,} subscribers, one run{tag}")  # fmt: skip
        f = floor(n, schedule_of(sample, 0), min(args.clients, n))
        delay_row(t, d, f)
        delay_row(t, f)
        t.add(f"server memory, {n:,} subscribers{tag}", rss, "peaks, serving process")


def many_runs(t: Table, nodes: list[Node], args: argparse.Namespace) -> None:
    d, _, rss = fanout(nodes, args.runs, args.per_run, args.clients, args.workers,
                       f"{args.runs * args.per_run:,} subscribers, {args.runs} runs")  # fmt: skip
    delay_row(t, d)
    t.add(f"server memory, {args.runs} runs", rss, "peaks, serving process")


def two_nodes(t: Table, base: Path, a: Node, env: dict[str, str], args: argparse.Namespace) -> None:
    """Node B: its own data dir, node A's PostgreSQL (DATABASE_URL) and bar directory."""
    b_dir = base / "b"
    b_dir.mkdir()
    (b_dir / "bars").symlink_to((a.data_dir / "bars").resolve())
    demo_end = datetime.now().astimezone().isoformat(timespec="minutes")
    b = Node(b_dir, {**a.env, "DATABASE_URL": a.dsn(), "BARSTREAM_DEMO_END": demo_end})
    b.key = a.key
    try:
        t.add("second node start to ready", f"{b.start():.1f} s", "DATABASE_URL = node A's")
        n = max(int(x) for x in args.subs.split(","))
        d, sample, _ = fanout([a, b], 1, n, min(args.clients, n), args.workers,
                              f"{n:,} subscribers, one run, half on each of 2 nodes")  # fmt: skip
        f = floor(n, schedule_of(sample, 0), min(args.clients, n))
        delay_row(t, d, f)
        p50, p99 = submit_to_completed(b, RUN_10K, max(5, args.repeat // 2))
        t.add(
            "submit→completed via node B, 10k bars",
            f"{p50:.0f} / {p99:.0f} ms",
            "two nodes' workers take runs; 50-bar chunks",
        )
    finally:
        b.stop()


if __name__ == "__main__":
    main()
