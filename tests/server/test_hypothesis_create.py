"""Property tests of `POST /api/v2/backtests` against the real shared server, with hypothesis.

Bodies are valid ones (short windows on demo data, strategies of every dialect from the
grammar generators of tests/engine/test_hypothesis_expr.py, execution settings anywhere in
their ranges, templates, sweeps) and mutations of them: fields dropped, added, or set to the
wrong type, out of range, odd strings (NUL, lone surrogates, unicode, 10,000 characters), huge
numbers, NaN, odd dates, time zones and resolutions; and bodies that are not JSON objects.

- Every answer is a 201, or a 4xx whose error names a `field` (or 400 `invalid_json`): never a
  5xx, never an error that does not say which field is wrong.
- Every run created is followed to its end (they are short: at most about 200 bars), and must
  complete: a run that fails (`engine_error`, `internal_error`, `invalid_strategy` at run time)
  on a body that was accepted is input that could have been checked before it was queued.

Derandomized and bounded: the same bodies every time, about 20 s on two cores (no shrinking:
runs are followed in batches, so a failure may surface on a later example; its message shows the
body that made the failed run).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from engine.strategy.compile import StrategyError, compile_strategy
from engine.strategy.lookback import warmup_bars
from engine.templates import TEMPLATES
from tests.engine.strategy.generators import (
    JUNK,
    bool_expr,
    mutated,
    rule_strategy,
    score_strategy,
    seed001_strategy,
)
from tests.server.harness import SEED_STRATEGY, ServerProcess, backtest

SETTINGS = settings(
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),  # no shrinking (see above)
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def bounded(examples: int) -> settings:
    """Derandomized settings with this many examples."""
    return settings(SETTINGS, max_examples=examples)


# --- the server and what was created on it -----------------------------------------------------


class Api:
    """A sync client of one user of the shared server, remembering every run it created."""

    def __init__(self, server: ServerProcess, key: str) -> None:
        self.http = httpx.Client(
            base_url=server.url,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=60,
        )
        self.created: dict[str, Any] = {}  # run id -> the body that created it
        self.pending: list[str] = []  # created, not yet seen finished
        self.saved = [self.save(path, body) for path, body in SAVED]
        deleted = self.http.delete(f"/api/v2/strategies/{self.saved[-1]}")  # starts no run: 404
        assert deleted.status_code == 204, deleted.text

    def save(self, path: str, body: dict[str, Any]) -> str:
        """Save a strategy; return its id."""
        answer = self.http.post(path, content=encode(body))
        assert answer.status_code == 201, answer.text
        return answer.json()["strategy_id"]

    def with_saved(self, body: Any) -> Any:
        """Put a saved strategy's id where the body says `@saved<k>`."""
        ref = body.get("strategy_id") if isinstance(body, dict) else None
        if isinstance(ref, str) and ref.startswith("@saved"):
            body = {**body, "strategy_id": self.saved[int(ref[6:]) % len(self.saved)]}
        return body

    def post(self, content: bytes | str | None, body: Any) -> httpx.Response:
        """Post a create body (`content`, or `body` encoded); judge the answer; follow at most
        20 unfinished runs at a time."""
        body = self.with_saved(body)
        content = encode(body) if content is None else content
        if len(self.pending) >= 20:
            self.finish(self.pending[:10])
        answer = self.http.post("/api/v2/backtests", content=content)
        judge(answer, body)
        if answer.status_code == 201:
            run_id = answer.json()["run_id"]
            self.created[run_id] = body
            self.pending.append(run_id)
        return answer

    def finish(self, run_ids: list[str], timeout: float = 120.0) -> None:
        """Wait for runs to end; each must have completed."""
        end = time.monotonic() + timeout
        for run_id in run_ids:
            while True:
                status = self.http.get(f"/api/v2/backtests/{run_id}").json()
                if status["state"] in ("completed", "failed", "cancelled"):
                    break
                assert time.monotonic() < end, (
                    f"run {run_id} still {status['state']} at {status['progress']:.0%}: "
                    f"{json.dumps(self.created[run_id])[:3000]}"
                )
                time.sleep(0.05)
            assert status["state"] == "completed", (
                f"an accepted body made a run that ended {status['state']} "
                f"{status.get('error')}: {json.dumps(self.created[run_id])[:3000]}"
            )
            self.pending.remove(run_id)


