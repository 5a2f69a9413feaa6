"""The Python SDK against the real shared server: every call, errors, and following a run
through connections dropped by the network and by the client itself."""

import asyncio
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

import client
from client import AsyncClient, Backoff, BarstreamError, Client
from client.stream import EventSequence
from protocol.events import EVENT_ADAPTER, Event
from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest, free_port, minute_run
from tests.server.proxy import Proxy

FAST = Backoff(initial=0.05, most=0.5)  # quick reconnects, so the tests stay short


def rest(server: ServerProcess, key: str) -> httpx.Client:
    """A plain httpx client: the independent view the SDK's answers are checked against."""
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def stored_events(server: ServerProcess, key: str, run_id: str) -> list[dict[str, Any]]:
    """Every event of a finished run, replayed from the start by a plain WebSocket client."""
    url = f"{server.ws_url}/api/v2/backtests/{run_id}/stream"
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        return [EVENT_ADAPTER.validate_json(raw).model_dump() for raw in ws]


def assert_whole_stream(got: list[Event], server: ServerProcess, key: str, run_id: str) -> None:
    """Ids 1..N each once, ending with `completed`, equal to the stored events one by one."""
    ids = [e.id for e in got]
    assert ids == list(range(1, len(ids) + 1))
    assert got[-1].type == "state" and got[-1].data.state == "completed"
    assert [e.model_dump() for e in got] == stored_events(server, key, run_id)


def test_submit_get_results_wait(server: ServerProcess, key: str) -> None:
    with Client(server.url, key) as bs, rest(server, key) as http:
        run = bs.submit(backtest(), name="sdk submit")
        assert run.state in ("queued", "running")
        assert run.symbols == ["ETH-USD"] and run.name == "sdk submit"
        moving = ("state", "progress", "started_at", "finished_at")  # may change meanwhile
        fetched = http.get(f"/api/v2/backtests/{run.run_id}").json()
        assert {k: v for k, v in run.to_dict().items() if k not in moving} == {
            k: v for k, v in fetched.items() if k not in moving
        }
        results = bs.wait(run.run_id)
        done = bs.get(run.run_id)
        assert done.state == "completed" and done.progress == 1.0
        assert done.to_dict() == http.get(f"/api/v2/backtests/{run.run_id}").json()
        assert results.to_dict() == http.get(f"/api/v2/backtests/{run.run_id}/results").json()
        assert results.run_id == run.run_id
        assert results.metrics["trade_count"] == len(results.round_trips)


def test_submit_from_keywords_equals_body(server: ServerProcess, key: str) -> None:
    body = backtest()
    with Client(server.url, key) as bs:
        by_body = bs.submit(body)
        by_keywords = bs.submit(**body)
        one_symbol = bs.submit(body, symbols="ETH")  # a single symbol may be a string
    assert by_body.config == by_keywords.config
    assert one_symbol.config == by_body.config


def test_list_follows_every_page(server: ServerProcess) -> None:
    key = server.create_key("sdk-list")
    with Client(server.url, key) as bs, rest(server, key) as http:
        made = [bs.submit(backtest(name=f"list {i}")).run_id for i in range(5)]
        pages = bs.list(page_size=2)
        assert pages.total is None  # nothing fetched yet
        listed = [r.run_id for r in pages]
        assert listed == made[::-1]  # newest first, across three pages
        assert pages.total == 5
        first = http.get("/api/v2/backtests", params={"limit": 2})
        assert 'rel="next"' in first.headers["Link"]  # the server really paged
        assert [r["run_id"] for r in first.json()] == listed[:2]
        bs.archive(made[0])
        assert [r.run_id for r in bs.list(page_size=2)] == made[:0:-1]
        archived = [r for r in bs.list(include_archived=True) if r.archived]
        assert [r.run_id for r in archived] == [made[0]]
        assert archived[0].archived_at is not None
        back = bs.unarchive(made[0])
        assert not back.archived and back.archived_at is None
        assert [r.run_id for r in bs.list(page_size=3)] == made[::-1]
        for run_id in made:
            bs.wait(run_id)
        assert [r.run_id for r in bs.list(state="completed")] == made[::-1]


