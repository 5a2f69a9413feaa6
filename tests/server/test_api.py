"""The v2 REST API against a real server: shapes, rules, ownership, results."""

import asyncio
import copy
import math
import uuid
from typing import Any

import httpx
import jsonschema
import numpy as np
import orjson
import pytest

from engine.data.store import Bars, BarStore
from tests.server import harness
from tests.server.api_helpers import completed_results, completed_run, wait_state
from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest

STATUS_KEYS = {
    "run_id",
    "state",
    "progress",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "config",
    "archived",
    "archived_at",
}


async def run_count(client: httpx.AsyncClient) -> int:
    r = await client.get("/api/v2/backtests", params={"include_archived": "true"})
    return int(r.headers["x-total-count"])


async def test_create_returns_queued_status(server: ServerProcess) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=backtest())
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == STATUS_KEYS
    assert body["state"] == "queued" and body["progress"] == 0
    assert body["started_at"] is None and body["finished_at"] is None and body["error"] is None
    assert body["created_at"].endswith("Z")
    assert body["config"]["symbols"] == ["ETH-USD"]
    assert body["config"]["execution"]["fee_bps"] == 10
    assert r.headers["location"] == f"/api/v2/backtests/{body['run_id']}"


async def test_completed_run_has_results(server: ServerProcess) -> None:
    async with server.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]
        done = await wait_state(c, run_id, {"completed", "failed"})
        assert done["state"] == "completed", done
        assert done["progress"] == 1.0 and done["started_at"] and done["finished_at"]
        r = await c.get(f"/api/v2/backtests/{run_id}/results")
    assert r.status_code == 200
    res = r.json()
    for name in ("total_return", "sharpe_ratio", "max_drawdown", "win_rate", "profit_factor"):
        assert name in res["metrics"]
    assert res["trades"], "the seed strategy trades on six months of hourly bars"
    t = res["trades"][0]
    assert set(t) >= {"symbol", "timestamp", "side", "quantity", "price", "commission"}
    assert t["side"] == "buy" and t["symbol"] == "ETH-USD"
    # Commission is 10 bps of the fill's notional.
    assert t["commission"] == pytest.approx(t["quantity"] * t["price"] * 0.001, rel=1e-9)
    p = res["equity"][-1]
    assert p["equity"] == pytest.approx(p["cash"] + p["positions"], rel=1e-9)
    assert res["metrics"]["total_return"] == pytest.approx(p["equity"] / 10_000 - 1, rel=1e-9)
    assert res["exposure"] and isinstance(res["logs"], list) and res["logs"]


async def test_seed_001_strategy_json_runs(server: ServerProcess) -> None:
    body = backtest(strategy=None, strategy_json=orjson.dumps(SEED_STRATEGY).decode())
    del body["strategy"]
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=body)
        assert r.status_code == 201, r.text
        done = await wait_state(c, r.json()["run_id"], {"completed", "failed"})
    assert done["state"] == "completed"


async def test_results_before_completion_is_409(server: ServerProcess) -> None:
    # A year of 1-minute bars in paced chunks stays running for a few seconds.
    async with server.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=minute_run())).json()["run_id"]
        r = await c.get(f"/api/v2/backtests/{run_id}/results")
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "run_not_finished"
        await c.post(f"/api/v2/backtests/{run_id}/cancel")


def minute_run() -> dict[str, Any]:
    """A paced one-year run on 1-minute bars, asked for by the wire name `minute`."""
    return {**harness.minute_run(), "resolution": "minute"}


async def test_cancel_queued_and_running(server: ServerProcess) -> None:
    async with server.client() as c:
        ids = [
            (await c.post("/api/v2/backtests", json=minute_run())).json()["run_id"]
            for _ in range(3)
        ]
        # With two workers, the third waits in the queue: it is cancelled at once.
        r = await c.post(f"/api/v2/backtests/{ids[2]}/cancel")
        assert r.status_code == 202
        await wait_state(c, ids[2], {"cancelled"})
        await wait_state(c, ids[0], {"running"})
        r = await c.post(f"/api/v2/backtests/{ids[0]}/cancel")
        assert r.status_code == 202
        final = await wait_state(c, ids[0], {"cancelled", "completed"})
        assert final["state"] == "cancelled" and final["progress"] < 1.0
        r = await c.post(f"/api/v2/backtests/{ids[0]}/cancel")
        assert r.status_code == 409 and r.json()["error"]["code"] == "run_finished"
        await c.post(f"/api/v2/backtests/{ids[1]}/cancel")
        await wait_state(c, ids[1], {"cancelled", "completed"})


