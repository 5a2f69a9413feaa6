"""Optional fetcher of public OHLCV history through ccxt (the ``fetch`` extra), resumable.

Pages through ``exchange.fetch_ohlcv`` from the last stored bar (or ``since``), sleeping the
exchange's ``rateLimit`` between requests and backing off on rate-limit and network errors.
Bars are merged into the store every ``flush_bars`` bars, so an interrupted fetch resumes from
the last bar written. Not run against a real exchange here: the tests drive it with a fake
exchange answering in Binance's documented kline format.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data.bars import BASE_RESOLUTIONS, Bars, concat, empty_bars, guess_calendar
from engine.data.store import BarStore, merge_bars

PAGE = 1000


@dataclass(frozen=True)
class FetchReport:
    """What a fetch did."""

    symbol: str
    requests: int
    retries: int
    added: int
    last_ts: int | None


def retryable_errors() -> tuple[type[BaseException], ...]:
    """ccxt's rate-limit and network errors (empty when ccxt is not installed)."""
    try:
        import ccxt  # type: ignore[import-not-found]
    except ImportError:
        return ()
    return (ccxt.RateLimitExceeded, ccxt.NetworkError)


def page_to_bars(rows: list[list[Any]]) -> Bars:
    """ccxt OHLCV rows ``[ms, open, high, low, close, volume]`` as Bars (ns timestamps)."""
    if not rows:
        return empty_bars()
    a = np.asarray([r[:6] for r in rows], dtype=np.float64)
    ts = np.asarray([int(r[0]) for r in rows], dtype=np.int64) * 1_000_000
    v = np.nan_to_num(a[:, 5], nan=0.0)
    return Bars(ts, a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy(), a[:, 4].copy(), v)


def _call(exchange: Any, args: tuple, retry_on: tuple, sleep: Callable, tries: int) -> tuple:
    """fetch_ohlcv with exponential backoff on retryable errors; return (rows, retries)."""
    delay = max(float(getattr(exchange, "rateLimit", 1000)), 1.0) / 1000
    for attempt in range(tries):
        try:
            return exchange.fetch_ohlcv(*args), attempt
        except retry_on:
            if attempt == tries - 1:
                raise
            sleep(delay * 2 ** (attempt + 1))
    raise AssertionError("unreachable")


def fetch(
    store: BarStore,
    exchange: Any,
    market: str,
    symbol: str,
    resolution: str,
    since_ms: int,
    *,
    until_ms: int | None = None,
    aliases: tuple[str, ...] = (),
    flush_bars: int = 100_000,
    retry_on: tuple[type[BaseException], ...] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now_ms: int | None = None,
    tries: int = 6,
) -> FetchReport:
    """Fetch closed bars of `market` into `symbol` from its last stored bar (or since_ms)."""
    step_ms = BASE_RESOLUTIONS[resolution] // 1_000_000
    if step_ms == 0:
        raise ValueError("ticks cannot be fetched as OHLCV")
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    stop = min(until_ms if until_ms is not None else now, now - step_ms)  # closed bars only
    info = next((i for i in store.symbols() if i.name.upper() == symbol.upper()), None)
    if info is not None and info.base_resolution != resolution:
        raise ValueError(f"{info.name} is stored at {info.base_resolution}, not {resolution}")
    cursor = since_ms if info is None else max(since_ms, info.last_ts // 1_000_000 + step_ms)
    retry_on = retryable_errors() if retry_on is None else retry_on
    pending: list[Bars] = []
    requests = retries = added = 0
    last = info.last_ts if info else None
    while cursor <= stop:
        if requests:
            sleep(float(getattr(exchange, "rateLimit", 1000)) / 1000)
        args = (market, resolution, cursor, PAGE)
        rows, n = _call(exchange, args, retry_on, sleep, tries)
        requests, retries = requests + 1, retries + n
        page = page_to_bars([r for r in rows if cursor <= int(r[0]) <= stop])
        if len(page) == 0:
            break
        pending.append(page)
        cursor = int(page.ts[-1]) // 1_000_000 + step_ms
        if sum(map(len, pending)) >= flush_bars:
            added += _flush(store, symbol, resolution, pending, aliases, market)
            pending = []
    added += _flush(store, symbol, resolution, pending, aliases, market)
    info = store.resolve(symbol) if (added or info) else None
    return FetchReport(symbol, requests, retries, added, info.last_ts if info else last)


def _flush(
    store: BarStore, symbol: str, resolution: str, pending: list[Bars], aliases: tuple, market: str
) -> int:
    """Merge pending pages into the stored symbol; return the number of new bars."""
    if not pending:
        return 0
    new = concat(pending)
    old = next((i for i in store.symbols() if i.name.upper() == symbol.upper()), None)
    if old is not None:
        new = merge_bars(store.load(old.name, resolution, old.first_ts, old.last_ts), new)
    store.write(
        old.name if old else symbol,
        new,
        aliases=[*(old.aliases if old else []), *aliases],
        description=old.description if old else f"fetched through ccxt ({market})",
        resolution=resolution,
        calendar=old.calendar if old else guess_calendar(new.ts),
    )
    return len(new) - (old.bar_count if old else 0)