async def test_async_list_and_catalogs(server: ServerProcess, key: str) -> None:
    async with AsyncClient(server.url, key) as bs, server.client(key) as http:
        symbols = await bs.symbols()
        assert symbols == (await http.get("/api/v2/symbols")).json()["items"]
        assert "ETH-USD" in {s["name"] for s in symbols}
        signals = await bs.signals()
        assert {s["name"] for s in signals} >= {"macd_bullish_cross", "is_above_sma"}
        templates = await bs.templates()
        assert {t["id"] if "id" in t else t["name"] for t in templates} >= {"tpl_grid", "tpl_dca"}
        run = await bs.submit(backtest())
        pages = bs.list(page_size=1)
        listed = [r.run_id async for r in pages]
        assert listed[0] == run.run_id
        assert pages.total == int((await http.get("/api/v2/backtests")).headers["X-Total-Count"])
        assert len(listed) == pages.total
        await bs.wait(run.run_id)


def test_strategies(server: ServerProcess, key: str) -> None:
    with Client(server.url, key) as bs:
        saved = bs.create_strategy(name="sdk saved", asset="ETH", strategy=SEED_STRATEGY)
        sid = saved["strategy_id"]
        assert bs.get_strategy(sid)["name"] == "sdk saved"
        assert sid in [s["strategy_id"] for s in bs.strategies()]
        run = bs.submit(start="2024-03-01T00:00:00Z", end="2024-06-01T00:00:00Z", strategy_id=sid)
        assert run.config["strategy_id"] == sid and run.symbols == ["ETH-USD"]
        bs.delete_strategy(sid)
        assert bs.get_strategy(sid)["deleted"] is True
        assert sid not in [s["strategy_id"] for s in bs.strategies()]
        assert sid in [s["strategy_id"] for s in bs.strategies(include_deleted=True)]
        with pytest.raises(BarstreamError) as err:
            bs.submit(start="2024-03-01T00:00:00Z", end="2024-06-01T00:00:00Z", strategy_id=sid)
        assert (err.value.status, err.value.code) == (404, "not_found")
        bs.wait(run.run_id)


def test_errors_carry_status_code_and_field(server: ServerProcess, key: str) -> None:
    bad_signal = {**SEED_STRATEGY, "entry": [{"name": "no_such_signal", "timeframe": "1h"}]}
    with Client(server.url, key) as bs:
        cases = [
            (lambda: bs.submit(backtest(execution={"fee_bps": -1})), 422, "validation_error"),
            (lambda: bs.submit(backtest(strategy=bad_signal)), 400, "invalid_strategy"),
            (lambda: bs.submit(backtest(symbols=["NOPE"])), 400, "unsupported_asset"),
            (lambda: bs.get("00000000-0000-0000-0000-000000000000"), 404, "not_found"),
        ]
        fields = []
        for call, status, code in cases:
            with pytest.raises(BarstreamError) as err:
                call()
            assert (err.value.status, err.value.code) == (status, code), err.value
            assert err.value.message
            fields.append(err.value.field)
        assert fields == ["execution.fee_bps", "strategy.entry[0].name", "symbols.0", "run_id"]
    with Client(server.url, "bs_not_a_key") as stranger, pytest.raises(BarstreamError) as err:
        stranger.get("00000000-0000-0000-0000-000000000000")
    assert (err.value.status, err.value.code) == (401, "unauthorized")


def test_cancel_a_running_run(server: ServerProcess, key: str) -> None:
    with Client(server.url, key) as bs:
        run = bs.submit(minute_run())
        with bs.follow(run.run_id) as events:
            for event in events:
                if event.type == "progress":
                    break  # it runs
        assert bs.cancel(run.run_id).run_id == run.run_id
        with pytest.raises(BarstreamError) as err:
            bs.wait(run.run_id)
        assert (err.value.status, err.value.code) == (None, "cancelled")
        assert bs.get(run.run_id).state == "cancelled"
        with pytest.raises(BarstreamError) as err:
            bs.cancel(run.run_id)
        assert (err.value.status, err.value.code, err.value.field) == (
            409,
            "run_finished",
            "run_id",
        )
        with pytest.raises(BarstreamError) as err:
            bs.results(run.run_id)
        assert (err.value.status, err.value.code) == (409, "run_not_finished")