async def test_list_newest_first_with_filter_and_cursor(
    server: ServerProcess, other_key: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": other_key}) as c:
        ids = []
        for _ in range(3):
            ids.append((await c.post("/api/v2/backtests", json=backtest())).json()["run_id"])
        page1 = await c.get("/api/v2/backtests", params={"limit": 2})
        assert page1.headers["x-total-count"] == str(len(ids)) and len(page1.json()) == 2
        page2 = await c.get(page1.links["next"]["url"])
        assert page2.headers["x-total-count"] == str(len(ids)) and "link" not in page2.headers
        seen = [i["run_id"] for i in page1.json() + page2.json()]
        assert seen == ids[::-1]
        for run_id in ids:
            await wait_state(c, run_id, {"completed"})
        done = (await c.get("/api/v2/backtests", params={"state": "completed"})).json()
        assert {i["run_id"] for i in done} == set(ids)
        queued = await c.get("/api/v2/backtests", params={"state": "queued"})
        assert queued.json() == [] and queued.headers["x-total-count"] == "0"
    # The first user's listing never shows the other user's runs.
    async with server.client() as c:
        mine = (await c.get("/api/v2/backtests", params={"limit": 200})).json()
        assert not set(ids) & {i["run_id"] for i in mine}


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"limit": "x"}, {"state": "done"}, {"cursor": "!!"}]
)
async def test_list_rejects_bad_params(server: ServerProcess, params: dict[str, Any]) -> None:
    async with server.client() as c:
        r = await c.get("/api/v2/backtests", params=params)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == next(iter(params))


async def test_auth_required_and_other_users_run_is_404(
    server: ServerProcess, other_key: str
) -> None:
    async with server.client() as c:
        run_id = (await c.post("/api/v2/backtests", json=backtest())).json()["run_id"]
    async with httpx.AsyncClient(base_url=server.url) as anon:
        for headers in ({}, {"Authorization": "Bearer bs_wrong"}, {"X-API-Key": "nope"}):
            r = await anon.get("/api/v2/backtests", headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = await anon.post("/api/v2/backtests", json=backtest())
        assert r.status_code == 401
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": other_key}) as other:
        for path in ("", "/results"):
            r = await other.get(f"/api/v2/backtests/{run_id}{path}")
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (await other.post(f"/api/v2/backtests/{run_id}/cancel")).status_code == 404
        assert (await other.get("/api/v2/backtests/not-a-uuid")).status_code == 404


def _without(key: str) -> dict[str, Any]:
    body = backtest()
    del body[key]
    return body


INVALID: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("no symbols", backtest(symbols=[]), 422, "validation_error", "symbols"),
    (
        "101 symbols",
        backtest(symbols=[f"S{i}" for i in range(101)]),
        422,
        "validation_error",
        "symbols",
    ),
    ("duplicate symbols", backtest(symbols=["AAPL", "aapl"]), 422, "validation_error", "symbols"),
    ("missing start", _without("start"), 422, "validation_error", "start"),
    ("bad date", backtest(start="yesterday"), 422, "validation_error", "start"),
    (
        "start after end",
        backtest(start="2024-09-01T00:00:00Z", end="2024-03-01T00:00:00Z"),
        422,
        "validation_error",
        "start",
    ),
    ("zero capital", backtest(capital=0), 422, "validation_error", "capital"),
    ("capital over 1e12", backtest(capital=1e12 + 1), 422, "validation_error", "capital"),
    ("lowercase currency", backtest(currency="usd"), 422, "validation_error", "currency"),
    ("long currency", backtest(currency="DOLLARS"), 422, "validation_error", "currency"),
    ("unknown zone", backtest(timezone="Mars/Olympus"), 422, "validation_error", "timezone"),
    ("zone too long", backtest(timezone="A" * 65), 422, "validation_error", "timezone"),
    ("bad resolution", backtest(resolution="3m"), 422, "validation_error", "resolution"),
    ("unknown field", backtest(leverage=3), 422, "validation_error", "leverage"),
    (
        "bad execution",
        backtest(execution={"fee_bps": -1}),
        422,
        "validation_error",
        "execution.fee_bps",
    ),
    ("no strategy", _without("strategy"), 422, "validation_error", "body"),
    ("two strategies", backtest(strategy_json="{}"), 422, "validation_error", "body"),
    ("tick data", backtest(resolution="tick"), 400, "unsupported_resolution", "resolution"),
    ("unknown symbol", backtest(symbols=["NOPE"]), 400, "unsupported_asset", "symbols.0"),
    ("before the data", backtest(start="2019-01-01T00:00:00Z"), 400, "invalid_date_range", "start"),
    ("after the data", backtest(end="2031-01-01T00:00:00Z"), 400, "invalid_date_range", "end"),
    (
        "unknown strategy id",
        {**_without("strategy"), "strategy_id": "550e8400-e29b-41d4-a716-446655440000"},
        404,
        "not_found",
        "strategy_id",
    ),
    (
        "strategy_json not JSON",
        {**_without("strategy"), "strategy_json": "{oops"},
        400,
        "invalid_strategy",
        "strategy_json",
    ),
]


