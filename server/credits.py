"""Optional per-user credits: a NULL balance is unlimited (the default), a number is metered.

A metered balance pays for each run, whatever surface creates it (runs.create charges): the
charge and the run are one transaction under the user's row lock, so two submits cannot both
spend the last credit and a refused run stores nothing. Every change is a row of
`credit_ledger`.
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from server import runs
from server.runs import InsufficientCredits

__all__ = [
    "Balance",
    "InsufficientCredits",
    "NoSuchUser",
    "create_paid_run",
    "grant",
    "set_balance",
    "show",
]


class NoSuchUser(LookupError):
    """No user has this name."""


@dataclass(frozen=True)
class Balance:
    """A user's credits: `balance` None is unlimited; runs charged and credits spent so far."""

    user: str
    balance: Decimal | None
    runs_charged: int
    spent: Decimal


async def create_paid_run(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    config: dict[str, Any],
    *,
    cost: Decimal,
    max_active: int,
) -> asyncpg.Record:
    """Create a run and charge `cost` for it (runs.create does both, for every surface)."""
    return await runs.create(conn, user_id, config, max_active=max_active, cost=cost)


async def _user(conn: asyncpg.Connection, name: str) -> tuple[uuid.UUID, Decimal | None]:
    row = await conn.fetchrow("SELECT id, credits FROM users WHERE name = $1 FOR UPDATE", name)
    if row is None:
        raise NoSuchUser(name)
    return row["id"], row["credits"]


async def grant(conn: asyncpg.Connection, name: str, amount: Decimal) -> Decimal:
    """Add `amount` (> 0) to the user's balance, an unlimited one counting as 0 (so a grant
    turns metering on); return the new balance."""
    async with conn.transaction():
        user_id, balance = await _user(conn, name)
        new = (balance or Decimal(0)) + amount
        await _write(conn, user_id, "grant", amount, new)
    return new


async def set_balance(conn: asyncpg.Connection, name: str, amount: Decimal | None) -> None:
    """Set the user's balance to `amount`, or None: unlimited (credits off)."""
    async with conn.transaction():
        user_id, _ = await _user(conn, name)
        await _write(conn, user_id, "set", amount, amount)


async def _write(
    conn: asyncpg.Connection, user_id: uuid.UUID, kind: str, amount: Any, new: Any
) -> None:
    await conn.execute("UPDATE users SET credits = $2 WHERE id = $1", user_id, new)
    await conn.execute(
        "INSERT INTO credit_ledger (user_id, kind, amount, balance_after) VALUES ($1, $2, $3, $4)",
        user_id,
        kind,
        amount,
        new,
    )


async def show(conn: asyncpg.Connection, name: str) -> Balance:
    """The user's balance, the runs charged and the credits they spent."""
    async with conn.transaction():
        user_id, balance = await _user(conn, name)
        count, spent = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(amount), 0) FROM credit_ledger"
            " WHERE user_id = $1 AND kind = 'run'",
            user_id,
        )
    return Balance(name, balance, count, spent)