def test_follow_resumes_through_drops_from_both_sides(
    server: ServerProcess, key: str, proxy: Proxy
) -> None:
    got: list[Event] = []
    with Client(proxy.url, key, backoff=FAST) as bs:
        run = bs.submit(minute_run())
        follow = bs.follow(run.run_id)
        for event in follow:
            got.append(event)
            if event.id in (5, 20):
                assert proxy.drop_all() >= 1  # the network (or the server) cuts it
            elif event.id == 12:
                follow.connection.close()  # the client closes its own socket cleanly
            elif event.id == 28:
                follow.connection.socket.shutdown(socket.SHUT_RDWR)  # ... or abruptly
    assert follow.reconnects >= 4
    assert follow.last_event_id == got[-1].id
    assert_whole_stream(got, server, key, run.run_id)


async def test_async_follow_resumes_through_drops_from_both_sides(
    server: ServerProcess, key: str, proxy: Proxy
) -> None:
    got: list[Event] = []
    async with AsyncClient(proxy.url, key, backoff=FAST) as bs:
        run = await bs.submit(minute_run())
        follow = bs.follow(run.run_id)
        async for event in follow:
            got.append(event)
            if event.id in (5, 20):
                assert proxy.drop_all() >= 1
            elif event.id == 12:
                await follow.connection.close()
            elif event.id == 28:
                follow.connection.transport.abort()
    assert follow.reconnects >= 4
    await asyncio.to_thread(assert_whole_stream, got, server, key, run.run_id)


def test_follow_from_an_event_id_and_past_the_end(server: ServerProcess, key: str) -> None:
    with Client(server.url, key) as bs:
        run = bs.submit(backtest())
        everything = list(bs.follow(run.run_id))
        tail = list(bs.follow(run.run_id, last_event_id=3))
        assert [e.id for e in tail] == [e.id for e in everything[3:]]
        assert list(bs.follow(run.run_id, last_event_id=everything[-1].id)) == []


def test_follow_refusals_raise_without_retrying(server: ServerProcess, key: str) -> None:
    retries: list[int] = []
    with Client(server.url, key, backoff=FAST) as bs:
        with pytest.raises(BarstreamError) as err:
            list(
                bs.follow(
                    "00000000-0000-0000-0000-000000000000",
                    on_reconnect=lambda *a: retries.append(1),
                )
            )
        assert (err.value.status, err.value.code) == (404, "not_found")
        run = bs.submit(backtest())
    with Client(server.url, "bs_not_a_key", backoff=FAST) as stranger:
        with pytest.raises(BarstreamError) as err:
            list(stranger.follow(run.run_id, on_reconnect=lambda *a: retries.append(1)))
        assert (err.value.status, err.value.code) == (401, "unauthorized")
    assert retries == []


def test_follow_gives_up_after_its_bounded_attempts() -> None:
    waits: list[float] = []
    backoff = Backoff(initial=0.01, most=0.02, attempts=3)
    nobody = Client(f"http://127.0.0.1:{free_port()}", "bs_x", backoff=backoff)
    with nobody, pytest.raises(BarstreamError) as err:
        list(nobody.follow("r", on_reconnect=lambda n, delay, exc: waits.append(delay)))
    assert err.value.code == "stream_unavailable"
    assert len(waits) == 3 and all(0.005 <= w <= 0.02 for w in waits)


def test_backoff_is_bounded_with_jitter() -> None:
    b = Backoff(initial=0.25, factor=2, most=10, attempts=12)
    assert [b.delay(n, rand=lambda: 1.0) for n in (1, 2, 3, 7, 30)] == [0.25, 0.5, 1.0, 10, 10]
    assert [b.delay(n, rand=lambda: 0.0) for n in (1, 2, 30)] == [0.125, 0.25, 5.0]
    assert not b.exhausted(12) and b.exhausted(13)


def _event(i: int, state: str | None = None) -> str:
    head = f'{{"id": {i}, "run_id": "r", "timestamp": "2026-01-01T00:00:00Z", '
    if state:
        return (
            head + f'"type": "state", "data": {{"state": "{state}", "previous_state": "running"}}}}'
        )
    return head + '"type": "log", "data": {"message": "m"}}'


