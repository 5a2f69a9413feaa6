"""The embedded PostgreSQL after a crash: a stale postmaster.pid never blocks a start, and the
process its pid now names is never signalled (issue 14, defect 2)."""

import subprocess
import time
from pathlib import Path

from tests.server.harness import ServerProcess


def fake_pid_file(pgdata: Path, pid: int) -> None:
    """A postmaster.pid as PostgreSQL writes it, naming `pid`."""
    lines = [
        str(pid),
        str(pgdata),
        str(int(time.time())),
        "5432",
        "/tmp",
        "",
        "  1234  5678",
        "ready",
    ]
    (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")


def test_a_stale_pid_file_naming_another_process(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", env={"BARSTREAM_WORKERS": "1"})
    srv.start()
    assert srv.stop() == 130
    pgdata = srv.data_dir / "pg"
    assert not (pgdata / "postmaster.pid").exists()  # a clean stop removes it
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        fake_pid_file(pgdata, bystander.pid)  # as after a machine crash: the pid was reused
        srv.start()  # starts (it used to fail with rc 3)
        assert "stale postmaster.pid" in srv.log()
        assert srv.stop() == 130
        assert bystander.poll() is None  # never signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_a_live_postmaster_is_never_doubled(tmp_path: Path) -> None:
    """Two servers on one data dir share its one PostgreSQL; neither starts a second one."""
    import psutil

    first = ServerProcess(tmp_path / "data", env={"BARSTREAM_WORKERS": "1"})
    first.start()
    second = ServerProcess(tmp_path / "data", env={"BARSTREAM_WORKERS": "1"})
    try:
        second.start()
        pgdata = str((tmp_path / "data" / "pg").resolve())
        postmasters = [
            p for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "postgres" and "-D" in (p.info["cmdline"] or [])
            and pgdata in (p.info["cmdline"] or [])
        ]  # fmt: skip
        assert len(postmasters) == 1
    finally:
        second.stop()
        first.stop()
