"""The messages between the server and its worker processes, pickled over a pipe.

Server → worker: `Job`, `Cancel`, `Stop`. Worker → server: `Ready` once at start, then per job
any number of `Progress` and `Log`, and exactly one of `Done`, `Failed` or `Cancelled`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol.errors import ErrorCode


@dataclass(frozen=True)
class Job:
    """Run this job (a run's or a shard's resolved config, see server.translate.job_from_config)."""

    spec: dict[str, Any]


@dataclass(frozen=True)
class Cancel:
    """Stop the current job at its next progress report."""


@dataclass(frozen=True)
class Stop:
    """Stop the current job, if any, and exit."""


@dataclass(frozen=True)
class Ready:
    """The worker has compiled its kernels and waits for jobs."""

    pid: int


@dataclass(frozen=True)
class Progress:
    """How far a job's phase is (`done` of `total`), with running metrics while simulating."""

    phase: str
    done: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Log:
    """A line for the run's log, at the level it was made with."""

    level: str
    message: str


@dataclass(frozen=True)
class Done:
    """The job's results body."""

    body: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    """The job failed: the client-facing code and message, and a traceback for the server log."""

    code: ErrorCode
    message: str
    trace: str


@dataclass(frozen=True)
class Cancelled:
    """The job stopped after a Cancel."""


ToWorker = Job | Cancel | Stop
FromWorker = Ready | Progress | Log | Done | Failed | Cancelled
ENDS = (Done, Failed, Cancelled)  # a job's last message