def judge(answer: httpx.Response, body: Any) -> None:
    """201, or a 4xx naming the field (400 invalid_json needs none); never a 5xx."""
    shown = body if isinstance(body, bytes | str) else json.dumps(body, allow_nan=True)
    where = f"{answer.status_code} {answer.text[:500]}\nfor {shown[:3000]!r}"
    assert answer.status_code == 201 or 400 <= answer.status_code < 500, where
    if answer.status_code == 201:
        return
    assert answer.status_code not in (429, 413), where  # the test keeps under those limits
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and error["message"], where
    assert error["code"] == "invalid_json" or error.get("field"), where


# Saved strategies a body may name with "strategy_id": "@saved<k>" (see Api.with_saved).
SAVED: list[tuple[str, dict[str, Any]]] = [
    ("/api/v2/strategies", {"name": "seed", "asset": "ETH", "strategy": SEED_STRATEGY,
                            "execution_config": {"max_hold_bars": 48, "atr_multiplier": 3.0}}),
    ("/api/v1/strategies", {**SEED_STRATEGY, "asset": "BTC"}),
    ("/api/v2/strategies", {"name": "score", "strategy": {
        "name": "s", "type": "score", "variables": {"fast": "ema(12)", "slow": "ema(26)"},
        "conditions": [{"name": "up", "when": "fast > slow", "score": 1}], "threshold": 1,
        "risk": {"stop": {"type": "percent", "value": 0.02}}}}),
    ("/api/v2/strategies", {"name": "busy", "asset": "SOL-USDC", "execution_config": {
        "allow_short": True, "leverage": 3}, "strategy": {"name": "b", "side": "both",
        "entry": ["close > open"], "exit": ["close < open"], "short_entry": ["close < open"]}}),
    ("/api/v2/strategies", {"name": "deleted", "strategy": SEED_STRATEGY}),  # deleted at once
]  # fmt: skip


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[Api]:
    """A user of its own, so its runs neither count against nor show up in other tests' lists."""
    client = Api(server, server.create_key("hypothesis"))
    yield client
    client.http.close()


def encode(body: Any) -> bytes:
    """JSON as a client might send it: NaN and Infinity tokens, lone surrogates as escapes."""
    return json.dumps(body, allow_nan=True).encode()


# --- valid bodies ------------------------------------------------------------------------------

