"""Start a real barstream server (uvicorn, embedded PostgreSQL, worker processes) for tests."""

import asyncio
import contextlib
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from engine.data.demo import update_demo_data
from engine.data.store import BarStore

T = TypeVar("T")
KEY_LINE = re.compile(r"API key \(shown once\): (\S+)")
SECRET_LINE = re.compile(r"signing secret for seed 004 requests \(shown once\): (\S+)")


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 30.0, every: float = 0.05
) -> T:
    """Retry `check` until it returns a truthy value or raises no AssertionError, within `timeout`."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = await check()
            if value:
                return value
        except AssertionError:
            if time.monotonic() > end:
                raise
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)


@dataclass
class ServerProcess:
    """A `barstream serve` subprocess and what a test needs to talk to it."""

    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    key: str | None = None
    secret: str | None = None  # the first key's signing secret
    log_path: Path | None = None
    database_url: str | None = None  # another node's PostgreSQL; None: its own embedded one

    @property
    def node_id(self) -> str:
        """The id this server's claims carry (runs.node, lease owners): host and pid."""
        assert self.proc is not None
        return f"{os.uname().nodename}:{self.proc.pid}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until /healthz answers 200."""
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{self.port}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env.pop("DATABASE_URL", None)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        out = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it open
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group, so a test can send it Ctrl+C
        )
        self.wait_ready(timeout)
        found = KEY_LINE.search(self.log())
        if found and self.key is None:
            self.key = found.group(1)
            secret = SECRET_LINE.search(self.log())
            self.secret = secret.group(1) if secret else None

    def wait_ready(self, timeout: float) -> None:
        """Poll /healthz until it answers 200; stop the server and raise if it exits or not."""
        assert self.proc is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # a poll interval (with a deadline), not a wait for a condition
        self.stop()
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0, *, group: bool = False) -> int:
        """Stop the server with `sig` (to its whole process group, as Ctrl+C does, if `group`)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cli_env(self) -> dict[str, str]:
        """The environment of a CLI command against this server's database."""
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        return {**env, "DATABASE_URL": self.database_url} if self.database_url else env

    def create_key(self, user: str) -> str:
        """Create a key with the CLI against this server's data directory (or database)."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "server.cli",
                "keys",
                "create",
                "--user",
                user,
                "--data-dir",
                str(self.data_dir),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env=self.cli_env(),
        )
        return out.stdout.strip()

    def create_signed_key(self, user: str, *, signed_only: bool = False) -> tuple[str, str]:
        """Create a key with the CLI; return it with its signing secret."""
        out = subprocess.run(
            [sys.executable, "-m", "server.cli", "keys", "create", "--user", user, "--json",
             "--data-dir", str(self.data_dir), *(["--signed-only"] if signed_only else [])],
            capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        made = json.loads(out.stdout)
        return made["key"], made["signing_secret"]

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


SEED_STRATEGY = {
    "name": "ETH Strategy",
    "asset": "ETH",
    "entry": [
        {
            "name": "macd_bullish_cross",
            "timeframe": "1h",
            "signal_type": "TRIGGER",
            "params": {"window_fast": 12, "window_slow": 26, "window_sign": 9},
        },
        {
            "name": "is_above_sma",
            "timeframe": "1h",
            "params": {"window": 50},
            "signal_type": "FILTER",
        },
    ],
    "exit": [],
}


def minute_run(
    start: str = "2024-01-01T00:00:00Z", end: str = "2025-01-01T00:00:00Z"
) -> dict[str, Any]:
    """The seed strategy on 1-minute bars: with a paced server, a run that lasts a few seconds."""
    strat = copy.deepcopy(SEED_STRATEGY)
    for sig in strat["entry"]:
        sig["timeframe"] = "1m"
    return backtest(resolution="1m", start=start, end=end, strategy=strat)


_demo_template: tuple[Path, str] | None = None


def demo_template(base: Path) -> tuple[Path, str]:
    """The demo bars up to the minute the first test server of the session started, generated
    once under `base` (the session's temporary directory), and that end as ISO 8601."""
    global _demo_template
    if _demo_template is None:
        report = update_demo_data(BarStore(base / "demo-template" / "bars"))
        end = np.datetime_as_string(np.datetime64(report.end_ns, "ns"), unit="m") + "Z"
        _demo_template = (base / "demo-template" / "bars", end)
    return _demo_template


def link_demo_data(data_dir: Path) -> str:
    """Hard-link the session's demo bars into data_dir (the store replaces files, never writes
    into one, so servers cannot change each other's data); return their end for BARSTREAM_DEMO_END.
    Generating them per server would cost seconds and ~700 MB each."""
    template, end = demo_template(data_dir.parent)
    bars = data_dir / "bars"
    for symbol in template.iterdir():
        if symbol.name.startswith(".") or (bars / symbol.name).exists():
            continue
        for src in sorted(symbol.rglob("*")):
            dst = bars / symbol.name / src.relative_to(symbol)
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)  # another file system
    return end


