"""Machine description, markdown tables and the trade agreement check."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

PACKAGES = ("numpy", "numba", "pandas", "vectorbt", "backtesting", "backtrader")


def machine(root: Path) -> list[str]:
    """Return lines describing the machine, the versions and the code measured."""
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- cpu: {_cpu_model()}, {os.cpu_count()} logical cores, {_mem_gb():.1f} GB RAM",
        f"- python {platform.python_version()} ({platform.system()} {platform.release()}); "
        + ", ".join(f"{p} {_version(p)}" for p in PACKAGES),
        f"- barstream: {_git(root)}",
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(root: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "engine")
    return f"{root} at {head}" + (" with uncommitted engine changes" if dirty else "")


def command_line() -> str:
    """Return the command as typed, relative to the repository where possible."""
    exe = os.path.relpath(sys.executable) if sys.executable else "python"
    return " ".join([exe, os.path.relpath(sys.argv[0]), *sys.argv[1:]])


def table(header: list[str], rows: list[list[str]]) -> str:
    """Return a markdown table with right-aligned numeric columns."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    numeric = [all(_is_number(r[i]) for r in rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                str(c).rjust(w) if num else str(c).ljust(w)
                for c, w, num in zip(cells, widths, numeric, strict=True)
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if num else ("-" * (w + 2))
            for w, num in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _is_number(cell: object) -> bool:
    text = str(cell).replace(",", "").removesuffix("x").strip()
    if text in ("", "—", "-"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def meaningful_end(equity: np.ndarray, close: np.ndarray, min_units: float = 10.0) -> int:
    """Return the first bar where all-in equity buys fewer than min_units units (else len)."""
    low = np.flatnonzero(equity < min_units * close * 1.01)
    return int(low[0]) if low.size else int(equity.shape[0])


def compare_trades(
    reference: np.ndarray, others: dict[str, np.ndarray], end: int
) -> tuple[int, list[str]]:
    """Compare closed trades exiting before bar end; return (count, disagreement lines)."""
    ref = reference[reference[:, 1] < end]
    problems: list[str] = []
    for name, trades in others.items():
        got = trades[trades[:, 1] < end]
        if got.shape == ref.shape and np.array_equal(got, ref):
            continue
        problems.append(f"  {name}: {len(got)} trades, reference {len(ref)}")
        k = min(len(got), len(ref))
        diff = np.flatnonzero(np.any(got[:k] != ref[:k], axis=1))
        first = int(diff[0]) if diff.size else k
        for j in range(first, min(first + 3, max(len(got), len(ref)))):
            mine = got[j].tolist() if j < len(got) else "—"
            theirs = ref[j].tolist() if j < len(ref) else "—"
            problems.append(f"    trade {j}: {name} {mine} vs reference {theirs}")
    return len(ref), problems
