"""Run a command in a pseudo-terminal, as a person's shell would: its output is read as it
comes, keys (Ctrl+C included) are typed into it, and the terminal is its controlling one."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Mapping, Sequence

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]")
# The child makes the terminal its controlling one (so Ctrl+C signals it), then becomes argv.
TAKE_TTY = "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execvpe(sys.argv[1], sys.argv[1:], os.environ)"


def strip_ansi(text: str) -> str:
    """The text without escape sequences."""
    return ANSI.sub("", text)


class Terminal:
    """`argv` running in a new pseudo-terminal of `cols` x `rows`."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], cols: int = 120, rows: int = 40
    ) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TAKE_TTY, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=dict(env),
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self._out = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO once the child's side is closed
                return
            if not chunk:
                return
            with self._lock:
                self._out += chunk

    @property
    def text(self) -> str:
        """Everything written so far, escape sequences included."""
        with self._lock:
            return self._out.decode(errors="replace")

    def expect(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until the output, escape sequences removed, matches `pattern`."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = re.search(pattern, strip_ansi(self.text))
            if found:
                return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{pattern!r} not seen; output:\n{strip_ansi(self.text)}")

    def send(self, keys: str) -> None:
        """Type `keys` (\\x03 is Ctrl+C)."""
        os.write(self.master, keys.encode())

    def wait(self, timeout: float = 120) -> int:
        """The exit status, once the command ended and its output was read."""
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def close(self) -> None:
        """Kill the command if it still runs, and close the terminal."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        os.close(self.master)