EPOCH = datetime(2024, 1, 2, tzinfo=UTC)
SYMBOLS = ["ETH-USD", "ETH", "btc", "BTC-USDT", "AAPL", "SOL-USDC", "MSFT", "eth-usdc"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati"]


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


STORED = {"1m": "1m", "minute": "1m", "15m": "15m"}
MINUTES = tuple(STORED)  # resolutions on which a long warm-up takes minutes (see cheap())
STEP_MINUTES = {"1m": 1, "minute": 1, "15m": 15, "1h": 60, "hour": 60, "4h": 240, "1d": 1440}


@st.composite
def window(draw: st.DrawFn, resolution: str) -> tuple[str, str]:
    """A start and an end 1 to 200 bars apart (most of the time), inside the demo data."""
    start = EPOCH + timedelta(days=draw(st.integers(0, 500)), minutes=draw(st.integers(0, 1439)))
    bars = draw(st.integers(1, 200))
    minutes = bars * STEP_MINUTES[resolution] + draw(st.sampled_from([0, 0, 0, 1, -1]))
    return iso(start), iso(start + timedelta(minutes=max(minutes, 1)))


@st.composite
def fee_tiers(draw: st.DrawFn) -> list[dict[str, float]]:
    """A tier table: from 0, strictly ascending volumes."""
    volumes = draw(st.lists(st.floats(1, 1e15), max_size=2, unique=True))
    return [
        {
            "min_volume_30d": v,
            "maker_bps": draw(st.floats(0, 9999)),
            "taker_bps": draw(st.floats(0, 9999)),
        }
        for v in [0.0, *sorted(volumes)]
    ]


COOLDOWN_TIER = st.fixed_dictionaries(
    {
        "short_loss_limit": st.integers(1, 10_000),
        "long_loss_limit": st.integers(1, 10_000),
        "short_window_bars": st.integers(1, 10_000_000),
        "long_window_bars": st.integers(1, 10_000_000),
    }
)
VENUES = ["binance", "binance_usdm", "bybit", "okx", "coinbase", "kraken"]
POSITIVE = st.floats(1e-9, 1.0) | st.floats(1.0, 1e12)

# Every execution setting, anywhere in its documented range (the extremes too).
EXECUTION: dict[str, st.SearchStrategy[Any]] = {
    "fee_model": st.sampled_from(["none", "fixed_bps", "tiered_maker_taker", "match_exchange"]),
    "fee_bps": st.floats(0, 1000),
    "slippage_bps": st.floats(0, 1000),
    "fill": st.sampled_from(["next_open", "close"]),
    "sizing": st.sampled_from(["risk", "fraction", "units", "amount"]),
    "size": POSITIVE,
    "lot_size": st.floats(0, 1e6),
    "allow_short": st.booleans(),
    "min_balance_threshold": st.floats(0, 1),
    "min_trade_amount": st.floats(0, 1e12),
    "max_open_positions": st.integers(1, 1000),
    "max_trades_per_day": st.integers(1, 100_000),
    "max_risk_per_trade": st.floats(1e-9, 1),
    "max_units_per_trade": POSITIVE | st.just(1e15),
    "max_trade_amount": POSITIVE | st.just(1e15),
    "volatility_window": st.integers(2, 100_000),
    "target_volatility": st.floats(1e-9, 10),
    "volatility_mode": st.sampled_from(["stddev", "atr"]),
    "enable_volatility_adjustment": st.booleans(),
    "atr_period": st.integers(1, 10_000),
    "atr_multiplier": st.floats(0, 100),
    "max_hold_bars": st.integers(1, 10_000_000),
    "cooldown_config": st.dictionaries(
        st.sampled_from(["1m", "5m", "15m", "1h", "4h", "1d"]), COOLDOWN_TIER, max_size=2
    ),
    "cooldown_bars": st.integers(0, 10_000_000),
    "daily_momentum_limit": st.integers(1, 10_000),
    "weekly_momentum_limit": st.integers(1, 10_000),
    "fee_tiers": fee_tiers(),
    "venue": st.sampled_from(VENUES),
    "leverage": st.floats(1, 125),
    "maintenance_margin_rate": st.floats(0, 0.999),
}


@st.composite
def execution(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(sorted(EXECUTION)), max_size=6, unique=True))
    return {k: draw(EXECUTION[k]) for k in keys}


