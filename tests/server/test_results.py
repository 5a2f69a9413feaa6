"""A run's stored listings served in pages: every surface's pages give exactly the engine's rows.

The run has more than 1,000 round trips and 2,000 fills (a sine wave under an EMA cross); the
expected rows are the engine's own columns, run in this process on the same bars, with times
formatted by Python's datetime, independently of the server's vectorised layout.
"""

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from engine import RunSpec, run_job
from engine.data.store import Bars, BarStore
from server.db import migrate as migrations
from server.translate import job_from_config
from tests.server.api_helpers import completed_run, wait_state
from tests.server.harness import ServerProcess, backtest, embedded_dsn

EMA_CROSS = {"entry": ["cross_above(ema(5), ema(10))"], "exit": ["cross_below(ema(5), ema(10))"]}
START_NS = 1_704_067_200 * 10**9  # 2024-01-01
BARS = 60_000  # 1-minute bars: about 42 days, a cycle every 50 bars


def wave() -> Bars:
    """A sine wave of 1-minute bars: the EMA cross enters and exits once a cycle."""
    close = 100.0 + 5 * np.sin(np.arange(BARS) / 8.0)
    open_ = np.r_[close[0], close[:-1]]
    ts = START_NS + np.arange(BARS, dtype=np.int64) * 60 * 10**9
    hi, lo = np.maximum(open_, close) + 0.01, np.minimum(open_, close) - 0.01
    return Bars(ts, open_, hi, lo, close, np.ones(BARS))


