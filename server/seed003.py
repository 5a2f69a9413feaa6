"""A seed 003 submit becomes the same run config as a v2 request, and a run becomes its answer.

The dialect's execution model (fixed here, echoed in the run's `config.execution`): entries
fill at the close of the candle whose score reaches the threshold, one position at a time, no
fees or slippage, no entry gates beyond that (no cooldowns, no balance threshold, no daily cap),
so every trade runs from its entry to its stop (-1R), its target (+reward_risk R), an `exit`
condition or `max_hold_bars`, and R results do not depend on the account.
"""

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import orjson
from pydantic import ValidationError

from engine.data import BarStore
from protocol import seed003
from protocol.enums import RESOLUTIONS
from protocol.errors import ApiError, ErrorCode
from protocol.requests import BacktestCreate
from protocol.seed003 import Code
from protocol.times import iso, iso_ns
from server.translate import config_for, reject_nul, validation_error
from server.v1 import resolve_window

SURFACE = "seed003"
_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
EXECUTION = {
    "fill": "close",
    "max_open_positions": 1,
    "min_balance_threshold": 0.0,
    "min_trade_amount": 0.0,
    "max_trades_per_day": 100_000,
    "cooldown_bars": 0,
}


def error(
    status: int, code: Code, message: str, *, field: str | None = None, **kw: Any
) -> ApiError:
    """An error with a seed 003 code (rendered as `{"error": {...}}` under /api/public/v1/)."""
    return ApiError(status, code, message, field=field, **kw)  # type: ignore[arg-type]