def _strategy_with(path: str, value: Any) -> dict[str, Any]:
    strat = copy.deepcopy(SEED_STRATEGY)
    group, rest = path.split("[", 1)
    index, key = rest.split("].", 1)
    target = strat[group][int(index)]
    *parents, leaf = key.split(".")
    for p in parents:
        target = target[p]
    target[leaf] = value
    return backtest(strategy=strat)


STRATEGY_ERRORS = [
    ("entry[0].name", "not_a_signal"),
    ("entry[1].params.window", 0),
    ("entry[1].params.window", "fifty"),
    ("entry[0].params.window_fast", 40),  # fast must be below slow
    ("entry[0].timeframe", "1m"),  # finer than the run's 1h bars
]


@pytest.mark.parametrize(
    ("name", "body", "status", "code", "field"), INVALID, ids=[c[0] for c in INVALID]
)
async def test_invalid_create_is_rejected_and_stores_nothing(
    server: ServerProcess, name: str, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    async with server.client() as c:
        before = await run_count(c)
        r = await c.post("/api/v2/backtests", json=body)
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert err["code"] == code and err["field"] == field and err["message"]
        assert await run_count(c) == before


@pytest.mark.parametrize(("path", "value"), STRATEGY_ERRORS)
async def test_bad_strategy_names_the_path(server: ServerProcess, path: str, value: Any) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=_strategy_with(path, value))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_strategy"
    assert err["field"].startswith(f"strategy.{path.rsplit('.', 1)[0]}")