def template_params(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Params of a seed 004 template inside their rules (prices near the demo data's)."""
    out: dict[str, st.SearchStrategy[Any]] = {}
    for key, p in TEMPLATES[name].params.items():
        if p.choices:
            out[key] = st.sampled_from(p.choices)
        elif p.kind == "integer":
            out[key] = st.integers(int(p.minimum or 0), int(min(p.maximum or 10**6, 10**6)))
        elif key.endswith("_price"):
            out[key] = st.floats(1, 100_000)
        else:
            lo, hi = p.minimum or 0.0, p.maximum if p.maximum is not None else 1e6
            out[key] = st.floats(lo, hi, exclude_min=p.exclusive_minimum or lo == 0)
    return st.fixed_dictionaries({}, optional=out)


@st.composite
def busy_strategy(draw: st.DrawFn) -> dict[str, Any]:
    """A strategy that trades on most bars, both ways, with stops and targets: sizing, fees,
    leverage and the other execution settings at their extremes all get exercised."""
    spec: dict[str, Any] = {
        "name": "busy",
        "side": draw(st.sampled_from(["long", "short", "both"])),
        "entry": ["close > open"],
        "exit": ["close < open"],
    }
    if spec["side"] == "both":
        spec["short_entry"], spec["short_exit"] = ["close < open"], ["close > open"]
    for key, kinds in (("stop_loss", ["atr", "percent"]), ("take_profit", ["atr", "percent", "r"]),
                       ("trailing_stop", ["atr", "percent"])):  # fmt: skip
        if draw(st.booleans()):
            spec[key] = {"type": draw(st.sampled_from(kinds)), "value": draw(st.floats(1e-6, 0.99))}
    if draw(st.booleans()):
        spec["max_hold_bars"] = draw(st.integers(1, 10))
    return spec


STRATEGIES = st.one_of(
    busy_strategy(),
    busy_strategy(),
    st.just(SEED_STRATEGY),
    rule_strategy(bad=False),
    score_strategy(bad=False),
    seed001_strategy(bad=False),
)


def cheap(body: dict[str, Any]) -> dict[str, Any]:
    """The body, on hourly bars if on minute bars its warm-up would be long: `wma(5000) > close`
    on 1h conditions of a 1m run needs 900,000 bars first, and minutes of a worker."""
    spec, resolution = body.get("strategy"), body.get("resolution")
    if not isinstance(spec, dict) or resolution not in MINUTES:
        return body
    try:
        strategy = compile_strategy(spec)
    except StrategyError:
        return body
    if warmup_bars(strategy, STORED[resolution]) > 20_000:
        return {**body, "resolution": "1h"}
    return body


@st.composite
def valid_body(draw: st.DrawFn) -> dict[str, Any]:
    """A body the server should accept most of the time (a template's prices, a strategy's
    timeframe finer than the run's, a short side without allow_short may still be refused)."""
    resolution = draw(st.sampled_from(["1h", "1h", "hour", "4h", "1d", "15m", "1m", "minute"]))
    start, end = draw(window(resolution))
    body = backtest(start=start, end=end, resolution=resolution)
    del body["execution"]
    body["symbols"] = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=2, unique=True))
    for key, values in (
        ("capital", st.floats(1, 1e12)),
        ("currency", st.sampled_from(["EUR", "USDT", "ABCDE"])),
        ("timezone", st.sampled_from(ZONES)),
        ("name", st.text(max_size=200)),
        ("execution", execution()),
    ):
        if draw(st.booleans()):
            body[key] = draw(values)
        else:
            body.pop(key, None)
    kind = draw(st.integers(0, 10))
    if kind == 10:
        body["strategy_id"] = f"@saved{draw(st.integers(0, len(SAVED) - 1))}"
        del body["strategy"]
        if draw(st.booleans()):
            del body["symbols"]  # the saved strategy's asset, if it has one
    elif kind == 0:
        del body["strategy"]
        body["symbols"] = body["symbols"][:1]
        body["template"] = name = draw(st.sampled_from(sorted(TEMPLATES)))
        body["template_params"] = draw(template_params(name))
    elif kind == 1:
        body["strategy_json"] = json.dumps(body.pop("strategy"))
    elif kind == 2:
        body["sweep"] = {
            "grid": {"entry[1].params.window": draw(st.lists(st.integers(2, 300), min_size=1))},
            "rank_by": draw(st.sampled_from(["sharpe_ratio", "total_return", "max_drawdown"])),
        }
    else:
        body["strategy"] = draw(STRATEGIES)
    return cheap(body)


