"""Deterministic synthetic demo data so a fresh server can run a backtest with no import.

Every demo symbol is one fixed series of 1-minute bars from ``ANCHOR`` (2024-01-01 00:00 UTC),
defined day by day so that it can be extended without changing a bar already written:

- day ``d`` (UTC) draws its 4 x 1440 standard normals (shocks, upper wicks, lower wicks, volume
  noise) from its own generator, seeded by (seed, symbol key, 0, d);
- its drift is the level of the regime holding that day, from a regime table (lengths in whole
  days, annualised levels) built in blocks of ``REGIME_BLOCK`` regimes, block ``b`` seeded by
  (seed, symbol key, 1, b);
- its closes are ``prev_close * exp(cumsum(log returns of the day))``, where ``prev_close`` is
  the last close of the day before (the start price on day 0), and each open is the close before.

A series up to any minute is the prefix of every longer one, bit for bit, however it was built:
in one piece, day by day, or topped up from a stored prefix (``ensure_demo_data``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from engine.data import catalog
from engine.data.bars import DAY_NS
from engine.data.store import MINUTE_NS, BarError, Bars, BarStore, SymbolInfo, merge_bars

MINUTES_PER_YEAR = 365 * 24 * 60
MINUTES_PER_DAY = 1440
ANCHOR = "2024-01-01"
ANCHOR_NS = int(np.datetime64(ANCHOR, "ns").astype(np.int64))
DEFAULT_SEED = 7
GENERATOR = 2  # bump when the definition changes: stored series of another generator are rebuilt
REGIME_BLOCK = 256
REGIME_MEAN_DAYS = 20.0


@dataclass(frozen=True)
class DemoSymbol:
    """Parameters of one synthetic symbol."""

    name: str
    aliases: tuple[str, ...]
    start_price: float
    volatility: float  # annualised
    trend: float  # annualised standard deviation of regime drifts
    volume: float  # median volume per minute

    @property
    def key(self) -> int:
        """A stable per-symbol seed component, from the name (so order in the table is free)."""
        return int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "little")


# The first three keep their index (tests use DEMO_SYMBOLS[0..2] as generic parameter sets).
DEMO_SYMBOLS: tuple[DemoSymbol, ...] = (
    DemoSymbol("AAPL", (), 185.0, 0.25, 0.35, 4_000.0),
    DemoSymbol("BTC-USD", ("BTC", "BTCUSD"), 42_000.0, 0.65, 0.9, 12.0),
    DemoSymbol("ETH-USD", ("ETH", "ETHUSD"), 2_300.0, 0.75, 1.0, 150.0),
    DemoSymbol("MSFT", (), 375.0, 0.24, 0.3, 2_500.0),
    DemoSymbol("GOOGL", (), 140.0, 0.28, 0.35, 3_500.0),
    DemoSymbol("BTC-USDC", (), 42_050.0, 0.65, 0.9, 4.0),
    DemoSymbol("BTC-USDT", (), 41_980.0, 0.65, 0.9, 30.0),
    DemoSymbol("ETH-USDC", (), 2_305.0, 0.75, 1.0, 60.0),
    DemoSymbol("ETH-USDT", (), 2_298.0, 0.75, 1.0, 300.0),
    DemoSymbol("SOL-USDC", (), 100.0, 0.9, 1.2, 900.0),
)

MARKER = f"demo generator {GENERATOR}"


def description(spec: DemoSymbol, seed: int = DEFAULT_SEED) -> str:
    """The stored description; it names the generator and seed the series was made with."""
    return (
        f"{spec.name} synthetic demo data (1-minute geometric Brownian motion with regimes "
        f"from {ANCHOR}; {MARKER}, seed {seed})"
    )


def floor_minute(ns: int) -> int:
    return ns - ns % MINUTE_NS


def demo_end_ns(end: str | None = None, now_ns: int | None = None) -> int:
    """The end of the demo data in ns: ``end`` (ISO 8601 date or time, naive = UTC) or now,
    floored to the minute and never later than now. The last bar opens one minute before it."""
    now = floor_minute(now_ns if now_ns is not None else time.time_ns())
    if not end:
        return now
    try:
        when = datetime.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(f"demo end {end!r} is not an ISO 8601 date or time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ns = floor_minute((when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000)
    if ns <= ANCHOR_NS:
        raise ValueError(f"demo end {end!r} is not after {ANCHOR}")
    return min(ns, now)


def _rng(seed: int, spec: DemoSymbol, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, spec.key, stream, index])


def regime_levels(spec: DemoSymbol, seed: int, days: int) -> np.ndarray:
    """The annualised drift of each day 0..days-1, from the symbol's regime table."""
    lengths, levels, covered, block = [], [], 0, 0
    while covered < days:
        rng = _rng(seed, spec, 1, block)
        n = np.maximum(np.rint(rng.exponential(REGIME_MEAN_DAYS, REGIME_BLOCK)), 1).astype(np.int64)
        lengths.append(n)
        levels.append(rng.normal(0.0, spec.trend, REGIME_BLOCK))
        covered += int(n.sum())
        block += 1
    if not lengths:
        return np.empty(0)
    return np.repeat(np.concatenate(levels), np.concatenate(lengths))[:days]


