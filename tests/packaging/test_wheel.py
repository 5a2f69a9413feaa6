"""The built wheel, installed into a virtualenv of its own (not editable), serves every kind of
run: a plain run, a portfolio, a sweep, a score strategy and every template of the catalog."""

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.wheel import (
    REPO,
    Installed,
    WheelServer,
    clean_env,
    end_background,
    prepared,
    site_packages,
)
from tests.server.api_helpers import completed_run
from tests.server.harness import backtest

SCORE = {
    "name": "trend score",
    "type": "score",
    "variables": {"fast": "ema(12)", "slow": "ema(26)", "r": "rsi(14)"},
    "conditions": [
        {"name": "trend_up", "when": "fast > slow", "score": 2},
        {"name": "not_overbought", "when": "r < 70", "score": 1},
    ],
    "threshold": 3,
    "side": "long",
    "risk": {"stop": {"type": "atr", "value": 1.5}, "reward_risk": 2.0},
    "exit": ["fast < slow"],
}
EMA_CROSS = {"entry": ["cross_above(ema(12), ema(26))"], "exit": ["cross_below(ema(12), ema(26))"]}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel built from this checkout, installed into the cached virtualenv (held for this
    module alone)."""
    end_background(stop=False)
    with prepared(tmp_path_factory.mktemp("wheel")) as done:
        yield done


@pytest.fixture(scope="module")
def wheel_server(
    installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WheelServer]:
    """`barstream serve` from the wheel's virtualenv, with a data directory of its own."""
    srv = WheelServer(tmp_path_factory.mktemp("wheel-serve") / "data", installed=installed)
    srv.start()
    yield srv
    srv.stop()


def test_packages_come_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    code = "import client, engine, protocol, server; print(engine.__file__, server.__file__)"
    out = subprocess.run(
        [str(installed.python), "-c", code],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=clean_env(),
    ).stdout.split()  # fmt: skip
    inside = site_packages(installed.venv)
    assert all(Path(f).is_relative_to(inside) for f in out), out
    assert not any(Path(f).is_relative_to(REPO) for f in out), out
    editable = list(inside.glob("__editable__*")) + list(inside.glob("*.egg-link"))
    assert not editable, editable


def assert_results(res: dict[str, Any]) -> None:
    """A completed run's results: metrics, an equity curve that adds up, trades."""
    assert res["metrics"] and res["equity"] and res["trades"], sorted(res)
    last = res["equity"][-1]
    assert last["equity"] == pytest.approx(last["cash"] + last["positions"], rel=1e-9)


async def test_plain_run(wheel_server: WheelServer) -> None:
    async with wheel_server.client() as c:
        _, res = await completed_run(c, backtest())
    assert_results(res)


async def test_portfolio(wheel_server: WheelServer) -> None:
    symbols = ["BTC-USD", "ETH-USD", "SOL-USDC"]
    execution = {"sizing": "fraction", "size": 0.3, "max_open_positions": 3}
    body = backtest(symbols=symbols, strategy=EMA_CROSS, execution=execution)
    async with wheel_server.client() as c:
        _, res = await completed_run(c, body)
    assert_results(res)
    assert {p["symbol"] for p in res["exposure"]} == set(symbols)


async def test_sweep(wheel_server: WheelServer) -> None:
    grid = {"entry[0].params.window_fast": [8, 12], "entry[1].params.window": [20, 50]}
    body = backtest(sweep={"grid": grid, "rank_by": "total_return"})
    async with wheel_server.client() as c:
        created, res = await completed_run(c, body)
    assert created["config"]["sweep"]["variant_count"] == 4
    assert [v["rank"] for v in res["sweep"]["variants"]] == [1, 2, 3, 4]


async def test_score_strategy(wheel_server: WheelServer) -> None:
    async with wheel_server.client() as c:
        _, res = await completed_run(c, backtest(strategy=SCORE))
    assert_results(res)
    assert res["score"]["summary"]["trades"] == len(res["round_trips"])
    assert set(res["score"]["conditions_distribution_pct"]) == {"trend_up", "not_overbought"}


async def test_every_template(wheel_server: WheelServer) -> None:
    async with wheel_server.client() as c:
        catalog = (await c.get("/api/v2/templates")).json()["items"]
        assert len(catalog) >= 5, catalog
        for template in catalog:
            body = backtest(
                symbols=["BTC-USD"], template=template["name"], template_params=template["example"]
            )
            del body["strategy"]
            _, res = await completed_run(c, body)
            assert_results(res)  # each example trades on six months of the demo's hourly BTC
