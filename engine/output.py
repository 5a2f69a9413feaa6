"""What a run reports: progress between chunks, cancellation, and the finished output."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Progress:
    """Progress reported between chunks; metrics hold equity, drawdown and trade_count."""

    bars_done: int
    bars_total: int
    metrics: dict[str, float]


class LogLine(str):
    """A line of a run's log, with the level it is logged at (info, or warning)."""

    level: str

    def __new__(cls, text: str, level: str = "info") -> LogLine:
        line = super().__new__(cls, text)
        line.level = level
        return line


class Cancelled(Exception):
    """Raised when on_progress asks the run to stop."""


class Table:
    """A listing of a run (fills, round trips, curve points) as named, equal-length numpy columns.

    Columns named in `labels` hold integer codes into those names (a small categorical, such as
    the symbol or the side); columns named in `times` hold int64 nanoseconds. Rows as dicts (a
    float NaN reads as None) are for tests and small consumers, never the hot path.
    """

    __slots__ = ("columns", "labels", "times")

    def __init__(
        self,
        columns: dict[str, np.ndarray],
        labels: dict[str, tuple[str, ...]] | None = None,
        times: tuple[str, ...] = (),
    ) -> None:
        self.columns = {k: np.ascontiguousarray(v) for k, v in columns.items()}
        self.labels = dict(labels or {})
        self.times = tuple(times)
        if len({v.shape[0] for v in self.columns.values()}) > 1:
            raise ValueError("every column of a table has the same length")

    def __len__(self) -> int:
        return next(iter(self.columns.values())).shape[0] if self.columns else 0

    def names(self) -> tuple[str, ...]:
        """The column names, in row order."""
        return tuple(self.columns)

    def column(self, name: str) -> np.ndarray:
        """One column's values: label columns as an array of their names."""
        values = self.columns[name]
        if name in self.labels:
            return np.asarray(self.labels[name], dtype=object)[values]
        return values

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Rows start..stop as dicts (for tests and small consumers)."""
        lists = [self._values(name, start, stop) for name in self.columns]
        names = tuple(self.columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]

    def _values(self, name: str, start: int, stop: int | None) -> list[Any]:
        values = self.columns[name][start:stop]
        if name in self.labels:
            return [self.labels[name][k] for k in values.tolist()]
        out = values.tolist()
        if values.dtype.kind == "f" and np.isnan(values).any():
            out = [None if x != x else x for x in out]
        return out

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            return self.column(key)
        if isinstance(key, slice):
            return self.rows()[key]
        n = len(self)
        i = key + n if key < 0 else key
        if not 0 <= i < n:
            raise IndexError("table row out of range")
        return self.rows(i, i + 1)[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table | list):
            return self.rows() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self.columns)})"

    @classmethod
    def of_rows(
        cls,
        rows: list[dict[str, Any]],
        names: tuple[str, ...],
        labels: dict[str, tuple[str, ...]] | None = None,
        times: tuple[str, ...] = (),
    ) -> Table:
        """A table from a few row dicts (label columns coded by their names' positions)."""
        labels = labels or {}
        cols = {}
        for name in names:
            values = [r[name] for r in rows]
            if name in labels:
                values = [labels[name].index(v) for v in values]
            elif name not in times:
                values = [np.nan if v is None else v for v in values]
            whole = name in times or name in labels
            cols[name] = np.asarray(values, dtype=np.int64 if whole else None)
        return cls(cols, labels, times)


@dataclass
class BacktestOutput:
    """Everything a finished run reports."""

    metrics: dict[str, float | None]
    equity: Table
    trades: Table  # the fills
    round_trips: Table
    exposure: Table
    logs: list[LogLine]
    bars: int
    open_positions: Table = field(default_factory=lambda: Table({}))
    period: dict[str, int] = field(default_factory=dict)  # first and last bar times (ns)
    returns_by_month: list[dict] = field(default_factory=list)
    returns_by_year: list[dict] = field(default_factory=list)
