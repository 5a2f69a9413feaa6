"""Issue 12, submissions: cheap creates keep every check. A key cache that still drops a revoked
key (at once by NOTIFY, within its TTL without one), a bar catalog in memory that still sees
another process's import, batched creates that still charge and refuse run by run, and a burst
of small runs each run exactly once."""

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import backtesting
import numpy as np
import pytest

from engine.data.bars import Bars
from engine.data.store import BarStore
from server import auth
from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest, eventually, serving

ROOT = Path(__file__).resolve().parents[2]
GOOG = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
CACHE_SECONDS = 30.0  # this module's server: only a NOTIFY can drop a key this soon
BURST = 200  # scripts/bench_submit.py runs 1,000


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose active-run limit lets a burst through and whose key cache is long."""
    yield from serving(
        tmp_path_factory.mktemp("submit"), max_active_runs="5000", workers="2",
        key_cache_seconds=str(CACHE_SECONDS),
    )  # fmt: skip


def dsn(srv: ServerProcess) -> str:
    return f"postgresql://postgres@/postgres?host={srv.data_dir.resolve() / 'pg'}"


def cli(srv: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args, "--data-dir", str(srv.data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def small_run(**overrides: object) -> dict:
    """A run of a month of hourly demo bars: it takes its worker a few milliseconds."""
    return backtest(start="2024-02-01T00:00:00Z", end="2024-03-01T00:00:00Z", **overrides)


async def test_a_revoked_key_is_refused_as_soon_as_its_notify_arrives(srv: ServerProcess) -> None:
    key = srv.create_key("revoked-now")
    async with srv.client(key) as c:
        assert (await c.get("/api/v2/backtests")).status_code == 200  # now in the cache
        cached_at = time.monotonic()
        conn = await asyncpg.connect(dsn(srv))
        try:
            assert await auth.revoke(conn, auth.lookup_prefix(key))  # what the CLI does
        finally:
            await conn.close()

        async def refused() -> bool:
            return (await c.get("/api/v2/backtests")).status_code == 401

        await eventually(refused, timeout=CACHE_SECONDS / 2)
        # Well before the cache entry's TTL: the notification dropped it.
        assert time.monotonic() - cached_at < CACHE_SECONDS
        assert (await c.post("/api/v2/backtests", json=small_run())).status_code == 401


async def test_a_revoked_key_without_a_notify_is_refused_after_the_cache_ttl(
    server: ServerProcess,
) -> None:
    """The shared server keeps the default TTL; a revocation whose NOTIFY never arrives (here:
    none is sent) stops the key once the TTL has passed since the key was cached."""
    key = server.create_key("revoked-quietly")
    async with server.client(key) as c:
        assert (await c.get("/api/v2/backtests")).status_code == 200
        conn = await asyncpg.connect(dsn(server))
        try:
            await conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE prefix = $1", auth.lookup_prefix(key)
            )
        finally:
            await conn.close()
        await asyncio.sleep(auth.KEY_CACHE_SECONDS + 0.2)
        assert (await c.get("/api/v2/backtests")).status_code == 401
        assert (await c.post("/api/v2/backtests", json=small_run())).status_code == 401


async def test_a_symbol_imported_by_another_process_is_visible_to_the_next_request(
    srv: ServerProcess,
) -> None:
    async with srv.client() as c:
        names = {s["name"] for s in (await c.get("/api/v2/symbols")).json()["items"]}
        assert "GOOG-SUB" not in names
        refused = await c.post("/api/v2/backtests", json=small_run(symbols=["GOOG-SUB"]))
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "unsupported_asset"
        await asyncio.sleep(1.5)  # past the store's racy window: the catalog in memory is trusted
        cli(srv, "data", "import", str(GOOG), "--symbol", "GOOG-SUB")
        names = {s["name"] for s in (await c.get("/api/v2/symbols")).json()["items"]}
        assert "GOOG-SUB" in names
        daily = {
            **SEED_STRATEGY,
            "entry": [{**s, "timeframe": "1d"} for s in SEED_STRATEGY["entry"]],
        }
        body = backtest(symbols=["goog-sub"], resolution="1d", strategy=daily,
                        start="2006-01-01T00:00:00Z", end="2012-12-31T00:00:00Z")  # fmt: skip
        made = await c.post("/api/v2/backtests", json=body)
        assert made.status_code == 201, made.text
        assert made.json()["config"]["symbols"] == ["GOOG-SUB"]


def _bars(n: int, start_ns: int) -> Bars:
    ts = start_ns + np.arange(n, dtype=np.int64) * 60 * 10**9
    close = 100.0 + np.arange(n, dtype=np.float64)
    return Bars(ts, close, close + 1.0, close - 1.0, close, np.ones(n))


def test_the_catalog_in_memory_sees_each_write_of_another_store_at_once(tmp_path: Path) -> None:
    """Two stores on one directory stand for two processes: each write of one, even several in
    the same clock tick, is seen by the other's next lookup, and a rewrite's new range too."""
    reader, writer = BarStore(tmp_path / "bars"), BarStore(tmp_path / "bars")
    assert reader.symbols() == []
    for i in range(5):
        writer.write(f"S{i}", _bars(10, 0))
        assert reader.resolve(f"s{i}") is not None
    time.sleep(1.2)  # the reader's catalog becomes trusted: only the directory's stamp is checked
    assert [s.name for s in reader.symbols()] == [f"S{i}" for i in range(5)]
    writer.write("S0", _bars(20, 0))
    info = reader.resolve("S0")
    assert info is not None and info.bar_count == 20


async def test_a_burst_of_small_runs_each_runs_exactly_once(srv: ServerProcess) -> None:
    key = srv.create_key("burst")
    limit = asyncio.Semaphore(32)
    async with srv.client(key) as c:

        async def submit() -> str:
            async with limit:
                r = await c.post("/api/v2/backtests", json=small_run(name="burst"))
            assert r.status_code == 201, r.text
            return r.json()["run_id"]

        ids = await asyncio.gather(*(submit() for _ in range(BURST)))
        assert len(set(ids)) == BURST

        async def settled() -> bool:
            got = [
                await c.get(f"/api/v2/backtests?state={s}&limit=1") for s in ("queued", "running")
            ]
            return all(r.headers["x-total-count"] == "0" for r in got)

        await eventually(settled, timeout=600, every=0.2)
        listed = await c.get("/api/v2/backtests?limit=200")
        assert listed.headers["x-total-count"] == str(BURST)
        assert Counter(r["run_id"] for r in listed.json()) == Counter(ids)
        assert {r["state"] for r in listed.json()} == {"completed"}
    conn = await asyncpg.connect(dsn(srv))
    try:
        runs = await conn.fetch(
            "SELECT r.id::text AS id, r.state, r.attempts, r.last_event_id,"
            " array_agg(e.id ORDER BY e.id) AS ids,"
            " array_agg(e.data->>'state' ORDER BY e.id) FILTER (WHERE e.type = 'state') AS states"
            " FROM runs r JOIN users u ON u.id = r.user_id JOIN events e ON e.run_id = r.id"
            " WHERE u.name = 'burst' GROUP BY r.id"
        )
    finally:
        await conn.close()
    assert sorted(r["id"] for r in runs) == sorted(ids)
    for r in runs:
        assert (r["state"], r["attempts"]) == ("completed", 1), r
        assert r["ids"] == list(range(1, r["last_event_id"] + 1)), r["id"]
        assert r["states"] == ["queued", "running", "completed"], r["id"]


async def test_concurrent_creates_spend_a_balance_exactly(srv: ServerProcess) -> None:
    """Creates batched together are charged one by one: 30 credits pay for 30 of 50 runs made
    at once, the other 20 are 402 and store nothing."""
    key = srv.create_key("payer")
    cli(srv, "credits", "grant", "--user", "payer", "--amount", "30")
    async with srv.client(key) as c:
        answers = await asyncio.gather(
            *(c.post("/api/v2/backtests", json=small_run()) for _ in range(50))
        )
        codes = Counter(r.status_code for r in answers)
        assert codes == {201: 30, 402: 20}, codes
        made = [r.json() for r in answers if r.status_code == 201]
        assert all(m["config"]["credits"] == {"metered": True, "charged": 1.0} for m in made)
        assert {r.json()["error"]["code"] for r in answers if r.status_code == 402} == {
            "insufficient_credits"
        }
        listed = await c.get("/api/v2/backtests?limit=100")
        assert Counter(r["run_id"] for r in listed.json()) == Counter(m["run_id"] for m in made)
    conn = await asyncpg.connect(dsn(srv))
    try:
        balance, charged = await conn.fetchrow(
            "SELECT u.credits, (SELECT array_agg(run_id::text) FROM credit_ledger"
            " WHERE user_id = u.id AND kind = 'run') FROM users u WHERE u.name = 'payer'"
        )
    finally:
        await conn.close()
    assert balance == 0
    assert sorted(charged) == sorted(m["run_id"] for m in made)


async def test_an_integer_too_large_to_store_is_a_422_and_spoils_no_other_create(
    srv: ServerProcess,
) -> None:
    """Found by the create-body property test: such a body was a 500 (the config cannot be
    stored as JSON); creates made with it at once are each still answered on their own."""
    key = srv.create_key("huge")
    huge = {**SEED_STRATEGY, "description": {"n": [1, 2**70]}}
    async with srv.client(key) as c:
        answers = await asyncio.gather(
            c.post("/api/v2/backtests", json=small_run(strategy=huge)),
            *(c.post("/api/v2/backtests", json=small_run()) for _ in range(10)),
        )
        assert answers[0].status_code == 422, answers[0].text
        err = answers[0].json()["error"]
        assert (err["code"], err["field"]) == ("validation_error", "strategy.description.n[1]")
        assert [r.status_code for r in answers[1:]] == [201] * 10
        listed = await c.get("/api/v2/backtests")
        assert listed.headers["x-total-count"] == "10"


async def test_a_create_answers_the_status_a_read_of_the_run_gives(srv: ServerProcess) -> None:
    """The create answer is built from what the insert stored and the table's defaults, not
    read back: it must equal the status read afterwards (while the run is still queued, or
    apart from what running it changed since)."""
    key = srv.create_key("echo")
    async with srv.client(key) as c:
        made = (await c.post("/api/v2/backtests", json=small_run(name="echo"))).json()
        read = (await c.get(f"/api/v2/backtests/{made['run_id']}")).json()
    moved = {"state", "progress", "started_at", "finished_at"}
    assert {k: v for k, v in made.items() if k not in moved} == {
        k: v for k, v in read.items() if k not in moved
    }
    assert set(made) == set(read)
    assert (made["state"], made["progress"], made["started_at"]) == ("queued", 0.0, None)
    assert made["config"]["credits"] == {"metered": False, "charged": 0.0}