def whole_days(spec: DemoSymbol, first_day: int, days: int, prev_close: float, seed: int) -> Bars:
    """Whole days first_day .. first_day+days-1 of a symbol's series, given the close before."""
    z = np.empty((days, 4, MINUTES_PER_DAY))
    for i in range(days):
        _rng(seed, spec, 0, first_day + i).standard_normal(out=z[i])
    shocks, wick_up, wick_down, noise = z[:, 0], z[:, 1], z[:, 2], z[:, 3]
    sigma = spec.volatility / np.sqrt(MINUTES_PER_YEAR)
    drift = regime_levels(spec, seed, first_day + days)[first_day:] / MINUTES_PER_YEAR
    log_ret = (drift - 0.5 * sigma**2)[:, None] + sigma * shocks
    growth = np.exp(np.cumsum(log_ret, axis=1))
    # prev[d] = prev[d-1] * growth[d-1, -1]: the same product as the last close of day d-1.
    prev = np.multiply.accumulate(np.concatenate(([prev_close], growth[:-1, -1])))
    close = prev[:, None] * growth
    open_ = np.concatenate((prev[:, None], close[:, :-1]), axis=1)
    high = np.maximum(open_, close) * (1.0 + np.abs(wick_up) * (0.5 * sigma))
    low = np.minimum(open_, close) * (1.0 - np.abs(wick_down) * (0.5 * sigma))
    volume = spec.volume * np.exp(0.5 * noise) * (1.0 + np.abs(shocks))
    ts = (
        ANCHOR_NS
        + first_day * DAY_NS
        + np.arange(days * MINUTES_PER_DAY, dtype=np.int64) * MINUTE_NS
    )
    return Bars(
        ts=ts,
        open=open_.ravel(),
        high=high.ravel(),
        low=low.ravel(),
        close=close.ravel(),
        volume=volume.ravel(),
    )


