"""Symbol names and aliases across dialects.

A name matches a symbol when it equals the symbol's name or an alias (case-insensitive), or
when it does after dropping separators (``btc/usdt`` → ``BTCUSDT``), provided exactly one symbol
matches that way. A bare asset (``BTC``) then tries the default quote (``BTC`` + ``USD``). The
quote is never dropped, so ``BTC-USD``, ``BTC-USDC`` and ``BTC-USDT`` stay distinct markets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

DEFAULT_QUOTE = "USD"
CALENDARS = ("24/7", "exchange")
_SEPARATORS = re.compile(r"[-/_:. ]")


class Named(Protocol):
    """Anything with a name and aliases (a SymbolInfo)."""

    name: str
    aliases: list[str]


def compact(name: str) -> str:
    """Upper-case a name and drop separators: 'btc-usd' → 'BTCUSD'."""
    return _SEPARATORS.sub("", name.strip().upper())


def default_quote() -> str:
    """The quote a bare asset resolves with: BARSTREAM_DEFAULT_QUOTE, else USD."""
    return (os.environ.get("BARSTREAM_DEFAULT_QUOTE") or DEFAULT_QUOTE).strip().upper()


T = TypeVar("T", bound=Named)


def _names(info: Named) -> list[str]:
    return [info.name, *info.aliases]


def match(name: str, infos: Sequence[T], quote: str | None = None) -> T | None:
    """Find the symbol a name refers to (see the module docstring), or None."""
    key = name.strip().upper()
    for info in infos:
        if key in (n.upper() for n in _names(info)):
            return info
    keys = [compact(key)]
    if not _SEPARATORS.search(key.strip()):
        keys.append(compact(key) + compact(quote or default_quote()))
    for k in keys:
        hits = [i for i in infos if k in (compact(n) for n in _names(i))]
        if len(hits) == 1:
            return hits[0]
    return None


def conflicts(name: str, aliases: Iterable[str], infos: Iterable[Named]) -> str | None:
    """Describe the first of name/aliases that already names another symbol, or None."""
    for info in infos:
        if info.name.upper() == name.strip().upper():
            continue
        taken = {compact(n): n for n in _names(info)}
        for a in (name, *aliases):
            if compact(a) in taken:
                return f"{a!r} already names {info.name} (as {taken[compact(a)]!r})"
    return None
