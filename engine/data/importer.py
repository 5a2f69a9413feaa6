"""CSV import and export: generic OHLCV files with a header, and exchange kline exports.

Generic: a header row naming a timestamp column (``timestamp``, ``time``, ``date``, ``datetime``,
``open_time``, or an unnamed first column) and ``open, high, low, close`` (``volume`` optional);
timestamps are ISO 8601 (naive means UTC) or epoch seconds, ms, µs or ns, told apart by size.
Tick files name a ``price`` column instead of OHLC. Weekly (``1w``) and monthly (``1M``) rows may
be stamped with any time in their week (Monday to Sunday, UTC) or month: each is stored at its
period's start. Kline (Binance-style): no header, then
``open time, open, high, low, close, volume, close time, …`` with times in epoch ms (or µs).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from engine.data.bars import (
    BASE_RESOLUTIONS,
    CALENDAR_RESOLUTIONS,
    DAY_NS,
    BarError,
    Bars,
    check_bars,
    guess_calendar,
    iso_strings,
    parse_iso,
)
from engine.data.periods import floor_periods
from engine.data.store import BarStore, SymbolInfo, merge_bars

FORMATS = ("generic", "kline")
Progress = Callable[[int, int], None]
_NAMES = {
    "ts": ("timestamp", "time", "date", "datetime", "ts", "open_time", "opentime", "t", ""),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v", "size", "qty", "quantity", "amount"),
    "price": ("price", "p"),
}
_OFFSET = re.compile(r"\d[+-]\d\d:?\d\d$")
_UNITS = ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3), (2**63, 1))  # (below, ns per unit)


class ImportFailed(ValueError):
    """A file cannot be imported; ``row`` is its 1-based line number when one row is at fault."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(f"row {row}: {message}" if row is not None else message)
        self.row = row


@dataclass(frozen=True)
class Parsed:
    """Bars read from a file, the file line of each bar, the format and the step it showed."""

    bars: Bars
    rows: np.ndarray
    format: str
    resolution: str | None


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    symbol: str
    resolution: str
    format: str
    rows: int
    added: int
    info: SymbolInfo


def _lines(f: io.BufferedReader, total: int, progress: Progress | None) -> Iterator[str]:
    """Decode lines, reporting bytes read every megabyte or so."""
    done, next_report = 0, 1 << 20
    for raw in f:
        done += len(raw)
        if progress is not None and done >= next_report:
            progress(done, total)
            next_report = done + (1 << 20)
        yield raw.decode("utf-8-sig" if done == len(raw) else "utf-8")
    if progress is not None:
        progress(done, total)


def _numeric(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _detect(first: list[str]) -> str:
    """Tell the format from the first row, or raise asking for --format."""
    if not all(_numeric(f) for f in first):
        return "generic"
    if (
        len(first) >= 7
        and first[0].isdigit()
        and first[6].isdigit()
        and int(first[6]) > int(first[0])
    ):
        return "kline"
    raise ImportFailed(
        "cannot tell the format: the first row has no header and is not a kline export "
        "(open time, o, h, l, c, v, close time, …); add a header row "
        "(timestamp,open,high,low,close,volume) or pass --format kline",
        row=1,
    )


def _columns(header: list[str], tick: bool) -> dict[str, int]:
    """Map our column names to positions in a generic header."""
    norm = [h.strip().lower().replace(" ", "_") for h in header]
    found: dict[str, int] = {}
    for key, names in _NAMES.items():
        for i, h in enumerate(norm):
            if h in names and i not in found.values():
                found[key] = i
                break
    if "ts" not in found and norm and norm[0] not in sum(_NAMES.values(), ()):
        found["ts"] = 0
    if tick and "price" not in found and "close" in found:
        found["price"] = found["close"]
    need = ["ts", "price"] if tick else ["ts", "open", "high", "low", "close"]
    missing = [k for k in need if k not in found]
    if missing:
        raise ImportFailed(
            f"the header has no {', '.join(missing)} column (found: {', '.join(header)})", row=1
        )
    return found


def _floats(values: list[str], rows: list[int], name: str) -> np.ndarray:
    """Parse a column of numbers, naming the first row that is not one."""
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        for v, r in zip(values, rows, strict=True):
            try:
                float(v)
            except ValueError:
                raise ImportFailed(f"{name} {v!r} is not a number", row=r) from None
        raise


def _epoch(values: list[str], rows: list[int]) -> np.ndarray | None:
    """Epoch numbers in s, ms, µs or ns (told apart by size) as ns; None if not numbers."""
    try:
        nums = np.array(values, dtype=np.int64)
        exact = True
    except (ValueError, OverflowError):
        try:
            nums = np.array(values, dtype=np.float64)
            exact = False
        except ValueError:
            return None
    mags = np.abs(nums)
    band = np.searchsorted([b for b, _ in _UNITS], mags, side="right")
    odd = np.flatnonzero(band != band[0])
    if odd.size:
        i = int(odd[0])
        raise ImportFailed(
            f"timestamp {values[i]} is in a different epoch unit from row {rows[0]}", row=rows[i]
        )
    scale = _UNITS[int(band[0])][1]
    if exact:
        return nums * scale
    return np.round(nums * scale).astype(np.int64)


def _timestamps(values: list[str], rows: list[int]) -> np.ndarray:
    """Parse a timestamp column (epoch numbers or ISO 8601) to int64 ns UTC."""
    ns = _epoch(values, rows)
    if ns is not None:
        return ns
    stripped = [v.strip().removesuffix("Z").removesuffix("z") for v in values]
    if not any(_OFFSET.search(v) for v in stripped):
        try:
            return np.array(stripped, dtype="datetime64[ns]").astype(np.int64)
        except ValueError:
            pass
    out = np.empty(len(values), dtype=np.int64)
    for i, (v, r) in enumerate(zip(values, rows, strict=True)):
        try:
            out[i] = parse_iso(v.strip())
        except ValueError:
            raise ImportFailed(
                f"timestamp {v!r} is neither ISO 8601 nor an epoch number", row=r
            ) from None
    return out


def _gather(reader: Iterator[list[str]], cols: dict[str, int], line: Callable[[], int]):
    """Collect the wanted columns as strings, with each row's line number."""
    width = max(cols.values()) + 1
    data: dict[str, list[str]] = {k: [] for k in cols}
    rows: list[int] = []
    for fields in reader:
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) < width:
            raise ImportFailed(f"{len(fields)} fields, expected at least {width}", row=line())
        rows.append(line())
        for k, i in cols.items():
            data[k].append(fields[i])
    return data, rows