async def test_malformed_and_oversized_bodies(server: ServerProcess) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", content=b"{not json")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = await c.post("/api/v2/backtests", content=b"x" * (2 << 20))
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_symbols_signals_and_health(server: ServerProcess) -> None:
    async with server.client() as c:
        health = await c.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        syms = (await c.get("/api/v2/symbols")).json()["items"]
        by_name = {s["name"]: s for s in syms}
        assert {"AAPL", "BTC-USD", "ETH-USD"} <= set(by_name)
        eth = by_name["ETH-USD"]
        assert eth["synthetic"] is True and "ETH" in eth["aliases"]
        assert "1h" in eth["resolutions"] and eth["first_bar"] < eth["last_bar"]
        sigs = {s["name"] for s in (await c.get("/api/v2/signals")).json()["items"]}
        assert {"macd_bullish_cross", "is_above_sma", "sma_cross_up", "sma_cross_down"} <= sigs
        assert len(sigs) >= 25


async def test_concurrent_creates_all_complete(server: ServerProcess) -> None:
    async with server.client() as c:
        rs = await asyncio.gather(
            *(c.post("/api/v2/backtests", json=backtest(symbols=["BTC"])) for _ in range(6))
        )
        ids = [r.json()["run_id"] for r in rs]
        finals = [await wait_state(c, i, {"completed", "failed"}) for i in ids]
    assert {f["state"] for f in finals} == {"completed"}


SEED_EXECUTION = {
    "min_balance_threshold": 0.1,
    "min_trade_amount": 25.0,
    "max_open_positions": 5,
    "max_trades_per_day": 50,
    "max_risk_per_trade": 0.01,
    "max_units_per_trade": 100.0,
    "max_trade_amount": 10000.0,
    "volatility_window": 24,
    "target_volatility": 0.02,
    "volatility_mode": "stddev",
    "enable_volatility_adjustment": False,
    "cooldown_config": {
        "1h": {
            "short_loss_limit": 4,
            "long_loss_limit": 6,
            "short_window_bars": 48,
            "long_window_bars": 144,
        }
    },
}
CANONICAL_METRICS = {
    "total_return",
    "irr_annualized",
    "volatility_annualized",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown",
    "max_drawdown_duration",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_win",
    "avg_loss",
    "exposure",
    "trade_count",
    "pnl_r",
    "gross_profit_r",
    "gross_loss_r",
    "expectancy_r",
    "avg_win_r",
    "avg_loss_r",
    "wins",
    "losses",
    "both_hit",
    "duration_days",
    "equity_final",
    "equity_peak",
    "commissions",
    "buy_and_hold_return",
    "cagr",
    "alpha",
    "beta",
    "avg_drawdown",
    "avg_drawdown_duration",
    "max_drawdown_duration_days",
    "avg_drawdown_duration_days",
    "best_trade_pct",
    "worst_trade_pct",
    "avg_trade_pct",
    "expectancy_pct",
    "profit_factor_pct",
    "max_trade_duration_days",
    "avg_trade_duration_days",
    "max_trade_duration_bars",
    "avg_trade_duration_bars",
    "sqn",
    "kelly_criterion",
}
COUNTS = ("trade_count", "wins", "losses", "both_hit", "max_drawdown_duration",
          "max_trade_duration_bars")  # fmt: skip


async def test_seed_001_example_with_its_execution_settings(server: ServerProcess) -> None:
    body = backtest(
        symbols=["ETH"],
        start="2024-01-15T00:00:00Z",
        end="2025-01-15T00:00:00Z",
        strategy_json=orjson.dumps(SEED_STRATEGY).decode(),
        execution=SEED_EXECUTION,
    )
    del body["strategy"]
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["config"]["execution"]["atr_multiplier"] == 2.0  # seed 001's default
        done = await wait_state(c, r.json()["run_id"], {"completed", "failed"})
        assert done["state"] == "completed", done
        res = (await c.get(f"/api/v2/backtests/{done['run_id']}/results")).json()
    assert set(res["metrics"]) >= CANONICAL_METRICS
    assert all(type(res["metrics"][k]) is int for k in COUNTS)  # 87, not 87.0
    trips = res["round_trips"]
    assert trips and res["metrics"]["trade_count"] == len(trips)
    assert res["metrics"]["commissions"] == pytest.approx(
        sum(t["commission"] for t in res["trades"])
    )
    # the months compound to the whole period's return, and the period ends at the last bar
    growth = math.prod(1 + m["return"] for m in res["returns_by_month"])
    assert growth - 1 == pytest.approx(res["metrics"]["total_return"], rel=1e-9, abs=1e-12)
    assert [m["month"] for m in res["returns_by_month"]][:2] == ["2024-01", "2024-02"]
    assert res["period"]["end"] == res["equity"][-1]["timestamp"]
    async with server.client() as c:
        doc = (await c.get("/openapi.json")).json()
    schema = {"$ref": "#/components/schemas/Results", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(res)  # the document fits the results
    # Risk sizing: no trade risks more than 1% of the balance at the seed's 2-ATR stop, nor
    # buys more than 100 units or 10,000 of notional.
    buys = [t for t in res["trades"] if t["side"] == "buy"]
    assert all(
        t["quantity"] <= 100 and t["quantity"] * t["price"] <= 10_000 * (1 + 1e-9) for t in buys
    )
    assert {t["exit_reason"] for t in trips} <= {
        "signal",
        "stop",
        "take_profit",
        "trailing_stop",
        "max_hold",
    }


async def test_v2_strategy_with_expressions_shorts_and_stops(server: ServerProcess) -> None:
    strategy = {
        "name": "both ways",
        "side": "both",
        "entry": [
            "cross_above(ema(12), ema(26))",
            {"condition": "close > sma(50)", "signal_type": "FILTER", "timeframe": "4h"},
        ],
        "exit": ["cross_below(ema(12), ema(26))"],
        "short_entry": ["cross_below(ema(12), ema(26))"],
        "short_exit": ["cross_above(ema(12), ema(26))"],
        "stop_loss": {"type": "atr", "value": 2},
        "take_profit": {"type": "r", "value": 3},
        "trailing_stop": {"type": "percent", "value": 0.05},
    }
    execution = {
        "allow_short": True,
        "sizing": "fraction",
        "size": 0.5,
        "fee_bps": 5,
        "max_trade_amount": 1e9,
    }
    async with server.client() as c:
        res = await completed_results(c, backtest(strategy=strategy, execution=execution))
    sides = {t["side"] for t in res["round_trips"]}
    assert sides == {"long", "short"}
    assert {t["exit_reason"] for t in res["round_trips"]} <= {
        "signal",
        "stop",
        "take_profit",
        "trailing_stop",
    }


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"execution": {"sizing": "kelly"}}, 422, "execution.sizing"),
        ({"execution": {"max_risk_per_trade": 2}}, 422, "execution.max_risk_per_trade"),
        (
            {"execution": {"cooldown_config": {"3m": {}}}},
            422,
            "execution.cooldown_config.3m.short_loss_limit",
        ),
        ({"execution": {"fee_model": "match_exchange"}}, 422, "execution.venue"),
        ({"execution": {"fee_model": "match_exchange", "venue": "nosuch"}}, 422, "execution.venue"),
        (
            {"execution": {"leverage": 5, "maintenance_margin_rate": 0.5}},
            422,
            "execution.maintenance_margin_rate",
        ),
        (
            {"execution": {"cooldown_config": {"2h": SEED_EXECUTION["cooldown_config"]["1h"]}}},
            422,
            "execution.cooldown_config",
        ),
        ({"strategy": {"entry": ["rsi(14) <"]}}, 400, "strategy.entry[0].condition"),
        (
            {"strategy": {"entry": [{"name": "rsi_oversold", "params": {"threshold": 101}}]}},
            400,
            "strategy.entry[0].params.threshold",
        ),
    ],
)
async def test_execution_and_strategy_rules(
    server: ServerProcess, change: dict[str, Any], status: int, field: str
) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=backtest(**change))
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field


