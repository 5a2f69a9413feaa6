"""Columnar, memory-mapped bar store.

Layout under the root (``<data-dir>/bars``)::

    <SYMBOL>/meta.json                          name, aliases, base resolution, range, calendar
    <SYMBOL>/<base>/{ts,open,high,low,close,volume}.npy        the stored (base) bars
    <SYMBOL>/cache/<res>[@<tz>]-<key>/{...}.npy                coarser bars, built on first use

Columns are opened with ``np.load(mmap_mode="r")`` and sliced with ``np.searchsorted``, so a
million-bar slice loads in milliseconds. Coarser resolutions are resampled from the base once and
cached on disk; the cache key hashes the base's bar count, last timestamp and meta.json (which
changes on every write), so a rewritten base is never read through a stale cache. Writes go to a
temporary directory first and are then swapped into place with ``os.replace``, so a failed write
leaves the previous data untouched.

The catalog (every symbol's meta.json) is kept in memory and read again only when the root
directory changes: a write or a delete, by this process, another one or another node sharing
the directory, adds, renames or removes an entry of the root and so changes its mtime, which
each lookup checks with one stat (see ``BarStore._current`` for the same-tick case).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data import catalog
from engine.data.bars import (
    BASE_RESOLUTIONS,
    COLUMNS,
    MINUTE_NS,
    RESOLUTIONS,
    BarError,
    Bars,
    coarser,
    concat,
    count_gaps,
    empty_bars,
    take,
    validate_bars,
)
from engine.data.resample import closed_only, is_utc, resample

BASE_RESOLUTION = "1m"

__all__ = [
    "BASE_RESOLUTION",
    "BASE_RESOLUTIONS",
    "COLUMNS",
    "MINUTE_NS",
    "RESOLUTIONS",
    "BarError",
    "BarStore",
    "Bars",
    "SymbolInfo",
    "UnavailableResolution",
    "empty_bars",
    "merge_bars",
    "resample",
    "validate_bars",
]


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
    calendar: str = "24/7"
    gaps: int = 0
    meta: dict = field(default_factory=dict, repr=False, compare=False)


# A catalog read within this long of the root's last change is read again (see _current).
RACY_NS = 1_000_000_000
# And any catalog once it is this old, whatever the stamp says: a network file system may
# serve a directory's attributes from its cache (NFS: acdirmin/acdirmax) for longer.
MAX_AGE_NS = 5_000_000_000
_MAX_NAMES = 4096


@dataclass(frozen=True)
class _Catalog:
    """Every symbol's entry as read at one state of the root, and the names resolved in it."""

    stamp: tuple[int, int]
    infos: tuple[SymbolInfo, ...]
    trusted: bool
    read_ns: int  # time.monotonic_ns() when read
    names: dict[tuple[str, str], SymbolInfo | None] = field(default_factory=dict)

    def holds(self, stamp: tuple[int, int], now_ns: int) -> bool:
        """Whether this catalog is still the store's, by the root's stamp and its own age."""
        return self.trusted and self.stamp == stamp and now_ns - self.read_ns < MAX_AGE_NS


class UnavailableResolution(ValueError):
    """A symbol has no data at (or finer than) the resolution asked for."""


def merge_bars(old: Bars, new: Bars) -> Bars:
    """Union of two sorted series; BarError (index into new) if a shared timestamp disagrees."""
    pos = np.searchsorted(old.ts, new.ts)
    inside = pos < len(old)
    same = np.zeros(len(new), dtype=bool)
    same[inside] = old.ts[pos[inside]] == new.ts[inside]
    idx = np.flatnonzero(same)
    for col in COLUMNS[1:]:
        a, b = getattr(old, col)[pos[idx]], getattr(new, col)[idx]
        bad = np.flatnonzero(a != b)
        if bad.size:
            i = int(idx[bad[0]])
            raise BarError(
                i,
                f"overlaps a stored bar that disagrees ({col} {float(b[bad[0]])!r}, stored {float(a[bad[0]])!r})",
            )
    both = concat([old, take(new, ~same)])
    return take(both, np.argsort(both.ts, kind="stable"))


