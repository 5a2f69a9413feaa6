"""The body of a pool worker process: compile kernels once, then run jobs sent over a pipe."""

import logging
import os
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from engine import Cancelled as EngineCancelled
from engine import LogLine
from protocol.errors import ErrorCode
from server.messages import (
    Cancel,
    Cancelled,
    Done,
    Failed,
    Job,
    Log,
    Progress,
    Ready,
    Stop,
)

_STORES: dict[str, Any] = {}


def _store(path: str) -> Any:
    """One BarStore per data directory per worker, so memory maps are shared across runs."""
    from engine.data import BarStore

    if path not in _STORES:
        _STORES[path] = BarStore(path)
    return _STORES[path]


def _run(conn: Connection, job: dict[str, Any]) -> None:
    """Run one job through the engine's entry point, relaying its stages and log lines."""
    from engine import RunSpec, Stage, run_job
    from server.results import results_body

    pace = float(job.get("pace_seconds") or 0.0)

    def cancelled() -> bool:
        while conn.poll():
            if isinstance(conn.recv(), Cancel | Stop):
                return True
        return False

    def on_progress(stage: Stage) -> bool:
        conn.send(Progress(stage.phase, stage.done, stage.total, dict(stage.metrics)))
        if pace and stage.phase == "simulate":
            time.sleep(pace)  # demo pacing: slows a run so its progress can be watched
        return not cancelled()

    def on_log(line: LogLine) -> None:
        conn.send(Log(line.level, str(line)))

    spec = RunSpec.from_dict(job)
    result = run_job(spec, _store(job["bars_dir"]), on_progress=on_progress, on_log=on_log)
    conn.send(Done(results_body(result)))


def _failure(exc: Exception) -> tuple[ErrorCode, str]:
    """The code and client-facing message of a failed job; details stay in the server log."""
    from engine import PathError, TemplateError

    if isinstance(exc, PathError):  # the request was checked before queuing; say what broke
        template = isinstance(exc, TemplateError)
        return ErrorCode.INVALID_TEMPLATE if template else ErrorCode.INVALID_STRATEGY, str(exc)
    message = f"the engine failed ({type(exc).__name__}); the server log has details"
    return ErrorCode.ENGINE_ERROR, message


def main(conn: Connection) -> None:
    """Warm the kernels, then serve jobs until told to stop or the pipe closes."""
    # Ctrl+C in a terminal reaches the whole process group: the server stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING)
    from engine import warm_up

    warm_up()
    conn.send(Ready(os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if isinstance(msg, Stop):
            return
        if not isinstance(msg, Job):
            continue  # a cancel for a job that already ended
        try:
            _run(conn, msg.spec)
        except EngineCancelled:
            conn.send(Cancelled())
        except Exception as exc:
            conn.send(Failed(*_failure(exc), traceback.format_exc(limit=8)))