def serving(data_dir: Path, **env: str) -> Iterator[ServerProcess]:
    """Yield a started server with `env` settings (BARSTREAM_ prefixed), and stop it after.

    Unless `demo_end` is given, the server starts with the session's demo data linked in and
    BARSTREAM_DEMO_END at its end, so it finds them complete and writes none.
    """
    if "demo_end" not in env:
        env = {**env, "demo_end": link_demo_data(data_dir)}
    srv = ServerProcess(data_dir, env={f"BARSTREAM_{k.upper()}": v for k, v in env.items()})
    srv.start()
    yield srv
    srv.stop()


def embedded_dsn(srv: ServerProcess) -> str:
    """The socket URI of a server's embedded PostgreSQL (its directory is in postmaster.pid,
    line 5): what another process on this machine gives as DATABASE_URL to share it."""
    lines = (srv.data_dir / "pg" / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres@/postgres?host={lines[4]}"


def node_of(first: ServerProcess, data_dir: Path, **env: str) -> ServerProcess:
    """A further node (not started) of `first`'s cluster: its PostgreSQL and its bar directory,
    a data directory of its own, `env` settings (BARSTREAM_ prefixed), `first`'s key."""
    settings = {"bars_dir": str(first.data_dir / "bars"), **env}
    if "demo_end" not in settings:
        settings["demo_end"] = first.env["BARSTREAM_DEMO_END"]
    node = ServerProcess(
        data_dir,
        env={f"BARSTREAM_{k.upper()}": v for k, v in settings.items()},
        database_url=first.database_url or embedded_dsn(first),
    )
    node.key = first.key
    return node


TERMINAL = {"completed", "failed", "cancelled"}


@dataclass
class Subscriber:
    """Reads one run's stream live to its terminal event, reconnecting with `last_event_id`
    after any close or failed connect (as the SDK does), and records everything it saw."""

    srv: ServerProcess
    run_id: str
    seen: list[dict[str, Any]] = field(default_factory=list)
    closes: list[int | str] = field(default_factory=list)  # a close code, or what failed

    def ended(self) -> bool:
        last = self.seen[-1] if self.seen else None
        return bool(last and last["type"] == "state" and last["data"]["state"] in TERMINAL)

    async def follow(self) -> None:
        delay = 0.05
        while not self.ended():
            after = self.seen[-1]["id"] if self.seen else 0
            url = f"{self.srv.ws_url}/api/v2/backtests/{self.run_id}/stream?last_event_id={after}"
            try:
                async with connect(
                    url, additional_headers={"X-API-Key": self.srv.key}, open_timeout=5,
                    close_timeout=2, max_size=None,
                ) as ws:  # fmt: skip
                    with contextlib.suppress(ConnectionClosed):
                        async for raw in ws:
                            self.seen.append(orjson.loads(raw))
                            delay = 0.05
                    self.closes.append(ws.close_code or 1006)
            except Exception as exc:  # refused, reset, a handshake cut short: try again
                self.closes.append(type(exc).__name__)
            if not self.ended():
                await asyncio.sleep(delay)
                delay = min(2 * delay, 0.4)


def backtest(**overrides: Any) -> dict[str, Any]:
    """A valid v2 create body (seed 001's strategy on demo data), with overrides."""
    body: dict[str, Any] = {
        "symbols": ["ETH-USD"],
        "start": "2024-03-01T00:00:00Z",
        "end": "2024-09-01T00:00:00Z",
        "resolution": "1h",
        "capital": 10_000.0,
        "currency": "USD",
        "timezone": "UTC",
        "strategy": SEED_STRATEGY,
        "execution": {"fee_bps": 10},
    }
    body.update(overrides)
    return body