class BarStore:
    """Bar store rooted at ``<data_dir>/bars``; safe to share between threads of one process."""

    def __init__(self, root: Path, default_quote: str | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.default_quote = default_quote
        self._lock = threading.Lock()
        self._columns: dict[tuple[str, ...], tuple[tuple[int, int], dict[str, np.ndarray]]] = {}
        self._catalog: _Catalog | None = None

    def symbols(self) -> list[SymbolInfo]:
        """List every stored symbol, sorted by name (from memory while the store is unchanged)."""
        return list(self._current().infos)

    def resolve(self, name: str) -> SymbolInfo | None:
        """Find a symbol by name or alias, case-insensitively (see engine.data.catalog)."""
        cat = self._current()
        key = (name, self.default_quote or catalog.default_quote())
        if key not in cat.names:
            if len(cat.names) >= _MAX_NAMES:
                cat.names.clear()  # names are user input: keep the memo bounded
            cat.names[key] = catalog.match(name, cat.infos, self.default_quote)
        return cat.names[key]

    def _current(self) -> _Catalog:
        """The catalog, read again only when the root directory changed (one stat a call).

        Every write and delete adds, renames or removes an entry of the root, which changes its
        mtime, whichever process or node (sharing the directory) made the change. A catalog
        read less than RACY_NS after the root last changed is not trusted (a second change in
        the same clock tick would keep the mtime), so it is read again until then; none is
        kept longer than MAX_AGE_NS.
        """
        st = os.stat(self.root)
        stamp = (st.st_ino, st.st_mtime_ns)
        cat, now = self._catalog, time.monotonic_ns()
        if cat is not None and cat.holds(stamp, now):
            return cat
        racy = time.time_ns() - st.st_mtime_ns <= RACY_NS
        cat = _Catalog(stamp, tuple(self._read_all()), not racy, now)
        self._catalog = cat
        return cat

    def _read_all(self) -> list[SymbolInfo]:
        """Read every symbol's meta.json, sorted by name."""
        infos = []
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or not (path / "meta.json").is_file():
                continue
            try:
                infos.append(self._info(path))
            except FileNotFoundError:
                continue  # swapped out while listing
        return infos

    def load(
        self, symbol: str, resolution: str, start_ns: int, end_ns: int, tz: str = "UTC"
    ) -> Bars:
        """Return bars with open time in [start_ns, end_ns] at the given resolution.

        Daily, weekly (Monday) and monthly (the 1st) bars start at local midnight in ``tz``
        (default UTC); other resolutions ignore it.
        Coarser bars are resampled from the stored base once and then read from the cache; a
        coarse bar whose bucket the stored data does not reach to its end is not returned.
        """
        if resolution not in BASE_RESOLUTIONS:
            raise ValueError(f"unsupported resolution {resolution!r}")
        info = self.resolve(symbol)
        if info is None:
            raise KeyError(symbol)
        if resolution not in info.resolutions:
            raise UnavailableResolution(
                f"{info.name} has no {resolution} data; available: {', '.join(info.resolutions)}"
            )
        if resolution == info.base_resolution:
            cols = self._open(info, (info.name, info.base_resolution))
        else:
            cols = self._cached(info, resolution, "UTC" if is_utc(tz) else tz)
        lo = int(np.searchsorted(cols["ts"], start_ns, side="left"))
        hi = max(lo, int(np.searchsorted(cols["ts"], end_ns, side="right")))
        return Bars(**{c: np.array(cols[c][lo:hi]) for c in COLUMNS})

    def load_with_warmup(
        self, symbol: str, resolution: str, start_ns: int, end_ns: int, bars: int, tz: str = "UTC"
    ) -> Bars:
        """Return load(...) from `bars` bars before start_ns: by time for bars (so many bar
        lengths earlier), by count for ticks (so many ticks earlier), as ticks have no length."""
        step = BASE_RESOLUTIONS.get(resolution, 0)
        if step:
            return self.load(symbol, resolution, start_ns - bars * step, end_ns, tz=tz)
        info = self.resolve(symbol)
        if info is None:
            raise KeyError(symbol)
        ts = self._open(info, (info.name, info.base_resolution))["ts"]
        first = max(0, int(np.searchsorted(ts, start_ns, side="left")) - bars)
        return self.load(symbol, resolution, int(ts[first]) if len(ts) else start_ns, end_ns)

    def write(
        self,
        name: str,
        bars: Bars,
        *,
        aliases: list[str] | tuple[str, ...] = (),
        synthetic: bool = False,
        description: str = "",
        resolution: str = BASE_RESOLUTION,
        calendar: str = "24/7",
    ) -> SymbolInfo:
        """Store bars as a symbol's base data, replacing any previous data atomically."""
        if resolution not in BASE_RESOLUTIONS:
            raise ValueError(f"unsupported resolution {resolution!r}")
        if calendar not in catalog.CALENDARS:
            raise ValueError(f"calendar must be one of {', '.join(catalog.CALENDARS)}")
        validate_bars(bars, BASE_RESOLUTIONS[resolution])
        if not name or "/" in name or name.startswith(".") or name != name.strip():
            raise ValueError(f"invalid symbol name {name!r}")
        clash = catalog.conflicts(name, aliases, self.symbols())
        if clash:
            raise ValueError(clash)
        step = BASE_RESOLUTIONS[resolution]
        meta = {
            "name": name,
            "aliases": list(dict.fromkeys(aliases)),
            "base_resolution": resolution,
            "first_ts": int(bars.ts[0]),
            "last_ts": int(bars.ts[-1]),
            "bar_count": len(bars),
            "gaps": count_gaps(bars.ts, step),
            "calendar": calendar,
            "synthetic": synthetic,
            "description": description,
            "generation": uuid.uuid4().hex,
        }
        tmp = self.root / f".tmp-{name}-{uuid.uuid4().hex}"
        try:
            _write_columns(tmp / resolution, bars)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
            self._swap(tmp, self.root / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        with self._lock:
            for key in [k for k in self._columns if k[0] == name]:
                del self._columns[key]
        self._catalog = None  # this process sees its own write at once, whatever the clock
        return self._info(self.root / name)

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
        raw = (path / "meta.json").read_bytes()
        meta = json.loads(raw)
        base = meta.get("base_resolution", BASE_RESOLUTION)
        return SymbolInfo(
            name=meta["name"],
            aliases=list(meta.get("aliases", [])),
            base_resolution=base,
            resolutions=coarser(base),
            first_ts=int(meta["first_ts"]),
            last_ts=int(meta["last_ts"]),
            bar_count=int(meta["bar_count"]),
            synthetic=bool(meta.get("synthetic", False)),
            description=meta.get("description", ""),
            calendar=meta.get("calendar", "24/7"),
            gaps=int(meta.get("gaps", 0)),
            meta={**meta, "hash": hashlib.sha256(raw).hexdigest()},
        )

    def _stamp(self, name: str) -> tuple[int, int]:
        """Identity of a symbol's current meta.json (inode, mtime), which every write replaces."""
        st = (self.root / name / "meta.json").stat()
        return (st.st_ino, st.st_mtime_ns)

    def _open(self, info: SymbolInfo, key: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Memory-map the base columns of a symbol, reopening them if the data changed."""
        stamp = self._stamp(info.name)
        with self._lock:
            cached = self._columns.get(key)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        cols = _read_columns(self.root / info.name / info.base_resolution)
        with self._lock:
            self._columns[key] = (stamp, cols)
        return cols

    def _cached(self, info: SymbolInfo, resolution: str, tz: str) -> dict[str, np.ndarray]:
        """Memory-map the coarser bars of a symbol, building the disk cache on first use."""
        stamp = self._stamp(info.name)
        mkey = (info.name, resolution, tz)
        with self._lock:
            cached = self._columns.get(mkey)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        tag = resolution + ("" if tz == "UTC" else "@" + tz.replace("/", "~"))
        digest = f"{info.bar_count}:{info.last_ts}:{info.meta['hash']}"
        key = hashlib.sha256(digest.encode()).hexdigest()[:16]
        cache = self.root / info.name / "cache"
        path = cache / f"{tag}-{key}"
        if (path / "volume.npy").is_file():
            cols = _read_columns(path)
        else:
            base = self._open(info, (info.name, info.base_resolution))
            cols = _build(base, info, resolution, tz)
            _save_cache(cache, path, tag, cols)
        with self._lock:
            self._columns[mkey] = (stamp, cols)
        return cols


def _build(base: dict[str, np.ndarray], info: SymbolInfo, resolution: str, tz: str) -> dict:
    """Resample the full base series to a coarser resolution, keeping closed buckets only."""
    bars = Bars(**base)
    step = BASE_RESOLUTIONS[resolution]
    out = resample(bars, step, tz)
    data_end = info.last_ts + max(BASE_RESOLUTIONS[info.base_resolution], 1)
    out = closed_only(out, step, data_end, tz)
    return {c: getattr(out, c) for c in COLUMNS}


def _save_cache(cache: Path, path: Path, tag: str, cols: dict[str, np.ndarray]) -> None:
    """Write a cache entry atomically and drop stale entries of the same resolution."""
    tmp = cache / f".tmp-{uuid.uuid4().hex}"
    try:
        _write_columns(tmp, Bars(**cols))
        os.replace(tmp, path)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process built it, or the base moved
        return
    for stale in cache.glob(f"{tag}-*"):
        if stale != path:
            shutil.rmtree(stale, ignore_errors=True)


def _write_columns(path: Path, bars: Bars) -> None:
    """Write each column as a .npy file in a new directory."""
    path.mkdir(parents=True)
    for col in COLUMNS:
        dtype = np.int64 if col == "ts" else np.float64
        np.save(path / f"{col}.npy", np.ascontiguousarray(getattr(bars, col), dtype))


def _read_columns(path: Path) -> dict[str, np.ndarray]:
    """Memory-map each column of a directory."""
    return {c: np.load(path / f"{c}.npy", mmap_mode="r") for c in COLUMNS}
