"""The OpenAPI paths and schemas of the seed 001 surface and the saved strategies."""

import json
from typing import Any

from pydantic import BaseModel

from protocol import v1
from protocol.strategies import SavedStrategy, StrategyBody
from server.openapi_common import CURSOR, RUN_STATE, SEED_STRATEGY, body, flag, limit

REF = "#/components/schemas/{model}"
RUN_EXAMPLE = {
    "asset": "ETH", "interval": "1h", "start_date": "2024-03-01", "end_date": "2024-05-31",
    "initial_balance": 10000.0, "max_risk_per_trade": 0.01,
    "strategy_json": json.dumps(SEED_STRATEGY),
}  # fmt: skip
BULK_EXAMPLE = {
    "asset": "ETH", "interval": "1h", "start_date": "2024-03-01", "end_date": "2024-05-31",
    "initial_balance": 10000.0, "strategy_configs": [SEED_STRATEGY],
}  # fmt: skip


def schemas() -> dict[str, Any]:
    """Component schemas: v1 requests and responses, strategy bodies and objects."""
    out: dict[str, Any] = {}
    models: tuple[type[BaseModel], ...] = (
        StrategyBody, SavedStrategy, v1.Result, v1.BulkResult, v1.TradesPage, v1.Archived,
        v1.History, v1.Error,
    )  # fmt: skip
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        out[f"V1{model.__name__}" if model.__module__ == "protocol.v1" else model.__name__] = schema
    for name, model in (("V1RunRequest", v1.RunBody), ("V1BulkRequest", v1.BulkBody)):
        schema = v1.request_schema(model, REF)
        out.update(schema.pop("$defs", {}))
        out[name] = schema
    return out


def _json(ref: str, description: str = "ok") -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(ref: str, *codes: int) -> dict[str, Any]:
    return {str(c): _json(ref, "error") for c in codes}


ID = {"name": "backtest_id", "in": "path", "required": True, "schema": {"type": "string"}}
SID = {"name": "strategy_id", "in": "path", "required": True, "schema": {"type": "string"}}
BUSY = {**_json("V1Error", "every synchronous slot is busy; retry after Retry-After seconds"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}}}  # fmt: skip
PAGE = [limit(), CURSOR]


def _v1_backtests(base: str, deprecated: bool) -> dict[str, Any]:
    dep = {"deprecated": True} if deprecated else {}
    e = "V1Error"
    return {
        base: {"post": {**dep, "summary": "Run one backtest synchronously", "requestBody": body("V1RunRequest", RUN_EXAMPLE),
                        "responses": {"200": _json("V1Result"), "503": BUSY, **_errors(e, 400, 401, 402, 404, 409, 413, 422, 500)}}},
        f"{base}/bulk": {"post": {**dep, "summary": "Run many strategies over one date range synchronously", "requestBody": body("V1BulkRequest", BULK_EXAMPLE),
                                  "responses": {"200": _json("V1BulkResult"), "503": BUSY, **_errors(e, 400, 401, 402, 404, 413, 422)}}},
        f"{base}/{{backtest_id}}": {"get": {**dep, "summary": "A stored run with its full trade history", "parameters": [ID], "responses": {"200": _json("V1Result"), **_errors(e, 401, 404)}}},
        f"{base}/{{backtest_id}}/trades": {"get": {**dep, "summary": "A completed run's trades, paged", "parameters": [ID, limit(1000, 100), CURSOR], "responses": {"200": _json("V1TradesPage"), **_errors(e, 401, 404, 409, 422)}}},
        f"{base}/{{backtest_id}}/archive": {"post": {**dep, "summary": "Hide a run from the default history", "parameters": [ID], "responses": {"200": _json("V1Archived"), **_errors(e, 401, 404)}}},
        f"{base}/{{backtest_id}}/unarchive": {"post": {**dep, "summary": "Restore a run to the default history", "parameters": [ID], "responses": {"200": _json("V1Archived"), **_errors(e, 401, 404)}}},
    }  # fmt: skip


def _strategies(base: str, v2: bool) -> dict[str, Any]:
    e = "Error" if v2 else "V1Error"
    listing = ({"description": "an array; paging in Link and X-Total-Count headers", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/SavedStrategy"}}}}}
               if v2 else {"description": "items, total, next_cursor", "content": {"application/json": {"schema": {"type": "object"}}}})  # fmt: skip
    saved = body(
        "StrategyBody", {"strategy": SEED_STRATEGY, "description": "MACD cross above SMA(50)"}
    )
    return {
        base: {
            "post": {"summary": "Save a strategy", "requestBody": saved, "responses": {"201": _json("SavedStrategy"), **_errors(e, 400, 401, 422)}},
            "get": {"summary": "The caller's strategies, newest first", "parameters": [*PAGE, flag("include_deleted", "deleted strategies too")],
                    "responses": {"200": listing, **_errors(e, 401, 422)}},
        },
        f"{base}/{{strategy_id}}": {
            "get": {"summary": "One strategy (deleted ones too)", "parameters": [SID], "responses": {"200": _json("SavedStrategy"), **_errors(e, 401, 404)}},
            "put": {"summary": "Replace a strategy", "parameters": [SID], "requestBody": saved, "responses": {"200": _json("SavedStrategy"), **_errors(e, 400, 401, 404, 409, 422)}},
            "patch": {"summary": "Change fields of a strategy", "parameters": [SID], "requestBody": {**body("StrategyBody", {"description": "the MACD cross, renamed"}, required=False), "description": "the fields to change; no body changes nothing"}, "responses": {"200": _json("SavedStrategy"), **_errors(e, 400, 401, 404, 409, 422)}},
            "delete": {"summary": "Delete (kept for its runs; starts no new run)", "parameters": [SID], "responses": {"204": {"description": "deleted"}, **_errors(e, 401, 404)}},
        },
    }  # fmt: skip


def paths() -> dict[str, Any]:
    """Every v1 and strategy path."""
    out = {**_strategies("/api/v2/strategies", True), **_strategies("/api/v1/strategies", False)}
    out.update(_v1_backtests("/api/v1/backtests", False))
    for alias in ("/api/v1/backtesting/backtest", "/api/v1/backtesting/backtests"):
        out.update(_v1_backtests(alias, True))
    out["/api/v1/users/me/backtests"] = {"get": {
        "summary": "The caller's runs of every surface, newest first",
        "parameters": [*PAGE, flag("include_archived", "archived runs too"), RUN_STATE],
        "responses": {"200": _json("V1History"), **_errors("V1Error", 401, 422)}}}  # fmt: skip
    return out