# --- mutations ---------------------------------------------------------------------------------

ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "\udfff x",
        "é",
        "🙂" * 3,
        "\u202e",
        "x" * 10_000,
        "null",
        "NaN",
        "1e308",
        "-1",
        "true",
        "{}",
        "[]",
        "ETH-USD ",
        "eth\u0000",
        "\uff25\uff34\uff28",  # fullwidth ETH,
    ]
)
ODD_NUMBERS = st.sampled_from(
    [0, -0.0, -1, 1, 1e-300, 1e308, -1e308, 10**30, -(10**30), 2**63, 2**64 + 1, math.nan,
     math.inf, -math.inf, 0.5, 1e12, 1e12 + 1, 100_000.0000001]
)  # fmt: skip
ODD_DATES = st.sampled_from(
    [
        "2024-03-01",
        "2024-03-01T00:00",
        "2024-03-01T00:00:00+14:00",
        "2024-03-01T00:00:00-12:00",
        "2024-03-01T00:00:00+25:00",
        "2024-02-30T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-14:00",
        "1970-01-01T00:00:00Z",
        "2023-12-31T23:00:00Z",
        "2099-01-01T00:00:00Z",
        "2024-03-01T00:00:00.123456789Z",
        "2024-03-01 00:00:00",
        "2024-W09-5",
        "now",
        "1709251200",
        "",
    ]
)
ODD_VALUES = st.one_of(JUNK, ODD_STRINGS, ODD_NUMBERS, ODD_DATES)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "symbols": st.one_of(
        st.lists(st.one_of(st.sampled_from(SYMBOLS), ODD_STRINGS), max_size=4),
        st.just(["ETH", "eth-usd", "ETH-USD", "ETHUSD"]),
        st.just(["ETH-USD"] * 101),
        ODD_VALUES,
    ),
    "start": ODD_DATES | ODD_VALUES,
    "end": ODD_DATES | ODD_VALUES,
    "resolution": st.sampled_from(["tick", "second", "minute", "day", "1w", "1M", "2h", "1H"])
    | ODD_VALUES,
    "capital": ODD_NUMBERS | ODD_VALUES,
    "currency": st.sampled_from(["usd", "US", "USDTXX", "€€€"]) | ODD_VALUES,
    "timezone": st.sampled_from(["Mars/Olympus", "utc", "+01:00", "../../etc/passwd", "x" * 65])
    | ODD_VALUES,
    "name": ODD_STRINGS | st.just("x" * 201) | ODD_VALUES,
    "strategy": st.one_of(rule_strategy(), score_strategy(), seed001_strategy(), ODD_VALUES),
    "strategy_json": st.one_of(
        st.sampled_from(["", "{", "[]", "null", '{"a": NaN}', '"\\u0000"', '{"name": "\\u0000"}']),
        ODD_VALUES,
    ),
    "strategy_id": st.sampled_from(["", "nope", "00000000-0000-0000-0000-000000000000"])
    | ODD_VALUES,
    "template": st.sampled_from(["tpl_nope", "TPL_GRID", *sorted(TEMPLATES)]) | ODD_VALUES,
    "template_params": st.dictionaries(st.text(max_size=12), ODD_VALUES, max_size=3) | ODD_VALUES,
    "sweep": st.one_of(
        st.fixed_dictionaries(
            {"grid": st.dictionaries(st.text(max_size=30), st.lists(ODD_VALUES, max_size=3))},
            optional={"rank_by": ODD_STRINGS | st.text(max_size=20)},
        ),
        ODD_VALUES,
    ),
    "execution": st.one_of(
        st.dictionaries(st.sampled_from(sorted(EXECUTION)), ODD_VALUES, max_size=3),
        ODD_VALUES,
    ),
}
EXTRA_KEYS = st.sampled_from(["foo", "Symbols", "strategy ", "", "\x00", "atr_period", "params"])
DESCRIPTIONS = st.recursive(
    st.one_of(JUNK, ODD_STRINGS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_STRINGS, inner, max_size=3),
    max_leaves=6,
)  # a strategy's free-form `description`: stored as it is


@st.composite
def mutated_body(draw: st.DrawFn) -> dict[str, Any]:
    """A valid body with one to three fields dropped, added or set to something odd."""
    body = draw(valid_body())
    for _ in range(draw(st.integers(1, 3))):
        what = draw(
            st.sampled_from(["set", "execution", "expression", "description", "extra", "drop"])
        )
        if what == "drop" and body:
            del body[draw(st.sampled_from(sorted(body)))]
        elif what == "extra":
            body[draw(EXTRA_KEYS)] = draw(ODD_VALUES)
        elif what == "execution" and isinstance(body.get("execution"), dict):
            body["execution"][draw(st.sampled_from(sorted(EXECUTION)))] = draw(ODD_VALUES)
        elif what == "description" and isinstance(body.get("strategy"), dict):
            body["strategy"] = {**body["strategy"], "description": draw(DESCRIPTIONS)}
        elif what == "expression":  # an expression where a condition goes
            strategy = {**SEED_STRATEGY, "exit": [draw(st.one_of(bool_expr(), mutated()))]}
            body.pop("strategy_json", None)
            body.pop("template", None)
            body.pop("template_params", None)
            body["strategy"] = strategy
        else:
            key = draw(st.sampled_from(sorted(FIELD_VALUES)))
            body[key] = draw(FIELD_VALUES[key])
    return cheap(body)


RAW_BODIES = [
    b"",
    b"{",
    b"[]",
    b"null",
    b"1",
    b'"body"',
    b"\xff\xfe{}",
    b"\xef\xbb\xbf{}",
    b'{"symbols": ["ETH"], "symbols": ["BTC"]}',
    b'{"capital": NaN, "start": "2024-03-01T00:00:00Z", "end": "2024-03-02T00:00:00Z"}',
    b'{"capital": 1e999}',
    b'{"capital": 123456789012345678901234567890}',
    b"[" * 5000 + b"]" * 5000,
    b'{"strategy": ' + b'{"a": ' * 2000 + b"1" + b"}" * 2001,
    b'{"name": "\\u0000", "strategy": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"name": "\\ud800"}',
    # a NUL 1,000 lists deep: RecursionError while looking for it (500)
    b'{"start": "2024-03-01T00:00:00Z", "end": "2024-03-03T00:00:00Z", "strategy": {"entry": '
    + b"[" * 1000
    + b'"\\u0000"'
    + b"]" * 1000
    + b"}}",
]


