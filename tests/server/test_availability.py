"""Availability checks before queuing: unknown symbols, missing resolutions, ranges outside data."""

from pathlib import Path

import backtesting
import orjson
import pytest

from engine.data.demo import ensure_demo_data
from engine.data.importer import import_csv
from engine.data.store import BarStore
from protocol.errors import ApiError
from server.translate import build_config
from tests.server.harness import SEED_STRATEGY, backtest

FILES = Path(backtesting.__file__).parent / "test"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> BarStore:
    s = BarStore(tmp_path_factory.mktemp("data") / "bars")
    ensure_demo_data(s, days=400)
    import_csv(s, FILES / "GOOG.csv", "GOOG")
    return s


def daily(**overrides):
    """The seed strategy on daily bars."""
    text = orjson.dumps(SEED_STRATEGY).decode().replace('"1h"', '"1d"')
    return {"resolution": "1d", "strategy": orjson.loads(text), **overrides}


def error(store: BarStore, **overrides) -> ApiError:
    with pytest.raises(ApiError) as err:
        build_config(orjson.dumps(backtest(**overrides)), store)
    return err.value


@pytest.mark.parametrize("resolution", ["tick", "second"])
def test_tick_or_second_without_such_data_names_the_symbol(store, resolution):
    exc = error(store, resolution=resolution, symbols=["eth"])
    assert (exc.status, exc.code, exc.field) == (400, "unsupported_resolution", "resolution")
    assert f"ETH-USD has no {resolution} data (stored at 1m)" in exc.message


def test_intraday_run_on_daily_data_is_unsupported(store):
    exc = error(
        store,
        resolution="1h",
        symbols=["GOOG"],
        start="2010-01-04T00:00:00Z",
        end="2011-01-01T00:00:00Z",
    )
    assert exc.code == "unsupported_resolution" and "GOOG has no 1h data" in exc.message
    assert "it can run at: 1d" in exc.message


def test_range_outside_the_data_names_the_available_range(store):
    exc = error(
        store,
        **daily(symbols=["GOOG"]),
        start="2014-01-01T00:00:00Z",
        end="2015-01-01T00:00:00Z",
    )
    assert (exc.status, exc.code, exc.field) == (400, "invalid_date_range", "start")
    assert "GOOG has data from 2004-08-19T00:00:00Z to 2013-03-01T00:00:00Z" in exc.message


def test_unknown_symbol(store):
    exc = error(store, symbols=["BTC-EUR"])
    assert (exc.status, exc.code, exc.field) == (400, "unsupported_asset", "symbols.0")


def test_imported_daily_symbol_is_accepted(store):
    config = build_config(
        orjson.dumps(
            backtest(
                **daily(symbols=["goog"], resolution="day"),
                start="2010-01-04T00:00:00Z",
                end="2012-01-01T00:00:00Z",
            )
        ),
        store,
    )
    assert config["symbols"] == ["GOOG"] and config["interval"] == "1d"
