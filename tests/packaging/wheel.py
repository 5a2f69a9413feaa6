"""Build barstream's wheel, install it into a virtualenv of its own and serve from it.

The virtualenv and numba's cache of compiled kernels live outside the checkout, under
~/.cache/barstream/wheel-smoke/ (or $XDG_CACHE_HOME), and are reused across test runs:
- the virtualenv is made afresh (with the wheel's dependencies) when the wheel's dependency
  list or the Python version changes, and the wheel alone is reinstalled when its content does;
- numba keys a cached kernel on its source file's path, mtime and size, so the installed engine
  files get one fixed mtime and the cache directory is named by a digest of the engine's files
  (and of the dependencies): a change to the engine compiles afresh, a change elsewhere does not;
- a server with one worker fills a new cache once, so that the smoke server's workers load
  every kernel instead of each compiling them all at once.
"""

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.server.harness import KEY_LINE, ServerProcess, free_port

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "server", "engine", "protocol", "client")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "barstream"
HOME = CACHE / "wheel-smoke"
FIXED_MTIME = 1_704_067_200  # 2024-01-01: any constant keeps numba's source stamps stable
DEMO_END = "2024-10-01T00:00"  # nine months of demo bars: generated in about a second


@dataclass(frozen=True)
class Installed:
    """A virtualenv holding the built wheel, and where its numba cache lives."""

    venv: Path
    numba_cache: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points Python or the server elsewhere."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DATABASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **extra}


def build_wheel(work: Path) -> Path:
    """Copy the sources to `work` (so no build/ left over from another build leaks in) and
    build the wheel there with pip, in an isolated build environment as any user would."""
    src = work / "src"
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=skip)
        else:
            shutil.copy2(REPO / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(src)])
    (wheel,) = work.glob("barstream-*.whl")
    return wheel


def digest(wheel: Path, prefix: str = "") -> str:
    """A digest of the wheel's files whose names start with `prefix` (names and contents, not
    the zip's timestamps)."""
    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(n for n in z.namelist() if n.startswith(prefix)):
            h.update(name.encode() + b"\0" + z.read(name) + b"\0")
    return h.hexdigest()


def requirements_digest(wheel: Path) -> str:
    """A digest of the wheel's dependency list and of the Python that will run it."""
    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        lines = [ln for ln in z.read(meta).decode().splitlines() if ln.startswith("Requires-")]
    return hashlib.sha256("\n".join([sys.version, *lines]).encode()).hexdigest()


@contextmanager
def prepared(work: Path) -> Iterator[Installed]:
    """Build the wheel in `work`, install it and fill numba's cache; hold the virtualenv for
    this process alone (other test runs wait their turn) until exit."""
    wheel = build_wheel(work)
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        installed = install(wheel)
        warmed = installed.numba_cache / ".warmed"
        if not warmed.exists():
            warm(installed, work)
            warmed.parent.mkdir(parents=True, exist_ok=True)
            warmed.touch()
        yield installed


def install(wheel: Path) -> Installed:
    """Install `wheel` into the cached virtualenv, making it afresh when its dependencies
    changed."""
    venv = HOME / "venv"
    deps, content = requirements_digest(wheel), digest(wheel)
    if stamp(venv, "deps") != deps:
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    elif stamp(venv, "wheel") != content:
        (venv / ".barstream-wheel").unlink(missing_ok=True)  # half reinstalled: redo next time
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        run([*pip, "--no-deps", "--force-reinstall", str(wheel)])
    else:
        return Installed(venv, numba_cache(wheel, deps))
    for path in site_packages(venv).joinpath("engine").rglob("*.py"):
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    (venv / ".barstream-deps").write_text(deps)
    (venv / ".barstream-wheel").write_text(content)
    return Installed(venv, numba_cache(wheel, deps))


def stamp(venv: Path, what: str) -> str | None:
    path = venv / f".barstream-{what}"
    return path.read_text() if path.exists() else None


def site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3.*/site-packages")
    return found


def numba_cache(wheel: Path, deps: str) -> Path:
    """The numba cache directory for this engine and these dependencies; older ones are removed."""
    key = hashlib.sha256((digest(wheel, "engine/") + deps).encode()).hexdigest()[:16]
    root = HOME / "numba"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        if old.name != key:
            shutil.rmtree(old, ignore_errors=True)
    return root / key


def run(cmd: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run a command outside the checkout; fail with its output if it fails."""
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=900, cwd="/", env=clean_env(**env)
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done


@dataclass
class WheelServer(ServerProcess):
    """`barstream serve` from the wheel's virtualenv, run from its data directory."""

    installed: Installed | None = None
    workers: int = 2

    def start(self, timeout: float = 600.0) -> None:
        """Start the installed server and wait until /healthz answers 200 (a cold numba cache
        makes its workers compile every kernel first)."""
        assert self.installed is not None
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "server.log"
        env = clean_env(
            PYTHONUNBUFFERED="1",
            NUMBA_CACHE_DIR=str(self.installed.numba_cache),
            BARSTREAM_DEMO_END=DEMO_END,
            BARSTREAM_WORKERS=str(self.workers),
        )
        cmd = [str(self.installed.venv / "bin" / "barstream"), "serve", "--port", str(self.port),
               "--data-dir", str(self.data_dir)]  # fmt: skip
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.data_dir,
                start_new_session=True,
            )  # fmt: skip
        self.wait_ready(timeout)
        found = KEY_LINE.search(self.log())
        assert found, f"no API key in the server's log:\n{self.log()}"
        self.key = found.group(1)


def warm(installed: Installed, work: Path) -> None:
    """Serve once with one worker, which compiles every kernel into the numba cache, so that
    later servers' workers load them instead of each compiling them all at once."""
    srv = WheelServer(work / "warm", installed=installed, workers=1)
    try:
        srv.start()
    finally:
        if srv.proc is not None:
            srv.stop()


_background: list[subprocess.Popen[bytes]] = []


def prepare_in_background() -> None:
    """Build, install and warm in another process (this module run as a script); its output
    goes to prepare.log beside the virtualenv."""
    HOME.mkdir(parents=True, exist_ok=True)
    with open(HOME / "prepare.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.packaging.wheel"],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _background.append(proc)


def end_background(*, stop: bool) -> None:
    """Wait for the background preparation to end, or stop it first if `stop`."""
    while _background:
        proc = _background.pop()
        if stop and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


if __name__ == "__main__":
    # What tests/packaging/conftest.py starts in the background when a session collects the
    # wheel tests, so that the build, the install and the compile overlap the tests before them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server it started
    with tempfile.TemporaryDirectory() as tmp, prepared(Path(tmp)):
        pass