# --- the properties ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", RAW_BODIES, ids=range(len(RAW_BODIES)))
def test_bodies_that_are_not_create_bodies(api: Api, raw: bytes) -> None:
    api.post(raw, raw)


# Bodies that found a defect, kept as regression cases: each was accepted, then its run failed.
REGRESSIONS: list[dict[str, Any]] = [
    # no 1h bar opens in the range: "no bars at or after trade_start_ns" (engine_error)
    {"symbols": ["ETH-USD"], "start": "2025-03-12T10:18:00Z", "end": "2025-03-12T10:19:00Z",
     "timezone": "Europe/Berlin", "template": "tpl_breakout", "template_params": {}},
    backtest(start="2024-03-01T10:01:00Z", end="2024-03-01T10:59:00Z"),
    backtest(start="2024-03-01T01:00:00Z", end="2024-03-01T23:00:00Z", resolution="1d"),
    # roc() of a series with zeros: ZeroDivisionError in the numba kernel (engine_error)
    {"symbols": ["BTC-USDT"], "start": "2024-01-11T23:04:00Z", "end": "2024-01-16T05:05:00Z",
     "resolution": "1h", "strategy": {"name": "score", "type": "score",
     "variables": {"r": "rsi()"}, "conditions": [{"name": "c0", "when": "r > max(roc(adx(1)),"
     " atr())", "score": 1}], "threshold": 1.0, "risk": {"stop": {"type": "atr", "value": 0.4},
     "reward_risk": 0.1}, "exit": []}, "name": "\u00c1\ud918\udda3\u000e_\\\u001f\\",
     "execution": {"atr_multiplier": 44.25, "volatility_window": 37835}},
    backtest(start="2024-03-01T00:00:00Z", end="2024-03-05T00:00:00Z",
             strategy={"name": "zeros", "entry": ["stddev(close - open) > 0.5"],
                       "exit": ["roc(close - close) > 0"]}),
]  # fmt: skip


def test_a_nul_in_a_key_is_refused_naming_it(api: Api) -> None:
    """A strategy's `description` is free-form JSON, stored as it is: a NUL in one of its keys
    reached PostgreSQL (UntranslatableCharacterError, a 500); in a value it was refused."""
    strategy = {**SEED_STRATEGY, "description": {"notes": [{"a\x00b": 1}]}}
    body = backtest(start="2024-03-01T00:00:00Z", end="2024-03-03T00:00:00Z", strategy=strategy)
    answer = api.post(None, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "strategy.description.notes[0].a\\u0000b"


def test_a_nul_deep_down_is_refused(api: Api) -> None:
    answer = api.post(RAW_BODIES[-1], RAW_BODIES[-1])
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "strategy.entry" + "[0]" * 1000


@pytest.mark.parametrize("body", REGRESSIONS, ids=range(len(REGRESSIONS)))
def test_regressions(api: Api, body: dict[str, Any]) -> None:
    api.post(None, body)
    api.finish(list(api.pending))


def test_a_range_without_a_bar_is_refused_naming_end(api: Api) -> None:
    answer = api.post(None, REGRESSIONS[1])
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_date_range", "end"), error
    assert "no 1h bar of ETH-USD opens" in error["message"]
    # the same hour with a bar opening at its end is a run
    body = backtest(start="2024-03-01T10:01:00Z", end="2024-03-01T11:00:00Z")
    assert api.post(None, body).status_code == 201
    api.finish(list(api.pending))


def test_any_body_is_a_run_or_a_4xx_naming_the_field(api: Api) -> None:
    """Mutated and valid bodies; every run made completes."""

    @bounded(300)
    @given(body=st.one_of(mutated_body(), valid_body()))
    def post(body: dict[str, Any]) -> None:
        api.post(None, body)

    post()
    api.finish(list(api.pending))


def test_accepted_bodies_make_runs_that_complete(api: Api) -> None:
    """Valid bodies: most are accepted, and every run made completes."""
    before = len(api.created)

    @bounded(120)
    @given(body=valid_body())
    @example(body=backtest(start="2024-03-01T00:00:00Z", end="2024-03-03T00:00:00Z"))
    def post(body: dict[str, Any]) -> None:
        api.post(None, body)

    post()
    api.finish(list(api.pending))
    assert len(api.created) - before >= 20, len(api.created) - before