SWEEP_GRID = {
    "entry[0].params.window_fast": [8, 12],
    "entry[0].params.window_slow": [26, 40],
    "entry[1].params.window": [20, 50, 100],
}


async def test_sweep_runs_every_variant_and_ranks_them(server: ServerProcess) -> None:
    body = backtest(sweep={"grid": SWEEP_GRID, "rank_by": "total_return"})
    async with server.client() as c:
        created, res = await completed_run(c, body)
        assert created["config"]["sweep"]["variant_count"] == 12
        # One variant on its own gives the same figures as in the sweep.
        best = res["sweep"]["best"]["params"]
        alone_strategy = copy.deepcopy(SEED_STRATEGY)
        alone_strategy["entry"][0]["params"]["window_fast"] = best["entry[0].params.window_fast"]
        alone_strategy["entry"][0]["params"]["window_slow"] = best["entry[0].params.window_slow"]
        alone_strategy["entry"][1]["params"]["window"] = best["entry[1].params.window"]
        alone = (await c.post("/api/v2/backtests", json=backtest(strategy=alone_strategy))).json()
        await wait_state(c, alone["run_id"], {"completed"})
        alone_res = (await c.get(f"/api/v2/backtests/{alone['run_id']}/results")).json()
    variants = res["sweep"]["variants"]
    assert len(variants) == 12 and [v["rank"] for v in variants] == list(range(1, 13))
    returns = [v["metrics"]["total_return"] for v in variants]
    assert returns == sorted(returns, reverse=True)
    assert {tuple(sorted(v["params"].items())) for v in variants} == {
        (
            ("entry[0].params.window_fast", f),
            ("entry[0].params.window_slow", s),
            ("entry[1].params.window", w),
        )
        for f in (8, 12)
        for s in (26, 40)
        for w in (20, 50, 100)
    }
    # The sweep's bars carry the longest warm-up of its variants: EMAs seeded with more history
    # than a lone run's differ in the last digits (engine.sweep's docstring), trades not at all.
    assert res["metrics"].keys() == alone_res["metrics"].keys()
    for key, value in alone_res["metrics"].items():
        got = res["metrics"][key]
        assert got == value if value is None else got == pytest.approx(value, rel=1e-9), key
    assert [(t["entry_time"], t["exit_time"]) for t in res["round_trips"]] == [
        (t["entry_time"], t["exit_time"]) for t in alone_res["round_trips"]
    ]
    assert variants[0]["metrics"]["total_return"] == res["metrics"]["total_return"]


async def test_sweep_over_the_work_budget_is_refused(server: ServerProcess) -> None:
    # 10,000 variants of six months of 1-minute bars (263,000 bars): 2.6e9 variant-bars.
    grid = {
        "entry[0].params.window_fast": list(range(2, 12)),
        "entry[1].params.window": list(range(10, 1010)),
    }
    body = {
        **minute_run(),
        "start": "2024-03-01T00:00:00Z",
        "end": "2024-09-01T00:00:00Z",
        "sweep": {"grid": grid},
    }
    async with server.client() as c:
        before = await run_count(c)
        r = await c.post("/api/v2/backtests", json=body)
        assert r.status_code == 422, r.text
        assert (
            r.json()["error"]["field"] == "sweep" and "variant-bars" in r.json()["error"]["message"]
        )
        assert await run_count(c) == before


