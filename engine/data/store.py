"""Columnar, memory-mapped bar store.

Layout: ``<root>/<SYMBOL>/1m/{ts,open,high,low,close,volume}.npy`` plus
``<root>/<SYMBOL>/meta.json``.
Columns are opened with ``np.load(mmap_mode="r")`` and sliced with ``np.searchsorted``, so a
million-bar symbol loads in milliseconds. Coarser resolutions are resampled from the 1-minute base,
aligned to UTC epoch multiples of the interval. Writes go to a temporary directory first and are
then swapped into place with ``os.replace``, so a failed write leaves the previous data untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MINUTE_NS = 60_000_000_000
RESOLUTIONS: dict[str, int] = {
    "1m": MINUTE_NS,
    "5m": 5 * MINUTE_NS,
    "15m": 15 * MINUTE_NS,
    "1h": 60 * MINUTE_NS,
    "4h": 240 * MINUTE_NS,
    "1d": 1440 * MINUTE_NS,
}
BASE_RESOLUTION = "1m"
COLUMNS = ("ts", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Bars:
    """OHLCV bars; ``ts`` is the bar open time in ns since the epoch (UTC), strictly increasing."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass(frozen=True)
class SymbolInfo:
    """Catalog entry for one stored symbol."""

    name: str
    aliases: list[str]
    base_resolution: str
    resolutions: list[str]
    first_ts: int
    last_ts: int
    bar_count: int
    synthetic: bool
    description: str


def empty_bars() -> Bars:
    """Return a Bars with no rows."""
    f = np.empty(0, dtype=np.float64)
    return Bars(np.empty(0, dtype=np.int64), f, f.copy(), f.copy(), f.copy(), f.copy())


def validate_bars(bars: Bars, step_ns: int = MINUTE_NS) -> None:
    """Raise ValueError unless the bars are well-formed base bars."""
    n = len(bars)
    cols = [bars.open, bars.high, bars.low, bars.close, bars.volume]
    if any(c.shape != (n,) for c in cols):
        raise ValueError("all columns must be 1-D with the same length as ts")
    if n == 0:
        raise ValueError("no bars")
    ts = np.asarray(bars.ts)
    if ts.dtype.kind not in "iu" or np.any(np.diff(ts) <= 0):
        raise ValueError("timestamps must be integer ns and strictly increasing")
    if np.any(ts % step_ns != 0):
        raise ValueError("timestamps must be aligned to the base resolution")
    if any(np.isnan(np.asarray(c, dtype=np.float64)).any() for c in cols):
        raise ValueError("bars contain NaN")
    if np.any(bars.high < np.maximum(bars.open, bars.close)):
        raise ValueError("high below max(open, close)")
    if np.any(bars.low > np.minimum(bars.open, bars.close)):
        raise ValueError("low above min(open, close)")


def resample(bars: Bars, step_ns: int) -> Bars:
    """Aggregate bars into buckets aligned to UTC epoch multiples of step_ns."""
    if len(bars) == 0:
        return empty_bars()
    bucket = bars.ts - bars.ts % step_ns
    starts = np.flatnonzero(np.diff(bucket)) + 1
    starts = np.concatenate(([0], starts))
    ends = np.concatenate((starts[1:], [len(bars)])) - 1
    return Bars(
        ts=bucket[starts].astype(np.int64),
        open=np.asarray(bars.open)[starts].astype(np.float64),
        high=np.maximum.reduceat(bars.high, starts).astype(np.float64),
        low=np.minimum.reduceat(bars.low, starts).astype(np.float64),
        close=np.asarray(bars.close)[ends].astype(np.float64),
        volume=np.add.reduceat(bars.volume, starts).astype(np.float64),
    )