def test_event_sequence_drops_replays_and_refuses_gaps() -> None:
    seq = EventSequence("r", last_event_id=1)
    assert seq.accept(_event(1)) is None  # a replay of what was already yielded
    assert seq.accept(_event(2)).id == 2
    with pytest.raises(BarstreamError) as err:
        seq.accept(_event(4))
    assert err.value.code == "event_gap" and "3..3" in err.value.message
    assert seq.accept(_event(3, state="completed")).id == 3 and seq.done


def test_run_and_to_pandas(server: ServerProcess, key: str) -> None:
    pd = pytest.importorskip("pandas")
    seen: list[Event] = []
    with Client(server.url, key) as bs:
        results = bs.run(backtest(), on_event=seen.append)
    assert [e.id for e in seen] == list(range(1, len(seen) + 1))
    doc = results.to_dict()
    equity = results.equity_to_pandas()
    assert isinstance(equity.index, pd.DatetimeIndex) and str(equity.index.tz) == "UTC"
    assert len(equity) == len(doc["equity"]) and equity.index.is_monotonic_increasing
    assert equity.index[-1] == pd.Timestamp(doc["equity"][-1]["timestamp"])
    # total_return is eq[-1] / eq[0] - 1 and eq[0] is the capital (no fill on the first bar)
    assert equity["equity"].iloc[-1] / 10_000 - 1 == pytest.approx(results.metrics["total_return"])
    trades = results.trades_to_pandas()
    assert len(trades) == len(doc["trades"]) > 0
    assert set(trades["side"]) <= {"buy", "sell"} and "liquidity" in trades.columns
    assert trades["commission"].sum() == pytest.approx(sum(t["commission"] for t in doc["trades"]))
    trips = results.round_trips_to_pandas()
    assert len(trips) == results.metrics["trade_count"]
    assert (trips["exit_time"] >= trips["entry_time"]).all()
    assert trips["pnl"].sum() == pytest.approx(sum(t["pnl"] for t in doc["round_trips"]))


def test_exports_and_import_arrows() -> None:
    for name in client.__all__:
        assert getattr(client, name) is not None
    code = (
        "import sys, client, client.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('server', 'engine'))\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def wave_symbol(server: ServerProcess) -> str:
    """A 1-minute sine wave written into the server's store: an EMA cross trades every cycle."""
    import uuid

    import numpy as np

    from engine.data.store import Bars, BarStore

    n, start = 90_000, 1_704_067_200 * 10**9
    close = 100.0 + 5 * np.sin(np.arange(n) / 8.0)
    open_ = np.r_[close[0], close[:-1]]
    ts = start + np.arange(n, dtype=np.int64) * 60 * 10**9
    name = f"SDKWAVE{uuid.uuid4().hex[:6].upper()}"
    hi, lo = np.maximum(open_, close) + 0.01, np.minimum(open_, close) - 0.01
    BarStore(server.data_dir / "bars").write(name, Bars(ts, open_, hi, lo, close, np.ones(n)))
    return name


def test_results_follow_every_page_of_round_trips_and_fills(
    server: ServerProcess, key: str
) -> None:
    cross = {"entry": ["cross_above(ema(5), ema(10))"], "exit": ["cross_below(ema(5), ema(10))"]}
    body = backtest(symbols=[wave_symbol(server)], resolution="1m", strategy=cross,
                    start="2024-01-01T00:00:00Z", end="2024-03-01T00:00:00Z")  # fmt: skip
    with Client(server.url, key) as bs, rest(server, key) as http:
        results = bs.run(body)
        run_id = results.run_id
        trips = http.get(f"/api/v1/backtests/{run_id}").json()["trades"]  # every one, unpaged
        assert len(trips) > 1000  # more than the first page the results carry
        assert results.round_trips == trips
        assert results.to_dict()["round_trips"] == trips
        fills = results.to_dict()["trades"]
        assert len(fills) == 2 * len(trips) == results.paging["trades"].total

    async def async_results() -> Any:
        async with AsyncClient(server.url, key) as abs_:
            return await abs_.results(run_id)

    assert asyncio.run(async_results()).to_dict()["round_trips"] == trips
