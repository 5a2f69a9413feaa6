"""Score-strategy diagnostics and R-unit summaries, as pure functions (snake_case, the v2 names;
protocol.seed003 shows them under seed 003's camelCase names).

All shares are canonical fractions (0.25 means 25%), as every metric (DESIGN §7); undefined
values are None. ``score_diagnostics`` needs the strategy, the run's bars and its round trips:

- ``conditions_distribution_pct``: per condition name, the share of candles in the trading period
  (``ts >= trade_start_ns``, every symbol's candles pooled) on whose close it holds.
- ``score_distribution_pct``: per total score that occurs, the share of those candles with it; the
  keys are the totals as text (``"3"``, ``"2.5"``), in ascending order.
- ``trades_detail``: one record per round trip, numbered from 1 in order of entry time:
  ``number``, ``symbol``, ``entry_price``, ``exit_price``, ``pnl_r`` (r_multiple), ``pnl_pct``
  (the round trip's return, a fraction), ``total_score_at_entry``, ``conditions_at_entry`` (name
  -> whether it held) and ``score_breakdown_at_entry`` (name -> score it added, 0 when false), read at the
  signal bar: the bar before the entry fill with ``fill="next_open"``, the fill bar itself with
  ``fill="close"``.

``r_summary`` gives ``pnl_r``, ``gross_profit_r``, ``gross_loss_r``, ``profit_factor``,
``expectancy_r``, ``avg_win_r``, ``avg_loss_r`` (engine.stats.r_stats; trips without an R are
left out), and ``trades``, ``wins``, ``losses`` (pnl > 0 / pnl < 0), ``win_rate`` and
``both_hit``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from engine.data.store import Bars
from engine.output import Table
from engine.stats import finite, r_stats
from engine.strategy.evaluate import score_table
from engine.strategy.form import Strategy

__all__ = ["r_summary", "score_diagnostics", "score_key"]


def score_key(total: float) -> str:
    """Name a total score: "3" for whole numbers, else the shortest exact decimal."""
    x = round(float(total), 9) + 0.0  # float sums such as 0.1 + 0.2; + 0.0 turns -0 into 0
    return str(int(x)) if x.is_integer() else repr(x)


def score_diagnostics(
    strategy: Strategy,
    bars: Bars | dict[str, Bars],
    round_trips: Table | list[dict],
    trade_start_ns: int,
    *,
    fill: str = "next_open",
    interval: str | None = None,
) -> dict[str, Any]:
    """Return the condition and score distributions and the per-trade score records."""
    rule = strategy.score
    if rule is None:
        raise ValueError("score diagnostics need a score strategy")
    if fill not in ("next_open", "close"):
        raise ValueError("fill must be next_open or close")
    by_symbol = bars if isinstance(bars, dict) else {None: bars}
    tables = {sym: score_table(rule, b, interval) for sym, b in by_symbol.items()}
    true_count = np.zeros(len(rule.items), dtype=np.int64)
    totals: Counter[str] = Counter()
    candles = 0
    for sym, (truth, total) in tables.items():
        start = int(np.searchsorted(by_symbol[sym].ts, trade_start_ns, side="left"))
        true_count += truth[:, start:].sum(axis=1)
        totals.update(score_key(x) for x in total[start:].tolist())
        candles += truth.shape[1] - start
    trips = sorted(round_trips, key=lambda t: (t["entry_time"], t["exit_time"]))
    lag = 1 if fill == "next_open" else 0
    return {
        "conditions_distribution_pct": {
            name: _share(int(k), candles) for name, k in zip(rule.names, true_count, strict=True)
        },
        "score_distribution_pct": {
            key: _share(totals[key], candles) for key in sorted(totals, key=float)
        },
        "trades_detail": [
            _trade(i + 1, t, rule.names, rule.scores, by_symbol, tables, lag)
            for i, t in enumerate(trips)
        ],
    }


def _share(count: int, candles: int) -> float | None:
    """Return count / candles, or None without candles."""
    return count / candles if candles else None


def _trade(
    number: int,
    trip: dict,
    names: tuple[str, ...],
    scores: tuple[float, ...],
    by_symbol: dict,
    tables: dict,
    lag: int,
) -> dict[str, Any]:
    """One round trip's record with the conditions read at its signal bar."""
    sym = trip.get("symbol") if trip.get("symbol") in by_symbol else next(iter(by_symbol))
    ts = np.asarray(by_symbol[sym].ts)
    fill_bar = int(np.searchsorted(ts, trip["entry_time"], side="left"))
    if fill_bar >= ts.size or ts[fill_bar] != trip["entry_time"]:
        raise ValueError(f"round trip {number}: entry_time is not a bar of {sym}")
    signal = fill_bar - lag
    truth = tables[sym][0][:, signal] if signal >= 0 else np.zeros(len(names), dtype=bool)
    held = dict(zip(names, truth.tolist(), strict=True))
    added = {n: (s if held[n] else 0.0) for n, s in zip(names, scores, strict=True)}
    r = trip.get("r_multiple")
    return {
        "number": number,
        "symbol": trip.get("symbol"),
        "entry_price": float(trip["entry_price"]),
        "exit_price": float(trip["exit_price"]),
        "pnl_r": finite(r),
        "pnl_pct": finite(trip.get("return")),
        "total_score_at_entry": float(score_key(sum(added.values()))),
        "conditions_at_entry": held,
        "score_breakdown_at_entry": added,
    }


def _column(round_trips: Table | list[dict], name: str) -> np.ndarray:
    """One column of the round trips as floats (None as NaN), from a Table or rows."""
    if isinstance(round_trips, Table):
        return round_trips.column(name).astype(np.float64)
    values = [t.get(name) for t in round_trips]
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def r_summary(round_trips: Table | list[dict]) -> dict[str, float | int | None]:
    """Return seed 003's R-unit results from closed round trips (None where undefined)."""
    r = _column(round_trips, "r_multiple")
    pnl = _column(round_trips, "pnl")
    out: dict[str, float | int | None] = dict(r_stats(r))
    gross_loss = out["gross_loss_r"]
    out["profit_factor"] = (
        finite(out["gross_profit_r"] / -gross_loss)  # type: ignore[operator]
        if gross_loss is not None and gross_loss < 0
        else None
    )
    trades = len(round_trips)
    wins = int((pnl > 0).sum())
    out.update(
        trades=trades,
        wins=wins,
        losses=int((pnl < 0).sum()),
        win_rate=wins / trades if trades else None,
        both_hit=int((_column(round_trips, "both_hit") > 0).sum()),
    )
    return out