@pytest.mark.parametrize(
    ("sweep", "status", "field"),
    [
        ({"grid": SWEEP_GRID, "rank_by": "luck"}, 422, "sweep.rank_by"),
        ({"grid": {"entry[9].params.window": [1]}}, 422, "sweep.grid.entry[9].params.window"),
        (
            {"grid": {"entry[0].params.window_fast": [12, 30]}},
            400,
            "strategy.entry[0].params.window_fast",
        ),
        ({"grid": {f"entry[0].params.p{i}": list(range(10)) for i in range(5)}}, 422, "sweep.grid"),
        ({"grid": {}}, 422, "sweep.grid"),
        ({"grid": {"entry[0].timeframe": ["1h", "1m"]}}, 400, "strategy.entry[0].timeframe"),
        ({"grid": {"exit": [[{"name": "sma_cross_down"}]]}}, 422, "sweep.grid.exit.0"),
        (
            {"grid": {"entry[1].params.window": ["x" * 65]}},
            422,
            "sweep.grid.entry[1].params.window.0",
        ),
    ],
)
async def test_sweep_rules(
    server: ServerProcess, sweep: dict[str, Any], status: int, field: str
) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=backtest(sweep=sweep))
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field


DAY_START_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z, the first bar's open
SECOND_NS = 1_000_000_000
EMA_CROSS = {"entry": ["cross_above(ema(12), ema(26))"], "exit": ["cross_below(ema(12), ema(26))"]}


def one_day(step_ns: int, n: int) -> Bars:
    """`n` bars `step_ns` apart from DAY_START_NS, gently oscillating."""
    close = 100.0 + np.sin(np.arange(n) / 30.0)
    open_ = np.r_[close[0], close[:-1]]
    ts = DAY_START_NS + np.arange(n, dtype=np.int64) * step_ns
    return Bars(ts, open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(n))


async def test_end_inside_the_last_bar_is_covered(server: ServerProcess) -> None:
    # A day of 1-minute bars written into the running server's store: the last opens 23:59:00.
    name = f"EDGE{uuid.uuid4().hex[:6].upper()}"
    BarStore(server.data_dir / "bars").write(name, one_day(60 * SECOND_NS, 1440))
    body = backtest(symbols=[name], resolution="1m", strategy=EMA_CROSS,
                    start="2024-01-01T00:00:00Z", end="2024-01-01T23:59:59Z")  # fmt: skip
    async with server.client() as c:
        _, res = await completed_run(c, body)
        assert res["equity"][-1]["timestamp"].startswith("2024-01-01T23:59"), "the last bar ran"
        before = await run_count(c)
        for start, end, field in (
            ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "end"),  # last open + 60 s
            ("2023-12-31T23:59:59Z", "2024-01-01T12:00:00Z", "start"),
        ):
            r = await c.post("/api/v2/backtests", json={**body, "start": start, "end": end})
            assert r.status_code == 400, r.text
            err = r.json()["error"]
            assert err["code"] == "invalid_date_range" and err["field"] == field
            assert "from 2024-01-01T00:00:00Z to 2024-01-01T23:59:00Z" in err["message"]
            assert "the last bar ends at 2024-01-02T00:00:00Z" in err["message"]
        assert await run_count(c) == before


async def test_tick_data_ends_at_the_last_tick(server: ServerProcess) -> None:
    # Ticks have no length: the data covers up to the last tick itself (here 2024-01-01T01:39:50Z).
    name = f"TICK{uuid.uuid4().hex[:6].upper()}"
    BarStore(server.data_dir / "bars").write(name, one_day(10 * SECOND_NS, 600), resolution="tick")
    body = backtest(symbols=[name], resolution="1m", strategy=EMA_CROSS,
                    start="2024-01-01T00:00:00Z", end="2024-01-01T01:39:50.000001Z")  # fmt: skip
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=body)
        assert r.status_code == 400 and r.json()["error"]["field"] == "end", r.text
        assert "2024-01-01T01:39:50Z" in r.json()["error"]["message"]
        r = await c.post("/api/v2/backtests", json={**body, "end": "2024-01-01T01:39:50Z"})
        assert r.status_code == 201, r.text
        await c.post(f"/api/v2/backtests/{r.json()['run_id']}/cancel")
