"""A seed 001 request becomes the same run config as a v2 request; v2 faults get v1 names."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from engine.data import BASE_RESOLUTIONS, BarStore
from protocol import v1
from protocol.errors import ApiError, ErrorCode
from protocol.requests import BacktestCreate, ExecutionSpec
from server.translate import Saved, config_for, load_object, reject_nul, validation_error


@dataclass(frozen=True)
class Parsed:
    """A validated v1 body: its own fields, its execution settings, the deprecated keys sent."""

    body: Any  # v1.RunBody or v1.BulkBody
    execution: dict[str, Any]  # the settings the request sets (top level over execution_config)
    top_level: frozenset[str]  # execution keys sent at the top level
    deprecated: tuple[str, ...]


def parse(raw_body: bytes, model: type[BaseModel]) -> Parsed:
    """Validate a v1 body: 400 for bad JSON, 422 naming each bad or unknown field."""
    raw = load_object(raw_body)
    reject_nul({k: v for k, v in raw.items() if k != "strategy_configs"})  # items: one by one
    own = set(model.model_fields)
    top = {k: v for k, v in raw.items() if k in v1.EXECUTION_KEYS and k not in own}
    rest = {k: v for k, v in raw.items() if k not in top}
    errors: list[dict[str, Any]] = []
    body = _validate(model, rest, "", errors)
    execution = _validate(ExecutionSpec, top, "", errors)
    if errors:
        first = errors[0]
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"{first['field']}: {first['message']}",
            field=first["field"], details=errors,
        )  # fmt: skip
    assert body is not None and execution is not None
    nested = body.execution_config
    merged = {
        **(nested.model_dump(exclude_unset=True) if nested is not None else {}),
        **execution.model_dump(exclude_unset=True),
    }
    sent = {*top, *(nested.model_fields_set if nested is not None else ())}
    deprecated = tuple(k for k in v1.DEPRECATED_KEYS if k in sent)
    return Parsed(body, merged, frozenset(top), deprecated)


def _validate(model: type[BaseModel], data: dict, prefix: str, errors: list) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors.extend(validation_error(exc, prefix).details or [])
        return None


def resolve_window(body: Any, store: BarStore, asset: str | None) -> tuple[datetime, datetime, str]:
    """The run's window by seed 001's modes; a window ending now ends at the data's end."""
    now = datetime.now(UTC)
    try:
        start, end, mode = v1.window(body.start_date, body.end_date, body.lookback_months, now)
    except v1.WindowError as exc:
        raise ApiError(
            400, ErrorCode.VALIDATION_ERROR, exc.message, field=exc.fields[0],
            details=[{"field": f, "message": exc.message} for f in exc.fields],
        ) from exc  # fmt: skip
    if end > now:  # a window cannot reach past now (an end_date of today, say)
        end, mode = now, mode if mode != "explicit_range" else "explicit_range_to_now"
    if end == now and asset is not None:
        info = store.resolve(asset)
        if info is not None:
            last = info.last_ts + max(BASE_RESOLUTIONS.get(info.base_resolution, 0) - 1, 0)
            end = min(end, datetime.fromtimestamp(last // 1_000_000_000, UTC)
                      + timedelta(microseconds=last % 1_000_000_000 // 1000))  # fmt: skip
    if start >= end:
        raise ApiError(
            400, ErrorCode.VALIDATION_ERROR,
            f"start_date must be before end_date (the window is {start.isoformat()} to"
            f" {end.isoformat()})", field="start_date",
        )  # fmt: skip
    return start, end, mode


def check_shared(body: Any, store: BarStore) -> None:
    """A bulk request's own faults (its date range, its asset), before any strategy's."""
    resolve_window(body, store, None)
    if body.asset is not None and store.resolve(body.asset) is None:
        raise ApiError(
            400, ErrorCode.UNSUPPORTED_ASSET,
            f"asset: unknown symbol {body.asset!r}; GET /api/v2/symbols lists them", field="asset",
        )  # fmt: skip


def strategy_asset(strategy_json: str | None) -> str | None:
    """The `asset` inside strategy_json, if it parses and has one."""
    if strategy_json is None:
        return None
    try:
        spec = orjson.loads(strategy_json)
    except orjson.JSONDecodeError:
        return None
    asset = spec.get("asset") if isinstance(spec, dict) else None
    return asset if isinstance(asset, str) else None


def build(
    parsed: Parsed,
    store: BarStore,
    saved: Saved | None,
    *,
    asset: str | None,
    interval: str,
    strategy: dict[str, Any] | str | None,
) -> dict[str, Any]:
    """The run config of one v1 run (a single request, or one strategy of a bulk request)."""
    body = parsed.body
    start, end, mode = resolve_window(body, store, asset)
    fields: dict[str, Any] = {
        "symbols": [asset] if asset else None,
        "start": start,
        "end": end,
        "resolution": interval,
        "capital": body.initial_balance,
        "execution": ExecutionSpec.model_validate(parsed.execution),
        "name": getattr(body, "name", None),
    }
    if saved is not None:
        fields["strategy_id"] = str(saved.id)
    elif isinstance(strategy, str):
        fields["strategy_json"] = strategy
    else:
        fields["strategy"] = strategy
    try:
        req = BacktestCreate.model_validate(fields)
        config = config_for(req, store, saved, dialect="seed001")
    except ValidationError as exc:
        raise renamed(validation_error(exc), parsed.top_level) from exc
    except ApiError as exc:
        raise renamed(exc, parsed.top_level) from exc
    config["surface"] = "v1"
    config["date_range"] = {
        "mode": mode, "start_date": body.start_date, "end_date": body.end_date,
        "lookback_months": body.lookback_months,
    }  # fmt: skip
    return config


_V1_NAMES = {"symbols": "asset", "start": "start_date", "end": "end_date",
             "resolution": "interval", "capital": "initial_balance"}  # fmt: skip


def _v1_field(field: str, top_level: frozenset[str]) -> str:
    head, _, tail = field.partition(".")
    if head == "symbols":
        return "asset"
    if head in _V1_NAMES:
        return _V1_NAMES[head] + (f".{tail}" if tail else "")
    if head == "execution" and tail:
        key = re.split(r"[.\[]", tail, maxsplit=1)[0]
        return tail if key in top_level else f"execution_config.{tail}"
    return field


def renamed(err: ApiError, top_level: frozenset[str]) -> ApiError:
    """The same error with v2 field names (`symbols.0`, `execution.x`) in v1 terms."""
    if err.field is None:
        return err
    field = _v1_field(err.field, top_level)
    message = err.message
    if message.startswith(f"{err.field}:"):
        message = f"{field}:{message[len(err.field) + 1 :]}"
    details = [{**d, "field": _v1_field(d["field"], top_level)} for d in err.details or []]
    return ApiError(
        err.status, err.code, message, field=field, details=details or None, headers=err.headers
    )