def iso(ns: int) -> str:
    """An ISO 8601 UTC time to the millisecond (Python's formatting, not the server's)."""
    return (
        datetime.fromtimestamp(ns // 10**6 / 1000, UTC).isoformat(timespec="milliseconds")[:-6]
        + "Z"
    )


def expected_rows(table: Any) -> list[dict[str, Any]]:
    """The engine table's rows as the wire shows them: times as ISO text."""
    rows = table.rows()
    for row in rows:
        for name in table.times:
            row[name] = iso(row[name])
    return rows


@pytest.fixture(scope="module")
async def run(server: ServerProcess) -> dict[str, Any]:
    """The completed run, its results, and the engine's output for the same job."""
    name = f"WAVE{uuid.uuid4().hex[:6].upper()}"
    store = BarStore(server.data_dir / "bars")
    store.write(name, wave())
    body = backtest(
        symbols=[name], resolution="1m", strategy=EMA_CROSS,
        start="2024-01-01T00:00:00Z", end="2024-02-11T00:00:00Z",
    )  # fmt: skip
    async with server.client() as c:
        created, res = await completed_run(c, body)
        status = (await c.get(f"/api/v2/backtests/{created['run_id']}")).json()
    output = run_job(RunSpec.from_dict(job_from_config(status["config"])), store).output
    return {"id": created["run_id"], "results": res, "output": output}


def next_link(r: httpx.Response) -> str | None:
    header = r.headers.get("link")
    if not header:
        return None
    url, _, rel = header.partition(";")
    assert 'rel="next"' in rel
    return url.strip()[1:-1]


async def test_the_run_has_more_than_a_thousand_trips(run: dict[str, Any]) -> None:
    out = run["output"]
    assert len(out.round_trips) > 1000 and len(out.trades) > 2000


async def test_results_carry_the_first_page_the_totals_and_the_next_links(
    server: ServerProcess, run: dict[str, Any]
) -> None:
    out = run["output"]
    async with server.client() as c:
        r = await c.get(f"/api/v2/backtests/{run['id']}/results")
        assert r.status_code == 200
        body = r.json()
        trips, fills = expected_rows(out.round_trips), expected_rows(out.trades)
        assert body["round_trips"] == trips[:500] and body["trades"] == fills[:500]
        paging = body["paging"]
        assert paging["round_trips"]["total"] == len(trips)
        assert paging["trades"]["total"] == len(fills)
        assert paging["round_trips"]["count"] == 500
        assert body["metrics"]["trade_count"] == len(trips)
        r = await c.get(paging["round_trips"]["next"])
        assert r.status_code == 200 and r.json() == trips[500:1000]
        r = await c.get(f"/api/v2/backtests/{run['id']}/results", params={"limit": 7})
        body = r.json()
        assert body["round_trips"] == trips[:7] and body["paging"]["round_trips"]["count"] == 7
        assert body["equity"] == run["results"]["equity"]


@pytest.mark.parametrize("kind,limit", [("round_trips", 300), ("trades", 1000), ("round_trips", 1)])
async def test_v2_listing_pages_give_every_row_once_in_order(
    server: ServerProcess, run: dict[str, Any], kind: str, limit: int
) -> None:
    table = run["output"].round_trips if kind == "round_trips" else run["output"].trades
    expected = expected_rows(table)
    got: list[dict] = []
    url: str | None = f"/api/v2/backtests/{run['id']}/{kind}?limit={limit}"
    pages = 0
    async with server.client() as c:
        while url is not None and pages < 40:
            r = await c.get(url)
            assert r.status_code == 200, r.text
            assert int(r.headers["x-total-count"]) == len(expected)
            page = r.json()
            assert len(page) == min(limit, len(expected) - len(got))
            got += page
            url = next_link(r)
            pages += 1
    if limit == 1:  # one row a page: the first 40 pages, each the next row
        assert got == expected[:40]
    else:
        assert got == expected and url is None


async def test_v1_trades_pages_and_the_full_run_give_the_engines_trips(
    server: ServerProcess, run: dict[str, Any]
) -> None:
    expected = expected_rows(run["output"].round_trips)
    got: list[dict] = []
    params: dict[str, Any] = {"limit": 700}
    async with server.client() as c:
        for _ in range(10):
            r = await c.get(f"/api/v1/backtests/{run['id']}/trades", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["total"] == len(expected)
            got += body["trades"]
            if body["next_cursor"] is None:
                break
            params = {"limit": 700, "cursor": body["next_cursor"]}
        assert got == expected
        full = (await c.get(f"/api/v1/backtests/{run['id']}")).json()
        assert full["trades"] == expected and full["trade_count"] == len(expected)


async def test_a_cursor_past_the_end_gives_an_empty_page_and_bad_ones_are_refused(
    server: ServerProcess, run: dict[str, Any]
) -> None:
    total = len(run["output"].round_trips)
    async with server.client() as c:
        base = f"/api/v2/backtests/{run['id']}/round_trips"
        for cursor in ("OTk5OTk5", "OTk5OTk5OTk5OTk5"):  # rows 999,999 and 999,999,999,999
            r = await c.get(base, params={"cursor": cursor})
            assert r.status_code == 200 and r.json() == [] and "link" not in r.headers
            assert int(r.headers["x-total-count"]) == total
        for params, field in (({"cursor": "!!"}, "cursor"), ({"cursor": "LTE"}, "cursor"),
                              ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit")):  # fmt: skip
            r = await c.get(base, params=params)
            assert r.status_code == 422, (params, r.text)
            assert r.json()["error"]["field"] == field


async def test_listings_of_an_unfinished_or_unknown_run_are_refused(server: ServerProcess) -> None:
    async with server.client() as c:
        r = await c.get(f"/api/v2/backtests/{uuid.uuid4()}/trades")
        assert r.status_code == 404
        r = await c.post("/api/v2/backtests", json=backtest(resolution="1m"))
        run_id = r.json()["run_id"]
        await c.post(f"/api/v2/backtests/{run_id}/cancel")
        await wait_state(c, run_id, {"cancelled", "completed"})
        for kind in ("round_trips", "trades"):
            r = await c.get(f"/api/v2/backtests/{run_id}/{kind}")
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] == "run_not_finished"


async def test_the_migration_moves_stored_listings_into_pages(
    server: ServerProcess, run: dict[str, Any]
) -> None:
    """A body stored before 0009 (listings inline) is split by the migration's own statements
    into pages the listings serve exactly; run on the live database, rolled back."""
    import asyncpg
    import orjson

    from server import stored_results

    sql = (Path(migrations.__file__).parent / "migrations" / "0009_result_parts.sql").read_text()
    convert = sql[sql.index("-- Results stored before") :]
    trips = expected_rows(run["output"].round_trips)
    fills = expected_rows(run["output"].trades)
    rid = uuid.UUID(run["id"])
    conn = await asyncpg.connect(server.database_url or embedded_dsn(server))
    await conn.set_type_codec(
        "jsonb", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads,
        schema="pg_catalog",
    )  # fmt: skip
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute("DELETE FROM result_parts WHERE run_id = $1", rid)
        await conn.execute(
            "UPDATE results SET body = body || $2 WHERE run_id = $1",
            rid, {"round_trips": trips, "trades": fills},
        )  # fmt: skip
        await conn.execute(convert)
        head = orjson.loads(await stored_results.head_text(conn, rid))
        assert "round_trips" not in head and "trades" not in head and "metrics" in head
        assert await stored_results.totals(conn, rid) == {
            "round_trips": len(trips), "trades": len(fills),
        }  # fmt: skip
        assert orjson.loads(await stored_results.whole(conn, rid, "round_trips")) == trips
        assert (
            orjson.loads(await stored_results.page(conn, rid, "trades", 777, 600))
            == (fills[777:1377])
        )
        pages = await conn.fetch(
            "SELECT page, rows FROM result_parts WHERE run_id = $1 AND kind = 'round_trips'"
            " ORDER BY page",
            rid,
        )
        assert [p["rows"] for p in pages] == [
            min(500, len(trips) - 500 * k) for k in range(len(pages))
        ]
    finally:
        await tx.rollback()
        await conn.close()