def parse(raw_body: bytes) -> seed003.SubmitBody:
    """Validate a submit body: 400 invalid_payload naming the field (every fault in `details`)."""
    try:
        raw = orjson.loads(raw_body or b"")
    except orjson.JSONDecodeError as exc:
        raise error(400, Code.INVALID_PAYLOAD, "the request body is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise error(400, Code.INVALID_PAYLOAD, "the request body must be a JSON object")
    if isinstance(raw.get("strategySnapshotJson"), dict | list):
        raise error(
            400, Code.INVALID_PAYLOAD,
            "strategySnapshotJson: must be a string holding the strategy as JSON (serialize the"
            " object: JSON.stringify / json.dumps)", field="strategySnapshotJson",
        )  # fmt: skip
    reject_nul(raw)
    try:
        return seed003.SubmitBody.model_validate(raw)
    except ValidationError as exc:
        err = validation_error(exc)
        raise error(
            400, Code.INVALID_PAYLOAD, err.message, field=err.field, details=err.details
        ) from exc


def _strategy(text: str) -> dict[str, Any]:
    """The score strategy inside strategySnapshotJson (`"type": "score"` added when left out)."""
    field = "strategySnapshotJson"
    try:
        spec = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise error(
            400, Code.INVALID_STRATEGY, f"{field}: not valid JSON ({exc})", field=field
        ) from exc
    if not isinstance(spec, dict):
        raise error(400, Code.INVALID_STRATEGY, f"{field}: must encode a JSON object", field=field)
    if spec.get("type", "score") != "score":
        raise error(
            400, Code.INVALID_STRATEGY,
            f'{field}.type: this API takes score strategies: "type" is "score" or left out',
            field=f"{field}.type",
        )  # fmt: skip
    return {**spec, "type": "score"}


def _timeframes(spec: dict[str, Any]) -> list[str]:
    """The timeframes the strategy's conditions and exits name (as run intervals)."""
    found = []
    for group in ("conditions", "exit"):
        items = spec.get(group)
        for item in items if isinstance(items, list) else ():
            tf = item.get("timeframe") if isinstance(item, dict) else None
            if isinstance(tf, str) and RESOLUTIONS.get(tf) in _SECONDS:
                found.append(RESOLUTIONS[tf])
    return found


def timeframe(body: seed003.SubmitBody, spec: dict[str, Any]) -> str:
    """The run's candles: `timeframe` if sent, else the finest the strategy names, else 1h."""
    if body.timeframe is not None:
        return body.timeframe
    named = _timeframes(spec)
    return min(named, key=_SECONDS.__getitem__) if named else "1h"


def _window(body: seed003.SubmitBody, store: BarStore, asset: str) -> tuple[datetime, datetime]:
    """initialDate 00:00 UTC to the end of finalDate, ended at now and at the data's end."""
    if seed003.parse_day(body.finalDate) < seed003.parse_day(body.initialDate):
        raise error(
            400, Code.INVALID_DATE_RANGE,
            f"finalDate {body.finalDate} is before initialDate {body.initialDate}",
            field="finalDate",
        )  # fmt: skip
    dates = SimpleNamespace(start_date=body.initialDate, end_date=body.finalDate,
                            lookback_months=None)  # fmt: skip
    try:
        start, end, _ = resolve_window(dates, store, asset)
    except ApiError as exc:  # the start is at or after the end of the data (or now)
        info = store.resolve(asset)
        last = info.last_ts if info is not None else 0
        until = iso_ns(last)
        raise error(
            400, Code.INVALID_DATE_RANGE,
            f"initialDate {body.initialDate} is after the data of {asset}, whose last candle"
            f" opens at {until}", field="initialDate",
        ) from exc  # fmt: skip
    return start, end


_FIELDS = {"symbols": "assetPair", "start": "initialDate", "end": "finalDate",
           "resolution": "timeframe", "strategy": "strategySnapshotJson"}  # fmt: skip


def _renamed(err: ApiError) -> ApiError:
    """A shared check's error with this dialect's code and field names."""
    code, status = seed003.to_seed003(str(err.code), err.status)
    field = err.field
    if field is not None:
        head, dot, tail = field.partition(".")
        if head in _FIELDS:
            name = _FIELDS[head]
            tail = "" if head == "symbols" else tail
            field = f"{name}.{tail}" if tail and dot else name
    message = err.message
    if err.field and message.startswith(f"{err.field}:"):
        message = f"{field}:{message[len(err.field) + 1 :]}"
    return error(status, Code(code), message, field=field, headers=err.headers)


def build(raw_body: bytes, store: BarStore) -> dict[str, Any]:
    """Check a submit body and resolve it into a run config; 400 with seed 003's codes."""
    body = parse(raw_body)
    spec = _strategy(body.strategySnapshotJson)
    info = store.resolve(body.assetPair)
    if info is None:
        raise error(
            400, Code.UNSUPPORTED_ASSET,
            f"assetPair: {body.assetPair!r} is not supported; GET /api/v2/symbols lists the pairs",
            field="assetPair",
        )  # fmt: skip
    interval = timeframe(body, spec)
    start, end = _window(body, store, info.name)
    execution = {**EXECUTION, "allow_short": spec.get("side") == "short"}
    try:
        req = BacktestCreate.model_validate(
            {"symbols": [info.name], "start": start, "end": end, "resolution": interval,
             "strategy": spec, "execution": execution}
        )  # fmt: skip
        config = config_for(req, store)
    except ValidationError as exc:
        raise _renamed(validation_error(exc)) from exc
    except ApiError as exc:
        if exc.code == ErrorCode.UNSUPPORTED_RESOLUTION:
            exc.field = "timeframe"
        raise _renamed(exc) from exc
    config["surface"] = SURFACE
    config[SURFACE] = {
        "strategySnapshotJson": body.strategySnapshotJson,
        "assetPair": info.name,
        "assetPairSent": body.assetPair,
        "initialDate": body.initialDate,
        "finalDate": body.finalDate,
        "timeframe": interval,
    }
    return config


def is_score(config: dict[str, Any]) -> bool:
    """Whether a run is one score strategy's (the runs this dialect can show; not a sweep)."""
    strategy = config.get("strategy")
    return (
        isinstance(strategy, dict) and strategy.get("type") == "score" and not config.get("sweep")
    )


def _echo(config: dict[str, Any]) -> dict[str, Any]:
    """What a run shows as its submit fields: as sent, or derived for runs of other surfaces."""
    own = config.get(SURFACE)
    if own is not None:
        return own
    symbols = config.get("symbols") or [None]
    return {
        "strategySnapshotJson": orjson.dumps(config.get("strategy")).decode(),
        "assetPair": symbols[0],
        "initialDate": (config.get("start") or "")[:10],
        "finalDate": (config.get("end") or "")[:10],
    }


# canViewResult: a run is stored only once it is paid for (or free: its owner's credits are off,
# or it was made through a surface that does not charge), so every stored run's result can be
# viewed; a balance that cannot pay is refused with 402 and `canViewResult: false`, storing nothing.
CAN_VIEW = True


def submitted(row: Any) -> dict[str, Any]:
    """The submit answer of a freshly created run."""
    echo = _echo(row["config"])
    return {
        "id": str(row["id"]),
        "status": "Running",
        "assetPair": echo["assetPair"],
        "initialDate": echo["initialDate"],
        "finalDate": echo["finalDate"],
        "createdAtUtc": iso(row["created_at"]),
        "canViewResult": CAN_VIEW,
    }


def _error_message(row: Any) -> str | None:
    if row["state"] == "cancelled":
        return "the backtest was cancelled"
    err = row["error"]
    if row["state"] != "failed" or not err:
        return None
    return f"{err.get('message')} ({err.get('code')})"


def view(
    row: Any,
    logs: list[dict[str, Any]],
    results: dict[str, Any] | None,
    include_trades: bool,
) -> dict[str, Any]:
    """A run as seed 003's GET shows it; `results` holds the stored `score` and `round_trips`."""
    config = row["config"]
    echo = _echo(config)
    result = None
    if results is not None and results.get("score"):
        trips = (results.get("round_trips") or []) if include_trades else None
        names = [c.get("name") for c in config["strategy"].get("conditions") or []]
        result = seed003.result(results["score"], trips, names)
    return {
        **submitted(row),
        "status": seed003.STATUS[row["state"]],
        "strategySnapshotJson": echo["strategySnapshotJson"],
        "errorMessage": _error_message(row),
        "logsJson": orjson.dumps(logs).decode(),
        "result": result,
    }