def demo_series(
    spec: DemoSymbol,
    end_ns: int,
    seed: int = DEFAULT_SEED,
    *,
    first_day: int = 0,
    prev_close: float | None = None,
) -> Bars:
    """A symbol's bars opening in [start of first_day, end_ns); prev_close is the close before
    first_day (required unless first_day is 0)."""
    if prev_close is None:
        if first_day:
            raise ValueError("prev_close is needed to continue a series")
        prev_close = spec.start_price
    n = (end_ns - ANCHOR_NS) // MINUTE_NS - first_day * MINUTES_PER_DAY
    if n <= 0:
        raise ValueError("the end is not after the first day's start")
    days = -(-n // MINUTES_PER_DAY)
    full = whole_days(spec, first_day, days, prev_close, seed)
    return Bars(*(getattr(full, c)[:n] for c in ("ts", "open", "high", "low", "close", "volume")))


@dataclass
class DemoUpdate:
    """What update_demo_data did, by symbol name."""

    end_ns: int
    generated: list[str] = field(default_factory=list)  # new, or rebuilt (another generator)
    topped_up: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # the name belongs to a user's symbol

    @property
    def written(self) -> list[str]:
        return [s.name for s in DEMO_SYMBOLS if s.name in self.generated + self.topped_up]

    def summary(self) -> str:
        end = np.datetime_as_string(np.datetime64(self.end_ns, "ns"), unit="m")
        parts = []
        if self.generated:
            parts.append("generated " + ", ".join(self.generated))
        if self.topped_up:
            parts.append("topped up " + ", ".join(self.topped_up))
        if self.skipped:
            parts.append("left alone (not demo data) " + ", ".join(self.skipped))
        return f"synthetic demo data to {end}Z: " + "; ".join(parts) if parts else ""


def update_demo_data(
    store: BarStore,
    end_ns: int | None = None,
    *,
    seed: int = DEFAULT_SEED,
    now_ns: int | None = None,
) -> DemoUpdate:
    """Generate every missing demo symbol, and top up every stored one, to end_ns (default and
    at most now, floored to the minute): the last bar opens one minute before it.

    A stored symbol of a demo name is ours only if it is synthetic demo data; anything else
    (a user's import) is left alone. A demo series made by another generator or seed is rebuilt.
    """
    now = demo_end_ns(None, now_ns)
    end_ns = now if end_ns is None else min(floor_minute(end_ns), now)
    report = DemoUpdate(end_ns)
    for spec in DEMO_SYMBOLS:
        infos = store.symbols()
        old = next((i for i in infos if i.name.upper() == spec.name.upper()), None)
        if old is None:
            if catalog.conflicts(spec.name, (), infos):
                report.skipped.append(spec.name)
                continue
            aliases = [a for a in spec.aliases if not catalog.conflicts(spec.name, [a], infos)]
            bars = demo_series(spec, end_ns, seed)
            store.write(
                spec.name,
                bars,
                aliases=aliases,
                synthetic=True,
                description=description(spec, seed),
            )
            report.generated.append(spec.name)
            continue
        if not (old.synthetic and "synthetic demo data" in old.description):
            report.skipped.append(spec.name)
            continue
        if old.last_ts + MINUTE_NS >= end_ns and old.description == description(spec, seed):
            continue  # up to date (never cut back)
        bars = _extended(store, spec, old, end_ns, seed)
        if bars is None:
            bars = demo_series(spec, max(end_ns, old.last_ts + MINUTE_NS), seed)
            report.generated.append(spec.name)
        else:
            report.topped_up.append(spec.name)
        store.write(
            spec.name,
            bars,
            aliases=[a for a in spec.aliases if not catalog.conflicts(spec.name, [a], infos)],
            synthetic=True,
            description=description(spec, seed),
        )
    return report


def _extended(
    store: BarStore, spec: DemoSymbol, old: SymbolInfo, end_ns: int, seed: int
) -> Bars | None:
    """The stored series topped up to end_ns, or None if it is not a prefix of this series."""
    if (
        old.description != description(spec, seed)
        or old.base_resolution != "1m"
        or old.first_ts != ANCHOR_NS
        or old.bar_count != (old.last_ts - ANCHOR_NS) // MINUTE_NS + 1
    ):
        return None
    stored = store.load(old.name, "1m", 0, 2**62)
    # Regenerate from the start of the last stored day: its stored bars must match exactly.
    first_day = (old.last_ts - ANCHOR_NS) // DAY_NS
    keep = first_day * MINUTES_PER_DAY
    prev = float(stored.close[keep - 1]) if keep else None
    tail = demo_series(spec, end_ns, seed, first_day=first_day, prev_close=prev)
    try:
        return merge_bars(stored, tail)
    except BarError:
        return None


def ensure_demo_data(
    store: BarStore,
    end: str | None = None,
    *,
    days: int | None = None,
    seed: int = DEFAULT_SEED,
) -> list[str]:
    """Generate or top up the demo symbols to ``end`` (ISO 8601; default now) or, for tests,
    ``days`` whole days after the anchor; return the names written, in table order."""
    end_ns = ANCHOR_NS + days * DAY_NS if days is not None else demo_end_ns(end)
    return update_demo_data(store, end_ns, seed=seed).written


def regime_drift(n: int, trend: float, rng: np.random.Generator) -> np.ndarray:
    """Per-minute drift that holds a random annualised level for regimes of days to weeks."""
    lengths = np.maximum(rng.exponential(20 * 1440, size=n // 1440 + 2).astype(np.int64), 1440)
    levels = rng.normal(0.0, trend, size=lengths.shape[0]) / MINUTES_PER_YEAR
    return np.repeat(levels, lengths)[:n]


def generate_bars(spec: DemoSymbol, start_ns: int, n: int, rng: np.random.Generator) -> Bars:
    """n one-minute bars of GBM with regime drift, wicks and positive volume from any generator
    (a test helper for arbitrary series; the stored demo series is ``demo_series``)."""
    sigma = spec.volatility / np.sqrt(MINUTES_PER_YEAR)
    shocks = rng.standard_normal(n)
    log_ret = regime_drift(n, spec.trend, rng) - 0.5 * sigma**2 + sigma * shocks
    close = spec.start_price * np.exp(np.cumsum(log_ret))
    open_ = np.concatenate(([spec.start_price], close[:-1]))
    wick_up = np.abs(rng.standard_normal(n)) * 0.5 * sigma
    wick_down = np.abs(rng.standard_normal(n)) * 0.5 * sigma
    high = np.maximum(open_, close) * (1.0 + wick_up)
    low = np.minimum(open_, close) * (1.0 - wick_down)
    volume = spec.volume * rng.lognormal(0.0, 0.5, n) * (1.0 + np.abs(shocks))
    ts = start_ns + np.arange(n, dtype=np.int64) * MINUTE_NS
    return Bars(ts=ts, open=open_, high=high, low=low, close=close, volume=volume)