def _kline_step(data: dict[str, list[str]]) -> str | None:
    """The resolution a kline export's first open and close times show (close = next open - 1)."""
    if not data["ts"] or "close_ts" not in data:
        return None
    try:
        first, close = int(data["ts"][0]), int(data["close_ts"][0])
    except ValueError:
        return None
    unit = next(scale for below, scale in _UNITS if abs(first) < below)
    step = (close - first + 1) * unit
    return next((k for k, s in BASE_RESOLUTIONS.items() if s == step and s), None)


def _spacing(ts: np.ndarray) -> str | None:
    """The resolution matching the smallest gap between rows, if it is one (rows 28 days or
    more apart, each in its own calendar month, are monthly)."""
    d = np.diff(ts)
    d = d[d > 0]
    if d.size == 0:
        return None
    months = np.asarray(ts, dtype=np.int64).astype("datetime64[ns]").astype("datetime64[M]")
    if int(d.min()) >= 28 * DAY_NS and np.all(np.diff(months.astype(np.int64)) >= 1):
        return "1M"
    return next((k for k, s in BASE_RESOLUTIONS.items() if s == int(d.min())), None)


def _to_periods(parsed: Parsed, res: str) -> Bars:
    """Weekly and monthly rows name their period by any time in it (pandas labels a month by
    its last day): each is stamped with its period's start; two rows in one period fail."""
    bars = parsed.bars
    if res not in CALENDAR_RESOLUTIONS:
        return bars
    starts = floor_periods(bars.ts, BASE_RESOLUTIONS[res])
    same = np.flatnonzero(np.diff(starts) == 0)
    if same.size:
        i = int(same[0]) + 1
        period = "week" if res == "1w" else "month"
        raise ImportFailed(
            f"this row falls in the same {period} as the row before it (a {res} symbol has one"
            f" row per {period}, stamped with any time in it)", row=int(parsed.rows[i]),
        )  # fmt: skip
    return Bars(starts, bars.open, bars.high, bars.low, bars.close, bars.volume)


