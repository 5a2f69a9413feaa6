"""A listing serialised once: JSON rows built from an engine Table's columns, with their ends.

Each column becomes a matrix of JSON tokens (numbers by orjson's numpy serialisation, times by
numpy's ISO formatting, labels looked up from their few names), the rows are the columns' tokens
and the keys laid side by side, and the zero bytes padding each token are dropped: no Python
object is made per row. `Rows.data` holds every row followed by a comma; `Rows.ends` the offset
just past each row's comma, so any run of rows is one slice of bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from engine import Table

CHUNK = 1024  # rows laid out at a time: bounds the token matrices' memory
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class Rows:
    """A listing's rows as JSON: each row then a comma in `data`, `ends[i]` just past row i's."""

    data: bytes
    ends: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.ends.shape[0])

    def span(self, start: int, stop: int) -> bytes:
        """Rows start..stop as their JSON objects, each followed by a comma."""
        stop = min(stop, len(self))
        if start >= stop:
            return b""
        lo = int(self.ends[start - 1]) if start > 0 else 0
        return self.data[lo : int(self.ends[stop - 1])]

    def array(self, start: int = 0, stop: int | None = None) -> bytes:
        """Rows start..stop (all by default) as a JSON array."""
        return as_array(self.span(start, len(self) if stop is None else stop))

    def pages(self, size: int) -> Iterator[tuple[int, int, bytes, bytes]]:
        """(page number, row count, rows' bytes, their ends within the page as big-endian int32)."""
        for number, start in enumerate(range(0, len(self), size)):
            stop = min(start + size, len(self))
            lo = int(self.ends[start - 1]) if start > 0 else 0
            ends = (self.ends[start:stop] - lo).astype(">i4").tobytes()
            yield number, stop - start, self.data[lo : int(self.ends[stop - 1])], ends

    def to_wire(self) -> dict[str, Any]:
        """A JSON-safe form (for a shard's stored body): the rows' text and their ends."""
        return {"rows_json": self.data.decode(), "ends": self.ends.tolist()}

    @classmethod
    def from_wire(cls, value: dict[str, Any]) -> Rows:
        """The inverse of to_wire."""
        return cls(value["rows_json"].encode(), np.asarray(value["ends"], dtype=np.int64))


def as_array(span: bytes) -> bytes:
    """Comma-terminated rows as a JSON array."""
    return b"[" + span[:-1] + b"]" if span else b"[]"


def is_wire_rows(value: Any) -> bool:
    """Whether value is Rows.to_wire's form."""
    return isinstance(value, dict) and set(value) == {"rows_json", "ends"}


def of_dicts(rows: list[dict[str, Any]]) -> Rows:
    """Rows from row dicts (results bodies made before listings were columns)."""
    parts = [orjson.dumps(r) + b"," for r in rows]
    ends = np.cumsum([len(p) for p in parts], dtype=np.int64)
    return Rows(b"".join(parts), ends)


def encode(table: Table) -> Rows:
    """The table's rows as JSON objects, keys in column order (times ISO 8601 UTC, ms)."""
    n = len(table)
    if n == 0:
        return Rows(b"", np.zeros(0, dtype=np.int64))
    datas, ends, offset = [], [], 0
    for start in range(0, n, CHUNK):
        data, chunk_ends = _encode_chunk(table, start, min(start + CHUNK, n))
        datas.append(data)
        ends.append(chunk_ends + offset)
        offset += len(data)
    return Rows(b"".join(datas), np.concatenate(ends))


def _encode_chunk(table: Table, start: int, stop: int) -> tuple[bytes, np.ndarray]:
    """Rows start..stop laid out as one byte matrix, then its padding dropped."""
    count = stop - start
    blocks: list[np.ndarray] = []
    for i, name in enumerate(table.columns):
        key = ("{" if i == 0 else ",") + orjson.dumps(name).decode() + ":"
        blocks.append(_constant(key.encode(), count))
        blocks.append(_tokens(table, name, start, stop))
    blocks.append(_constant(b"},", count))
    matrix = np.concatenate(blocks, axis=1)
    keep = matrix != 0
    return matrix[keep].tobytes(), np.cumsum(keep.sum(axis=1), dtype=np.int64)


def _constant(text: bytes, count: int) -> np.ndarray:
    """The same bytes on every row, as a read-only (rows, len) view."""
    return np.broadcast_to(np.frombuffer(text, dtype=np.uint8), (count, len(text)))


def _tokens(table: Table, name: str, start: int, stop: int) -> np.ndarray:
    """One column's JSON tokens as a (rows, width) uint8 matrix padded with zeros."""
    values = table.columns[name][start:stop]
    if name in table.labels:
        names = [orjson.dumps(label) for label in table.labels[name]]
        return _matrix(np.array(names, dtype=bytes)[values])
    if name in table.times:
        return _iso(values)
    if values.dtype == np.bool_:
        return _matrix(np.array([b"false", b"true"])[values.astype(np.int64)])
    if values.dtype.kind == "f":
        missing = np.isnan(values)
        if missing.any():  # orjson writes NaN as null, but slowly: nulls are laid in after
            tokens = _split(orjson.dumps(np.where(missing, 0.0, values), option=_NUMPY))
            if tokens.shape[1] < 4:
                tokens = np.pad(tokens, ((0, 0), (0, 4 - tokens.shape[1])))
            null = np.zeros(tokens.shape[1], dtype=np.uint8)
            null[:4] = np.frombuffer(b"null", dtype=np.uint8)
            return np.where(missing[:, None], null, tokens)
    return _split(orjson.dumps(np.ascontiguousarray(values), option=_NUMPY))


_ISO = np.frombuffer(b'"0000-00-00T00:00:00.000Z"', dtype=np.uint8)
_PAIRS = np.frombuffer("".join(f"{k:02d}" for k in range(100)).encode(), np.uint8).reshape(100, 2)
_DAY_NS = 86_400 * 10**9


def _iso(ns: np.ndarray) -> np.ndarray:
    """Nanosecond times as quoted ISO 8601 UTC tokens to the millisecond (years 0-9999)."""
    day = ns // _DAY_NS
    of_day = (ns - day * _DAY_NS) // 1_000_000  # milliseconds
    days, which = np.unique(day, return_inverse=True)  # dates are formatted once each
    dates = np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype("S10")
    out = np.tile(_ISO, (ns.shape[0], 1))
    out[:, 1:11] = dates.view(np.uint8).reshape(-1, 10)[which]
    out[:, 12:14] = _PAIRS[of_day // 3_600_000]
    out[:, 15:17] = _PAIRS[of_day // 60_000 % 60]
    out[:, 18:20] = _PAIRS[of_day // 1000 % 60]
    out[:, 21] = 48 + of_day // 100 % 10
    out[:, 22:24] = _PAIRS[of_day % 100]
    return out


def _matrix(tokens: np.ndarray) -> np.ndarray:
    """A fixed-width bytes array as a (rows, width) uint8 matrix (its zero padding kept)."""
    width = max(tokens.dtype.itemsize, 1)
    return tokens.astype(f"S{width}").view(np.uint8).reshape(tokens.shape[0], width)


def _split(array_json: bytes) -> np.ndarray:
    """A JSON array of numbers (no commas inside its items) as a token matrix."""
    buf = np.frombuffer(array_json, dtype=np.uint8)[1:-1]
    commas = np.flatnonzero(buf == ord(",")).astype(np.int32)
    starts = np.concatenate((np.zeros(1, dtype=np.int32), commas + 1))
    stops = np.concatenate((commas, np.array([buf.size], dtype=np.int32)))
    width = int((stops - starts).max())
    padded = np.concatenate((buf, np.zeros(width, dtype=np.uint8)))
    index = starts[:, None] + np.arange(width, dtype=np.int32)
    out = padded[index]
    out[index >= stops[:, None]] = 0
    return out
