"""A person's own CSV: one import command, then listed and backtested through the running server."""

import subprocess
import sys
from pathlib import Path

import backtesting

from tests.server.api_helpers import wait_state
from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest

GOOG = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
ROOT = Path(__file__).resolve().parents[2]


def daily(strategy: dict) -> dict:
    out = {**strategy, "entry": [{**s, "timeframe": "1d"} for s in strategy["entry"]]}
    return out


async def test_imported_csv_is_listed_and_backtested(server: ServerProcess) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "data", "import", str(GOOG), "--symbol", "GOOG-TEST",
         "--data-dir", str(server.data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    async with server.client() as c:
        symbols = {s["name"]: s for s in (await c.get("/api/v2/symbols")).json()["items"]}
        goog = symbols["GOOG-TEST"]
        assert goog["calendar"] == "exchange" and goog["synthetic"] is False
        assert goog["first_bar"].startswith("2004-08-19") and goog["last_bar"].startswith(
            "2013-03-01"
        )
        body = backtest(
            symbols=["goog-test"], resolution="day", start="2006-01-01T00:00:00Z",
            end="2012-12-31T00:00:00Z", strategy=daily(SEED_STRATEGY),
            execution={"sizing": "fraction", "size": 1.0, "lot_size": 1, "fee_bps": 10,
                       "atr_multiplier": 0, "max_trade_amount": 1e9, "max_units_per_trade": 1e9},
        )  # fmt: skip
        r = await c.post("/api/v2/backtests", json=body)
        assert r.status_code == 201, r.text
        final = await wait_state(c, r.json()["run_id"], {"completed", "failed"})
        assert final["state"] == "completed", final
        res = (await c.get(f"/api/v2/backtests/{final['run_id']}/results")).json()
        assert res["trades"] and all(t["symbol"] == "GOOG-TEST" for t in res["trades"])
        assert all(float(t["quantity"]).is_integer() for t in res["trades"])  # lot_size 1
        # An exchange calendar annualises daily bars with 252 a year (fewer than 2,000 bars,
        # so the equity curve comes back whole).
        eq = [p["equity"] for p in res["equity"]]
        cagr = (eq[-1] / eq[0]) ** (252 / (len(eq) - 1)) - 1
        assert abs(res["metrics"]["irr_annualized"] - cagr) < 1e-9 * max(1.0, abs(cagr))
        outside = await c.post("/api/v2/backtests", json={**body, "end": "2014-01-01T00:00:00Z"})
        assert outside.status_code == 400
        err = outside.json()["error"]
        assert err["code"] == "invalid_date_range" and "2013-03-01" in err["message"]
        hourly = await c.post("/api/v2/backtests", json={**body, "resolution": "1h"})
        assert hourly.status_code == 400
        assert hourly.json()["error"]["code"] == "unsupported_resolution"
        assert "GOOG-TEST" in hourly.json()["error"]["message"]