def read_csv(
    path: str | Path,
    *,
    fmt: str | None = None,
    resolution: str | None = None,
    progress: Progress | None = None,
) -> Parsed:
    """Read a CSV file into bars (not yet checked against the rules)."""
    if fmt is not None and fmt not in FORMATS:
        raise ImportFailed(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    path = Path(path)
    tick = resolution == "tick"
    with path.open("rb") as f:
        reader = csv.reader(_lines(f, path.stat().st_size, progress))  # type: ignore[arg-type]
        first = next((r for r in reader if r and any(x.strip() for x in r)), None)
        if first is None:
            raise ImportFailed(f"{path.name} has no rows")
        fmt = fmt or _detect(first)
        if fmt == "generic":
            cols = _columns(first, tick)
            data, rows = _gather(reader, cols, lambda: reader.line_num)
        else:
            cols = {"ts": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}
            if len(first) >= 7:
                cols["close_ts"] = 6
            data, rows = _gather(_chain([first], reader), cols, lambda: max(reader.line_num, 1))
    if not rows:
        raise ImportFailed(f"{path.name} has a header but no rows")
    bars = _to_bars(data, rows, "price" in cols and tick)
    step = _kline_step(data) if fmt == "kline" else None
    return Parsed(bars, np.asarray(rows, dtype=np.int64), fmt, step or _spacing(bars.ts))


def _chain(head: list[list[str]], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield from head
    yield from rest


def _to_bars(data: dict[str, list[str]], rows: list[int], tick: bool) -> Bars:
    """Convert gathered string columns to Bars."""
    ts = _timestamps(data["ts"], rows)
    n = len(rows)
    vol = _floats(data["volume"], rows, "volume") if "volume" in data else np.zeros(n)
    if tick:
        p = _floats(data["price"], rows, "price")
        return Bars(ts, p, p.copy(), p.copy(), p.copy(), vol)
    o, h, lo, c = (_floats(data[k], rows, k) for k in ("open", "high", "low", "close"))
    return Bars(ts, o, h, lo, c, vol)


def _target(store: BarStore, symbol: str) -> SymbolInfo | None:
    """The stored symbol with exactly this name (aliases are not import targets)."""
    return next((i for i in store.symbols() if i.name.upper() == symbol.strip().upper()), None)


def _resolution(given: str | None, parsed: Parsed, old: SymbolInfo | None) -> str:
    """The resolution to store at: given, else the stored symbol's, else the file's spacing."""
    if old is not None:
        if given is None and parsed.resolution not in (None, old.base_resolution):
            raise ImportFailed(
                f"the file's rows are {parsed.resolution} apart but {old.name} is stored at "
                f"{old.base_resolution}; pass --resolution or --replace"
            )
        if (given or old.base_resolution) != old.base_resolution:
            raise ImportFailed(
                f"{old.name} is stored at {old.base_resolution}, not {given}; "
                "use --replace to start over"
            )
        return old.base_resolution
    if given or parsed.resolution:
        return given or parsed.resolution  # type: ignore[return-value]
    raise ImportFailed(
        "cannot tell the resolution from the spacing of the rows; pass --resolution "
        f"({', '.join(BASE_RESOLUTIONS)})"
    )


def import_csv(
    store: BarStore,
    path: str | Path,
    symbol: str,
    *,
    resolution: str | None = None,
    fmt: str | None = None,
    aliases: tuple[str, ...] | list[str] = (),
    calendar: str | None = None,
    replace: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Check a CSV file and add its bars to a symbol (merging with stored bars unless replace).

    Nothing is written unless every row passes: bars are ordered and unique on the resolution's
    grid, high ≥ max(open, close), low ≤ min(open, close), no NaN, no negative price or volume,
    and a bar at a time already stored equals the stored bar.
    """
    if resolution is not None and resolution not in BASE_RESOLUTIONS:
        raise ImportFailed(
            f"unknown resolution {resolution!r}; known: {', '.join(BASE_RESOLUTIONS)}"
        )
    old = _target(store, symbol)
    merge = old is not None and not replace
    if merge and old is not None and old.synthetic:
        raise ImportFailed(f"{old.name} is synthetic demo data; use --replace or another symbol")
    res = resolution or (old.base_resolution if merge and old else None)
    parsed = read_csv(path, fmt=fmt, resolution=res, progress=progress)
    res = _resolution(resolution, parsed, old if merge else None)
    bars = _to_periods(parsed, res)
    try:
        check_bars(bars, BASE_RESOLUTIONS[res])
        if merge and old is not None:
            stored = store.load(old.name, res, old.first_ts, old.last_ts)
            bars = merge_bars(stored, bars)
    except BarError as exc:
        raise ImportFailed(exc.reason, row=int(parsed.rows[exc.index])) from None
    name = old.name if old else symbol.strip()
    info = store.write(
        name,
        bars,
        aliases=[*(old.aliases if old else []), *aliases],
        description=old.description if merge and old else f"imported from {Path(path).name}",
        resolution=res,
        calendar=calendar or (old.calendar if merge and old else guess_calendar(bars.ts)),
    )
    added = len(bars) - (old.bar_count if merge and old else 0)
    return ImportReport(name, res, parsed.format, len(parsed.rows), added, info)


def write_csv(bars: Bars, out: TextIO, *, tick: bool = False) -> int:
    """Write bars in the generic import format (tick: timestamp, price, volume); return rows."""
    ts = iso_strings(bars.ts)
    if tick:
        out.write("timestamp,price,volume\n")
        cols = [np.asarray(bars.close).tolist(), np.asarray(bars.volume).tolist()]
    else:
        out.write("timestamp,open,high,low,close,volume\n")
        cols = [
            np.asarray(getattr(bars, c)).tolist()
            for c in ("open", "high", "low", "close", "volume")
        ]
    for i in range(0, len(ts), 65_536):
        chunk = zip(ts[i : i + 65_536], *(c[i : i + 65_536] for c in cols), strict=True)
        out.write("".join(",".join([t, *map(repr, vals)]) + "\n" for t, *vals in chunk))
    return len(ts)