class BarStore:
    """Bar store rooted at ``<data_dir>/bars``; safe to share between threads of one process."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._columns: dict[str, tuple[float, dict[str, np.ndarray]]] = {}

    def symbols(self) -> list[SymbolInfo]:
        """List every stored symbol, sorted by name."""
        infos = []
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or not (path / "meta.json").is_file():
                continue
            infos.append(self._info(path))
        return infos

    def resolve(self, name: str) -> SymbolInfo | None:
        """Find a symbol by name or alias, case-insensitively."""
        key = name.strip().upper()
        for info in self.symbols():
            if key == info.name.upper() or key in (a.upper() for a in info.aliases):
                return info
        return None

    def load(self, symbol: str, resolution: str, start_ns: int, end_ns: int) -> Bars:
        """Return bars with open time in [start_ns, end_ns] at the given resolution."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"unsupported resolution {resolution!r}")
        info = self.resolve(symbol)
        if info is None:
            raise KeyError(symbol)
        step = RESOLUTIONS[resolution]
        if resolution == BASE_RESOLUTION:
            return self._slice(info.name, start_ns, end_ns)
        first = -(-start_ns // step) * step
        last = end_ns // step * step
        out = resample(self._slice(info.name, first, last + step - 1), step)
        if len(out) and out.ts[-1] + step > info.last_ts + MINUTE_NS:
            out = _head(out, len(out) - 1)
        return out

    def write(
        self,
        name: str,
        bars: Bars,
        *,
        aliases: list[str] | tuple[str, ...] = (),
        synthetic: bool = False,
        description: str = "",
    ) -> None:
        """Store 1-minute bars for a symbol, replacing any previous data atomically."""
        validate_bars(bars)
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid symbol name {name!r}")
        tmp = self.root / f".tmp-{name}-{uuid.uuid4().hex}"
        (tmp / BASE_RESOLUTION).mkdir(parents=True)
        try:
            self._write_dir(tmp, name, bars, list(aliases), synthetic, description)
            self._swap(tmp, self.root / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with self._lock:
            self._columns.pop(name, None)

    def _write_dir(
        self, tmp: Path, name: str, bars: Bars, aliases: list[str], synthetic: bool, desc: str
    ) -> None:
        """Write columns and meta.json into a fresh directory."""
        for col in COLUMNS:
            dtype = np.int64 if col == "ts" else np.float64
            np.save(
                tmp / BASE_RESOLUTION / f"{col}.npy",
                np.ascontiguousarray(getattr(bars, col), dtype),
            )
        meta = {
            "name": name,
            "aliases": aliases,
            "base_resolution": BASE_RESOLUTION,
            "first_ts": int(bars.ts[0]),
            "last_ts": int(bars.ts[-1]),
            "bar_count": len(bars),
            "synthetic": synthetic,
            "description": desc,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))

    def _swap(self, tmp: Path, final: Path) -> None:
        """Move tmp into final's place; an existing final is moved aside first, then removed."""
        old = None
        if final.exists():
            old = self.root / f".old-{final.name}-{uuid.uuid4().hex}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _info(self, path: Path) -> SymbolInfo:
        """Read one symbol's meta.json."""
        meta = json.loads((path / "meta.json").read_text())
        return SymbolInfo(
            name=meta["name"],
            aliases=list(meta.get("aliases", [])),
            base_resolution=meta.get("base_resolution", BASE_RESOLUTION),
            resolutions=list(RESOLUTIONS),
            first_ts=int(meta["first_ts"]),
            last_ts=int(meta["last_ts"]),
            bar_count=int(meta["bar_count"]),
            synthetic=bool(meta.get("synthetic", False)),
            description=meta.get("description", ""),
        )

    def _open(self, name: str) -> dict[str, np.ndarray]:
        """Return the memory-mapped base columns of a symbol, reopening them if the data changed."""
        meta_path = self.root / name / "meta.json"
        mtime = meta_path.stat().st_mtime_ns
        with self._lock:
            cached = self._columns.get(name)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        base = self.root / name / BASE_RESOLUTION
        cols = {c: np.load(base / f"{c}.npy", mmap_mode="r") for c in COLUMNS}
        with self._lock:
            self._columns[name] = (mtime, cols)
        return cols

    def _slice(self, name: str, start_ns: int, end_ns: int) -> Bars:
        """Copy base bars with open time in [start_ns, end_ns] out of the memory maps."""
        cols = self._open(name)
        lo = int(np.searchsorted(cols["ts"], start_ns, side="left"))
        hi = int(np.searchsorted(cols["ts"], end_ns, side="right"))
        hi = max(lo, hi)
        return Bars(**{c: np.array(cols[c][lo:hi]) for c in COLUMNS})


def _head(bars: Bars, n: int) -> Bars:
    """Return the first n bars."""
    return Bars(**{c: getattr(bars, c)[:n] for c in COLUMNS})
