"""What a run reports: progress between chunks, cancellation, and the finished output."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass
class BacktestOutput:
    """Everything a finished run reports."""

    metrics: dict[str, float | None]
    equity: list[dict]
    trades: list[dict]
    round_trips: list[dict]
    exposure: list[dict]
    logs: list[LogLine]
    bars: int
    open_positions: list[dict] = field(default_factory=list)
    period: dict[str, int] = field(default_factory=dict)  # first and last bar times (ns)
    returns_by_month: list[dict] = field(default_factory=list)
    returns_by_year: list[dict] = field(default_factory=list)
