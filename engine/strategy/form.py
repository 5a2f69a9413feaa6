"""The internal strategy form that every API surface compiles into.

A strategy is a set of named boolean conditions over bars, grouped into rules:

- entry rules per side (``long_entry``, ``short_entry``): enter when *every* condition holds on
  a bar's close (``TRIGGER`` conditions are events such as crosses, ``FILTER`` conditions are
  states such as "close above SMA");
- exit rules per side (``long_exit``, ``short_exit``): exit when *any* condition holds;
- protective exits (``Exits``): stop loss, take profit, trailing stop, max hold bars;
- a score rule (``ScoreRule``, optional): named conditions with scores; its side enters when the
  scores of the conditions true on a bar's close add up to at least the threshold (and-ed with
  that side's entry rule, if it has one). Score strategies (engine.strategy.score) use it.

A condition is either a catalog signal (``kind="signal"``: name + integer params) or a parsed
condition expression (``kind="expr"``: the source text; the compiler has checked it parses).
Every condition carries its own timeframe (None: the run's bars) and the JSON path it came from,
so later faults (say, a timeframe finer than the run's) still name their origin.

The form is frozen and picklable: it travels to worker processes as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["TRIGGER", "FILTER", "EXIT"]
Side = Literal["long", "short"]
StopKind = Literal["atr", "percent", "r"]


@dataclass(frozen=True)
class Condition:
    """One boolean series: a catalog signal or a condition expression."""

    kind: Literal["signal", "expr"]
    name: str  # signal name, or the expression's source text
    params: tuple[tuple[str, int | float], ...] = ()
    timeframe: str | None = None
    role: Role = "TRIGGER"
    path: str = ""

    @property
    def param_dict(self) -> dict[str, int | float]:
        """Return the params as a dict."""
        return dict(self.params)


@dataclass(frozen=True)
class Level:
    """A distance from the entry price: `value` ATRs, percent (0.02 = 2%) or R multiples."""

    kind: StopKind
    value: float


@dataclass(frozen=True)
class Exits:
    """Protective exits, checked on every bar a position is open."""

    # Kinds: stop_loss "atr" or "percent"; take_profit also "r" (multiples of the stop
    # distance); trailing_stop "atr" or "percent", trailing the best price since entry.
    stop_loss: Level | None = None
    take_profit: Level | None = None
    trailing_stop: Level | None = None
    max_hold_bars: int | None = None


@dataclass(frozen=True)
class ScoreItem:
    """One scored condition: its name, the condition, and the score it adds while true."""

    name: str
    condition: Condition
    score: float


@dataclass(frozen=True)
class ScoreRule:
    """Enter `side` when the scores of the true conditions sum to at least `threshold`."""

    items: tuple[ScoreItem, ...]
    threshold: float
    side: Side = "long"
    variables: tuple[tuple[str, str], ...] = ()  # name -> expression text, as written

    @property
    def names(self) -> tuple[str, ...]:
        """The condition names in order."""
        return tuple(item.name for item in self.items)

    @property
    def scores(self) -> tuple[float, ...]:
        """The condition scores in order."""
        return tuple(item.score for item in self.items)


@dataclass(frozen=True)
class Strategy:
    """A compiled strategy: entry and exit rules for each side, and protective exits."""

    name: str
    asset: str | None = None
    long_entry: tuple[Condition, ...] = ()
    long_exit: tuple[Condition, ...] = ()
    short_entry: tuple[Condition, ...] = ()
    short_exit: tuple[Condition, ...] = ()
    exits: Exits = field(default_factory=Exits)
    score: ScoreRule | None = None

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Every condition of every rule, the score rule's last."""
        scored = tuple(item.condition for item in self.score.items) if self.score else ()
        return self.long_entry + self.long_exit + self.short_entry + self.short_exit + scored

    @property
    def sides(self) -> tuple[Side, ...]:
        """The sides this strategy can trade."""
        out: list[Side] = []
        scored = self.score.side if self.score else None
        if self.long_entry or scored == "long":
            out.append("long")
        if self.short_entry or scored == "short":
            out.append("short")
        return tuple(out)
