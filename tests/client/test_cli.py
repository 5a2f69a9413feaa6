"""The command line against the real shared server: in a pseudo-terminal (a live progress bar,
Ctrl+C), without one (plain lines), as JSON for scripts, and following through dropped
connections. Expected values come from the REST API, read with plain httpx."""

import copy
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from client.config import resolve
from tests.client.terminal import Terminal, strip_ansi
from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest, minute_run
from tests.server.proxy import Proxy

CLI = [sys.executable, "-m", "server.cli"]
RUN_ID = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
SCRUB = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES",
         "COLORTERM", "BARSTREAM_CONFIG", "XDG_CONFIG_HOME", "BARSTREAM_URL", "BARSTREAM_API_KEY")  # fmt: skip


@pytest.fixture
def env(server: ServerProcess, key: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a person's shell with the server's URL and key exported."""
    out = {k: v for k, v in os.environ.items() if k not in SCRUB}
    out.update(HOME=str(tmp_path), TERM="xterm-256color", BARSTREAM_URL=server.url)
    out["BARSTREAM_API_KEY"] = key
    return out


@pytest.fixture
def minute_strategy(tmp_path: Path) -> str:
    """A strategy file: the seed strategy on 1-minute signals (runs of seconds on this server)."""
    strat = copy.deepcopy(SEED_STRATEGY)
    for sig in strat["entry"]:
        sig["timeframe"] = "1m"
    path = tmp_path / "strategy.json"
    path.write_text(json.dumps(strat))
    return str(path)


def cli(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI without a terminal."""
    done = subprocess.run(
        [*CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def until(check: Callable[[], bool], timeout: float = 120) -> None:
    """Poll `check` until it holds (the sync twin of the harness's `eventually`)."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def rest(server: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def get(server: ServerProcess, key: str, path: str) -> Any:
    with rest(server, key) as http:
        return http.get(path).json()


def table_rows(text: str) -> dict[str, str]:
    """metric -> value of the last metrics table in `text` (plain or drawn)."""
    lines = re.split(r"\r\n|\n|\r", strip_ansi(text))
    head = max(i for i, line in enumerate(lines) if re.search(r"\bmetric\b.*\bvalue\b", line))
    rows = {}
    for line in lines[head + 1 :]:
        found = re.fullmatch(r"[\s|]*([A-Za-z_]+)[\s|]+(\S+)[\s|]*", line)
        if found:
            rows[found.group(1)] = found.group(2)
    return rows


def assert_table_equals(rows: dict[str, str], metrics: dict[str, Any]) -> None:
    """Every metric of the results is in the table, with its value to 6 significant digits."""
    assert set(rows) == set(metrics)
    for name, expected in metrics.items():
        shown = rows[name]
        if expected is None:
            assert shown == "null", name
        elif isinstance(expected, int):
            assert int(shown) == expected, name
        else:
            assert float(shown) == pytest.approx(expected, rel=1e-5, abs=1e-12), name


def run_args(strategy: str, start: str = "2024-01-01", end: str = "2025-01-01") -> list[str]:
    return ["run", "--symbols", "ETH", "--strategy", strategy, "--from", start, "--to", end,
            "--resolution", "1m"]  # fmt: skip


def test_run_in_a_terminal_shows_a_live_bar_then_the_metrics(
    server: ServerProcess, key: str, env: dict[str, str], minute_strategy: str
) -> None:
    term = Terminal([*CLI, *run_args(minute_strategy)], env, cols=120)
    try:
        assert term.wait() == 0, strip_ansi(term.text)
    finally:
        term.close()
    raw = term.text
    run_id = re.search(rf"run {RUN_ID} submitted", strip_ansi(raw)).group(1)
    assert "━" in raw  # rich's bar
    assert "\r" in raw and "\x1b[2K" in raw  # redrawn in place: carriage return, erase line
    assert "\x1b[" in raw.split("run ", 1)[1]  # colours and cursor moves, as on a terminal
    shown = [int(p) for p in re.findall(r"━\s+(\d+)%", strip_ansi(raw))]
    assert len(set(shown)) >= 3 and shown == sorted(shown) and shown[-1] == 100
    plain = strip_ansi(raw)
    assert "simulate" in plain and "ETA" in plain and "equity" in plain and "max drawdown" in plain
    results = get(server, key, f"/api/v2/backtests/{run_id}/results")
    assert_table_equals(table_rows(raw), results["metrics"])


def test_run_without_a_terminal_prints_plain_lines(
    server: ServerProcess, key: str, env: dict[str, str], minute_strategy: str
) -> None:
    out = cli(*run_args(minute_strategy, end="2024-04-01"), env=env).stdout
    assert all(ch == "\n" or ch.isprintable() for ch in out), repr(out)  # no escapes, no \r
    run_id = re.search(rf"run {RUN_ID} submitted", out).group(1)
    lines = out.splitlines()
    for state in ("queued", "running", "completed"):
        assert f"run {run_id}: {state}" in lines
    progress = [int(m.group(1)) for m in re.finditer(r"^\s*(\d+)% \w+\s+ETA", out, re.M)]
    assert len(progress) >= 3 and progress == sorted(progress) and progress[-1] == 100
    results = get(server, key, f"/api/v2/backtests/{run_id}/results")
    assert_table_equals(table_rows(out), results["metrics"])


def test_run_json_prints_the_results_document(
    server: ServerProcess, key: str, env: dict[str, str], tmp_path: Path
) -> None:
    whole_body = tmp_path / "body.json"  # the file may hold a whole create body
    whole_body.write_text(json.dumps(backtest(name="cli json")))
    done = cli("run", "--strategy", str(whole_body), "--capital", "5000", "--json", env=env)
    doc = json.loads(done.stdout)
    assert doc == get(server, key, f"/api/v2/backtests/{doc['run_id']}/results")
    status = get(server, key, f"/api/v2/backtests/{doc['run_id']}")
    assert status["config"]["name"] == "cli json" and status["config"]["capital"] == 5000


def test_run_defaults_to_the_last_year_of_data(
    server: ServerProcess, key: str, env: dict[str, str], tmp_path: Path
) -> None:
    strategy = tmp_path / "s.json"
    strategy.write_text(json.dumps(SEED_STRATEGY))  # its asset, ETH, is the symbol
    status = json.loads(
        cli("run", "--strategy", str(strategy), "--no-follow", "--json", env=env).stdout
    )
    eth = next(s for s in get(server, key, "/api/v2/symbols")["items"] if s["name"] == "ETH-USD")
    end = datetime.fromisoformat(eth["last_bar"])
    assert datetime.fromisoformat(status["config"]["end"]) == end
    assert datetime.fromisoformat(status["config"]["start"]) == end - timedelta(days=365)
    assert status["config"]["symbols"] == ["ETH-USD"]


def test_runs_list_show_results_archive_as_json(server: ServerProcess, env: dict[str, str]) -> None:
    key = server.create_key("cli-list")
    env = {**env, "BARSTREAM_API_KEY": key}
    with rest(server, key) as http:
        made = [http.post("/api/v2/backtests", json=backtest(name=f"cli {i}")).json()["run_id"]
                for i in range(3)]  # fmt: skip
    until(lambda: all(r["state"] == "completed" for r in get(server, key, "/api/v2/backtests")))
    listed = json.loads(cli("runs", "list", "--json", env=env).stdout)
    assert listed == get(server, key, "/api/v2/backtests")
    assert [r["run_id"] for r in listed] == made[::-1]
    two = json.loads(cli("runs", "list", "--limit", "2", "--json", env=env).stdout)
    assert [r["run_id"] for r in two] == made[:0:-1]
    table = cli("runs", "list", env=env).stdout
    assert all(run_id in table for run_id in made) and "3 of 3 runs" in table
    shown = json.loads(cli("runs", "show", made[0], "--json", env=env).stdout)
    assert shown == get(server, key, f"/api/v2/backtests/{made[0]}")
    results = json.loads(cli("runs", "results", made[0], "--json", env=env).stdout)
    assert results == get(server, key, f"/api/v2/backtests/{made[0]}/results")
    assert_table_equals(
        table_rows(cli("runs", "results", made[0], env=env).stdout), results["metrics"]
    )
    archived = json.loads(cli("runs", "archive", made[0], "--json", env=env).stdout)
    assert archived["archived"] is True
    assert [r["run_id"] for r in json.loads(cli("runs", "list", "--json", env=env).stdout)] == made[
        :0:-1
    ]
    assert "archived   | no" in cli("runs", "unarchive", made[0], env=env).stdout


def test_runs_cancel(
    server: ServerProcess, key: str, env: dict[str, str], minute_strategy: str
) -> None:
    with rest(server, key) as http:
        run_id = http.post("/api/v2/backtests", json=minute_run()).json()["run_id"]
        cli("runs", "cancel", run_id, env=env)
        until(lambda: http.get(f"/api/v2/backtests/{run_id}").json()["state"] == "cancelled")
    again = cli("runs", "cancel", run_id, env=env, check=False)
    assert again.returncode == 1 and "409 run_finished" in again.stderr


def _interrupt(env: dict[str, str], strategy: str, answer: str) -> tuple[str, Terminal]:
    """Start a long followed run in a terminal, press Ctrl+C once it runs, answer the question."""
    term = Terminal([*CLI, *run_args(strategy, end="2026-01-01")], env)
    try:
        run_id = term.expect(rf"run {RUN_ID} submitted").group(1)
        term.expect(r"simulate")
        term.send("\x03")
        term.expect(r"\[c\]ancel the run, or \[d\]etach and leave it running\? \[d\]")
        term.send(answer + "\r")
        assert term.wait() == 130
    finally:
        term.close()
    return run_id, term


def test_ctrl_c_then_cancel_ends_the_run_cancelled(
    server: ServerProcess, key: str, env: dict[str, str], minute_strategy: str
) -> None:
    run_id, term = _interrupt(env, minute_strategy, "c")
    assert f"run {run_id} cancelled" in strip_ansi(term.text)
    assert get(server, key, f"/api/v2/backtests/{run_id}")["state"] == "cancelled"


def test_ctrl_c_then_detach_leaves_the_run_running(
    server: ServerProcess, key: str, env: dict[str, str], minute_strategy: str
) -> None:
    run_id, term = _interrupt(env, minute_strategy, "d")
    assert f"barstream runs follow {run_id}" in strip_ansi(term.text)
    assert get(server, key, f"/api/v2/backtests/{run_id}")["state"] == "running"
    with rest(server, key) as http:
        http.post(f"/api/v2/backtests/{run_id}/cancel")  # free the worker for the next tests


def cut_when_connected(proxy: Proxy) -> None:
    """Cut the stream once it is open: lines read from the pipe may lag behind the socket, and
    the CLI may be waiting to reconnect after the last cut."""
    until(lambda: proxy.open_connections() >= 1, timeout=30)
    assert proxy.drop_all() >= 1


def test_follow_through_dropped_connections_misses_no_event(
    server: ServerProcess, key: str, env: dict[str, str], proxy: Proxy
) -> None:
    with rest(server, key) as http:  # two years of minute bars: about five seconds
        run_id = http.post("/api/v2/backtests", json=minute_run(end="2026-01-01T00:00:00Z")).json()[
            "run_id"
        ]
    follow = subprocess.Popen(
        [*CLI, "runs", "follow", run_id, "--json-lines", "--url", proxy.url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    events = []
    try:
        for line in follow.stdout:
            events.append(json.loads(line))
            if events[-1]["id"] in (10, 30, 50):
                cut_when_connected(proxy)
        assert follow.wait(60) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
    stderr = follow.stderr.read()
    assert stderr.count("reconnecting") >= 3, stderr
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "state" and events[-1]["data"]["state"] == "completed"


def test_config_precedence(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('url = "http://file:1"\napi_key = "bs_file"\n')
    env = {"BARSTREAM_CONFIG": str(path)}
    assert (resolve(env=env).url, resolve(env=env).key) == ("http://file:1", "bs_file")
    env |= {"BARSTREAM_URL": "http://env:2", "BARSTREAM_API_KEY": "bs_env"}
    assert (resolve(env=env).url, resolve(env=env).key) == ("http://env:2", "bs_env")
    flags = resolve("http://flag:3", "bs_flag", env=env)
    assert (flags.url, flags.key, flags.url_from, flags.key_from) == (
        "http://flag:3", "bs_flag", "--url", "--key")  # fmt: skip
    home = {"HOME": str(tmp_path)}
    (tmp_path / ".config" / "barstream").mkdir(parents=True)
    (tmp_path / ".config" / "barstream" / "config.toml").write_text('api_key = "bs_home"\n')
    assert (resolve(env=home).url, resolve(env=home).key) == ("http://127.0.0.1:8000", "bs_home")


def test_config_file_and_flags_on_the_command_line(
    server: ServerProcess, key: str, env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "barstream.toml"
    config.write_text(f'url = "{server.url}"\napi_key = "{key}"\n')
    from_file = {k: v for k, v in env.items() if not k.startswith("BARSTREAM_")}
    from_file["BARSTREAM_CONFIG"] = str(config)
    listed = json.loads(cli("runs", "list", "--limit", "1", "--json", env=from_file).stdout)
    assert listed == get(server, key, "/api/v2/backtests?limit=1")
    refused = cli("runs", "list", "--key", "bs_wrong", env=from_file, check=False)
    assert refused.returncode == 1 and "401 unauthorized" in refused.stderr
    none = {k: v for k, v in from_file.items() if k != "BARSTREAM_CONFIG"}
    missing = cli("runs", "list", env=none, check=False)
    assert missing.returncode == 1 and "no API key" in missing.stderr
