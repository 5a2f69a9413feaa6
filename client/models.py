"""What the SDK returns: the protocol's models, each keeping the document the server sent."""

from typing import TYPE_CHECKING, Any, Self

from pydantic import PrivateAttr

from protocol.results import Results, RunStatus

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "RunResults"]


class Run(RunStatus):
    """A run's status object (`submit`, `get`, `list`, `cancel`, `archive`, `unarchive`)."""

    _document: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_wire(cls, document: dict[str, Any]) -> Self:
        """Validate a status object and keep it as sent."""
        run = cls.model_validate(document)
        run._document = document
        return run

    def to_dict(self) -> dict[str, Any]:
        """The status object exactly as the server sent it."""
        return self._document

    @property
    def name(self) -> str | None:
        """The run's free label, if it has one."""
        return self.config.get("name")

    @property
    def symbols(self) -> list[str]:
        """The canonical symbol names the run trades."""
        return list(self.config.get("symbols") or [])


class RunResults(Results):
    """A completed run's results, with pandas helpers for equity, trades and round trips.

    >>> results.equity_to_pandas()["equity"].iloc[-1]   # the final equity
    """

    _document: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_wire(cls, document: dict[str, Any]) -> Self:
        """Validate a results document and keep it as sent."""
        results = cls.model_validate(document)
        results._document = document
        return results

    def to_dict(self) -> dict[str, Any]:
        """The results document exactly as the server sent it."""
        return self._document

    def equity_to_pandas(self) -> "pd.DataFrame":
        """The equity curve indexed by UTC timestamp: equity, cash, positions and exposure."""
        return _frame(self._document.get("equity", []), ["timestamp"], index="timestamp")

    def trades_to_pandas(self) -> "pd.DataFrame":
        """Every fill: symbol, timestamp, side, quantity, price, commission, liquidity."""
        return _frame(self._document.get("trades", []), ["timestamp"])

    def round_trips_to_pandas(self) -> "pd.DataFrame":
        """Every closed round trip, with entry and exit times as UTC timestamps."""
        return _frame(self._document.get("round_trips", []), ["entry_time", "exit_time"])


def _frame(rows: list[dict[str, Any]], times: list[str], index: str | None = None) -> Any:
    """A DataFrame of `rows` with the `times` columns parsed as UTC datetimes."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is an optional extra
        raise ImportError("to_pandas needs pandas: pip install 'barstream[pandas]'") from exc
    frame = pd.DataFrame.from_records(rows)
    for col in times:
        if col in frame.columns:
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    if index is not None and index in frame.columns:
        frame = frame.set_index(index)
    return frame
