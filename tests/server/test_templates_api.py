"""Templates through the v2 API: the catalog, a grid and a DCA plan, a signal template, errors."""

from typing import Any

import pytest

from tests.server.api_helpers import completed_results, wait_state
from tests.server.harness import ServerProcess, backtest

GRID = {"grid_levels": 10, "upper_price": "55000", "lower_price": "38000"}


def template_run(template: str, params: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = backtest(
        **{"symbols": ["BTC-USD"], "template": template, "template_params": params, **overrides}
    )
    del body["strategy"]
    return body


async def test_catalog_lists_templates_with_schemas(server: ServerProcess) -> None:
    async with server.client() as c:
        items = {t["name"]: t for t in (await c.get("/api/v2/templates")).json()["items"]}
    assert {"tpl_grid", "tpl_dca", "tpl_ma_cross", "tpl_rsi_reversion", "tpl_breakout"} <= set(
        items
    )
    grid = items["tpl_grid"]
    assert grid["multi_symbol"] is False and items["tpl_ma_cross"]["multi_symbol"] is True
    assert grid["params"]["type"] == "object" and "grid_levels" in grid["params"]["properties"]


@pytest.mark.parametrize(
    ("template", "params"),
    [
        ("tpl_grid", GRID),
        ("tpl_dca", {"amount": "500", "interval": "1w", "take_profit": 0.05}),
        ("tpl_ma_cross", {"ma_type": "ema", "window_fast": 12, "window_slow": 26}),
    ],
)
async def test_template_runs_complete_with_fills(
    server: ServerProcess, template: str, params: dict[str, Any]
) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=template_run(template, params))
        assert r.status_code == 201, r.text
        config = r.json()["config"]
        assert config["template"] == template and config["template_params"] == params
        done = await wait_state(c, r.json()["run_id"], {"completed", "failed"})
        assert done["state"] == "completed", done
        res = (await c.get(f"/api/v2/backtests/{done['run_id']}/results")).json()
    assert res["trades"], f"{template} should trade on six months of hourly BTC"
    assert all(t["commission"] >= 0 for t in res["trades"])
    # Fees are 10 bps of notional for every fill (maker and taker alike under fixed_bps).
    for t in res["trades"]:
        assert t["commission"] == pytest.approx(t["quantity"] * t["price"] * 0.001, rel=1e-9)
    last = res["equity"][-1]
    assert last["equity"] == pytest.approx(last["cash"] + last["positions"], rel=1e-9)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (
            template_run("tpl_grid", {**GRID, "grid_levels": 1}),
            400,
            "invalid_template",
            "template_params.grid_levels",
        ),
        (
            template_run("tpl_grid", {**GRID, "lower_price": "60000"}),
            400,
            "invalid_template",
            "template_params.lower_price",
        ),
        (
            template_run("tpl_grid", GRID, symbols=["BTC-USD", "ETH-USD"]),
            400,
            "invalid_template",
            "symbols",
        ),
        (template_run("tpl_nope", {}), 400, "invalid_template", "template"),
        (
            {**template_run("tpl_grid", GRID), "strategy": {"entry": ["close > open"]}},
            422,
            "validation_error",
            "body",
        ),
        ({**backtest(), "template_params": GRID}, 422, "validation_error", "body"),
    ],
)
async def test_template_errors(
    server: ServerProcess, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    async with server.client() as c:
        r = await c.post("/api/v2/backtests", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["code"], err["field"]) == (code, field)


SCORE = {
    "name": "momentum score",
    "type": "score",
    "variables": {"fast": "ema(12)", "slow": "ema(26)", "r": "rsi(14)"},
    "conditions": [
        {"name": "trend_up", "when": "fast > slow", "score": 2},
        {"name": "not_overbought", "when": "r < 70", "score": 1},
        {"name": "above_200", "when": "close > sma(200)", "score": 1, "timeframe": "4h"},
    ],
    "threshold": 3,
    "side": "long",
    "risk": {"stop": {"type": "atr", "value": 1.5}, "reward_risk": 3.0},
    "exit": ["fast < slow"],
}


async def test_score_strategy_reports_seed_003_results(server: ServerProcess) -> None:
    execution = {
        "sizing": "fraction",
        "size": 1.0,
        "max_trade_amount": 1e9,
        "max_units_per_trade": 1e9,
    }
    async with server.client() as c:
        res = await completed_results(c, backtest(strategy=SCORE, execution=execution))
        bad = await c.post(
            "/api/v2/backtests",
            json=backtest(
                strategy={**SCORE, "conditions": [{"name": "x", "when": "fst > slow", "score": 1}]}
            ),
        )
    score = res["score"]
    assert set(score["conditions_distribution_pct"]) == {"trend_up", "not_overbought", "above_200"}
    assert all(0 <= v <= 1 for v in score["conditions_distribution_pct"].values())
    assert sum(score["score_distribution_pct"].values()) == pytest.approx(1.0)
    summary = score["summary"]
    assert summary["trades"] == len(res["round_trips"]) > 0
    assert summary["wins"] + summary["losses"] <= summary["trades"]
    detail = score["trades_detail"]
    assert len(detail) == summary["trades"] and all(d["total_score_at_entry"] >= 3 for d in detail)
    # Targets sit at 3R: no winner makes more than 3R (fees only take away).
    assert all(
        t["r_multiple"] <= 3.0 + 1e-9 for t in res["round_trips"] if t["r_multiple"] is not None
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "strategy.conditions[0].when"


async def test_grid_pays_the_venues_maker_rate_on_resting_orders(server: ServerProcess) -> None:
    # Coinbase Advanced's published base tier: 40 bps maker, 60 bps taker.
    execution = {"fee_model": "match_exchange", "venue": "coinbase"}
    async with server.client() as c:
        r = await c.post(
            "/api/v2/backtests", json=template_run("tpl_grid", GRID, execution=execution)
        )
        assert r.status_code == 201, r.text
        done = await wait_state(c, r.json()["run_id"], {"completed", "failed"})
        assert done["state"] == "completed", done
        res = (await c.get(f"/api/v2/backtests/{done['run_id']}/results")).json()
    rates = {round(t["commission"] / (t["quantity"] * t["price"]), 10) for t in res["trades"]}
    assert 0.004 in rates and rates <= {0.004, 0.006}
