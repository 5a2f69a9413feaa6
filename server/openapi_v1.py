"""The OpenAPI paths and schemas of the seed 001 surface and the saved strategies."""

from typing import Any

from pydantic import BaseModel

from protocol import v1
from protocol.strategies import SavedStrategy, StrategyBody

REF = "#/components/schemas/{model}"


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
PAGE = [{"name": n, "in": "query", "schema": {"type": t}}
        for n, t in (("limit", "integer"), ("cursor", "string"))]  # fmt: skip


def _v1_backtests(base: str, deprecated: bool) -> dict[str, Any]:
    flag = {"deprecated": True} if deprecated else {}
    e = "V1Error"
    return {
        base: {"post": {**flag, "summary": "Run one backtest synchronously", "requestBody": {"required": True, **_json("V1RunRequest")},
                        "responses": {"200": _json("V1Result"), "503": BUSY, **_errors(e, 400, 401, 404, 409, 413, 422, 500)}}},
        f"{base}/bulk": {"post": {**flag, "summary": "Run many strategies over one date range synchronously", "requestBody": {"required": True, **_json("V1BulkRequest")},
                                  "responses": {"200": _json("V1BulkResult"), "503": BUSY, **_errors(e, 400, 401, 413, 422)}}},
        f"{base}/{{backtest_id}}": {"get": {**flag, "summary": "A stored run with its full trade history", "parameters": [ID], "responses": {"200": _json("V1Result"), **_errors(e, 401, 404)}}},
        f"{base}/{{backtest_id}}/trades": {"get": {**flag, "summary": "A completed run's trades, paged", "parameters": [ID, *PAGE], "responses": {"200": _json("V1TradesPage"), **_errors(e, 401, 404, 409, 422)}}},
        f"{base}/{{backtest_id}}/archive": {"post": {**flag, "summary": "Hide a run from the default history", "parameters": [ID], "responses": {"200": _json("V1Archived"), **_errors(e, 401, 404)}}},
        f"{base}/{{backtest_id}}/unarchive": {"post": {**flag, "summary": "Restore a run to the default history", "parameters": [ID], "responses": {"200": _json("V1Archived"), **_errors(e, 401, 404)}}},
    }  # fmt: skip


def _strategies(base: str, v2: bool) -> dict[str, Any]:
    e = "Error" if v2 else "V1Error"
    listing = ({"description": "an array; paging in Link and X-Total-Count headers", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/SavedStrategy"}}}}}
               if v2 else {"description": "items, total, next_cursor", "content": {"application/json": {"schema": {"type": "object"}}}})  # fmt: skip
    body = {"required": True, **_json("StrategyBody")}
    return {
        base: {
            "post": {"summary": "Save a strategy", "requestBody": body, "responses": {"201": _json("SavedStrategy"), **_errors(e, 400, 401, 422)}},
            "get": {"summary": "The caller's strategies, newest first", "parameters": [*PAGE, {"name": "include_deleted", "in": "query", "schema": {"type": "boolean"}}],
                    "responses": {"200": listing, **_errors(e, 401, 422)}},
        },
        f"{base}/{{strategy_id}}": {
            "get": {"summary": "One strategy (deleted ones too)", "parameters": [SID], "responses": {"200": _json("SavedStrategy"), **_errors(e, 401, 404)}},
            "put": {"summary": "Replace a strategy", "parameters": [SID], "requestBody": body, "responses": {"200": _json("SavedStrategy"), **_errors(e, 400, 401, 404, 409, 422)}},
            "patch": {"summary": "Change fields of a strategy", "parameters": [SID], "requestBody": body, "responses": {"200": _json("SavedStrategy"), **_errors(e, 400, 401, 404, 409, 422)}},
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
        "parameters": [*PAGE, *({"name": n, "in": "query", "schema": {"type": t}} for n, t in (("include_archived", "boolean"), ("state", "string")))],
        "responses": {"200": _json("V1History"), **_errors("V1Error", 401, 422)}}}  # fmt: skip
    return out
