"""The OpenAPI 3.1 document of the canonical API, assembled from the protocol models."""

import json
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import protocol
from protocol.errors import ErrorBody
from protocol.events import EVENT_ADAPTER
from protocol.requests import BacktestCreate
from protocol.results import Results, RunStatus
from server import openapi_seed003, openapi_seed004, openapi_v1
from server.openapi_common import (
    CURSOR,
    RETRY_AFTER,
    RUN_STATE,
    SEED_STRATEGY,
    answers,
    body,
    flag,
    limit,
)

REF = "#/components/schemas/{model}"
SCORE_SCHEMA = Path(protocol.__file__).with_name("score_strategy.schema.json")


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    models: tuple[type[BaseModel], ...] = (ErrorBody, BacktestCreate, RunStatus, Results)
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    out["Error"] = out.pop("ErrorBody")
    event = EVENT_ADAPTER.json_schema(ref_template=REF)
    out.update(event.pop("$defs", {}))
    out["Event"] = event
    if SCORE_SCHEMA.exists():
        score = json.loads(SCORE_SCHEMA.read_text())
        score.pop("$schema", None)
        out["ScoreStrategy"] = score
    out.update(openapi_v1.schemas())
    out.update(openapi_seed004.schemas())
    out.update(openapi_seed003.schemas())
    return out


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", **_json("Error")} for c in codes}


CREATE_EXAMPLE = {
    "symbols": ["ETH"], "start": "2024-03-01T00:00:00Z", "end": "2024-09-01T00:00:00Z",
    "resolution": "1h", "capital": 10000, "strategy": SEED_STRATEGY,
    "execution": {"fee_bps": 10},
}  # fmt: skip
RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
RUN_LIST = {
    "description": "one page of the caller's runs, newest first (seed 002: an array of status objects)",
    "headers": {
        "Link": {
            "description": 'the next page: `<URL>; rel="next"`, the same query with `cursor` set;'
            " absent on the last page",
            "schema": {"type": "string"},
        },
        "X-Total-Count": {
            "description": "how many runs match the filters, over all pages",
            "schema": {"type": "integer", "minimum": 0},
        },
    },
    "content": {
        "application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/RunStatus"}}
        }
    },
}


def _paths() -> dict[str, Any]:
    any_json = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "/healthz": {"get": {"summary": "Ready to take runs", "security": [], "responses": {"200": any_json, "503": any_json}}},
        "/api/v2/backtests": {
            "post": {
                "summary": "Create a run (a strategy, a template or a sweep)",
                "requestBody": body("BacktestCreate", CREATE_EXAMPLE),
                "responses": {"201": {"description": "queued", **_json("RunStatus")}, **_errors(400, 401, 402, 404, 413, 422),
                              "429": {"description": "too many queued or running runs", "headers": RETRY_AFTER, **_json("Error")}},
            },
            "get": {
                "summary": "The caller's runs, newest first",
                "parameters": [RUN_STATE, limit(), CURSOR, flag("include_archived", "archived runs too")],
                "responses": {"200": RUN_LIST, **_errors(401, 422)},
            },
        },
        "/api/v2/backtests/{run_id}": {"get": {"summary": "A run's status", "parameters": [RUN_ID], "responses": {"200": _json("RunStatus"), **_errors(401, 404)}}},
        "/api/v2/backtests/{run_id}/results": {"get": {"summary": "Results of a completed run, with the first `limit` round trips and fills (the rest: `paging`)", "parameters": [RUN_ID, limit(1000, 500)], "responses": {"200": _json("Results"), **_errors(401, 404, 409, 422)}}},
        "/api/v2/backtests/{run_id}/round_trips": _listing("round trips", "closed round trips"),
        "/api/v2/backtests/{run_id}/trades": _listing("fills", "fills (the results' `trades`)"),
        "/api/v2/backtests/{run_id}/cancel": {"post": {"summary": "Cancel a run", "parameters": [RUN_ID], "responses": {"202": _json("RunStatus"), **_errors(401, 404, 409)}}},
        "/api/v2/backtests/{run_id}/archive": {"post": {"summary": "Hide a run from the default list (idempotent; the first archived_at stays)", "parameters": [RUN_ID], "responses": {"200": _json("RunStatus"), **_errors(401, 404)}}},
        "/api/v2/backtests/{run_id}/unarchive": {"post": {"summary": "Bring an archived run back to the default list (idempotent)", "parameters": [RUN_ID], "responses": {"200": _json("RunStatus"), **_errors(401, 404)}}},
        "/api/v2/backtests/{run_id}/stream": {
            "get": {
                "summary": "WebSocket: events after last_event_id, then live (messages: Event)",
                "parameters": [RUN_ID, {"name": "last_event_id", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                               {"name": "api_key", "in": "query", "schema": {"type": "string"}}],
                "responses": {"101": {"description": "switching protocols; close 1000/1001/1008/1011"}},
            }
        },
        "/api/v2/symbols": {"get": {"summary": "Symbols, aliases, resolutions, ranges", "responses": {"200": any_json, **_errors(401)}}},
        "/api/v2/signals": {"get": {"summary": "The signal catalog", "responses": {"200": any_json, **_errors(401)}}},
        "/api/v2/templates": {"get": {"summary": "Templates with a JSON Schema for their params", "responses": {"200": any_json, **_errors(401)}}},
        "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": any_json}}},
        **_web_paths(),
    }  # fmt: skip


def _listing(name: str, what: str) -> dict[str, Any]:
    """A completed run's stored listing, paged as the run list is (an array; Link, X-Total-Count)."""
    page = {
        "description": f"one page of the run's {what}, in order",
        "headers": {
            "Link": RUN_LIST["headers"]["Link"],
            "X-Total-Count": {
                "description": f"how many {name} the run has",
                "schema": {"type": "integer", "minimum": 0},
            },
        },
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}},
    }
    return {
        "get": {
            "summary": f"A completed run's {name}, paged",
            "parameters": [RUN_ID, limit(1000, 500), CURSOR],
            "responses": {"200": page, **_errors(401, 404, 409, 422)},
        }
    }


def _web_paths() -> dict[str, Any]:
    """The browser page, this document rendered, and their static files (no key needed)."""
    page = {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}
    html = {"200": page}
    name = {"name": "name", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}}  # fmt: skip
    file = {"200": {"description": "the file (JavaScript, CSS, a licence)"}, **_errors(404)}
    return {
        "/": {"get": {"summary": "The browser page: sign in, runs, new run, a run followed live", "security": [], "responses": html}},
        "/docs": {"get": {"summary": "This document rendered for people", "security": [], "responses": html}},
        "/static/{name}": {"get": {"summary": "A static file of the browser page", "security": [], "parameters": [name], "responses": file}},
        "/static/vendor/{name}": {"get": {"summary": "A vendored file of the browser page (uPlot and its licence)", "security": [], "parameters": [name], "responses": file}},
    }  # fmt: skip


TAGS = (
    ("v2", "the canonical async runs API and its stream (seed 002)"),
    ("strategies", "saved strategies, shared by every surface"),
    ("v1", "the synchronous seed 001 dialect"),
    ("seed003", "the public score-strategy API"),
    ("seed004", "signed template jobs"),
    ("meta", "health, catalogs, this document"),
)
_PREFIXES = (
    ("/api/v2/strategies", "strategies"), ("/api/v1/strategies", "strategies"),
    ("/api/v2/backtests", "v2"), ("/api/v1/", "v1"), ("/api/public/v1/", "seed003"),
    ("/v1/backtest/jobs", "seed004"),
)  # fmt: skip


def _tagged(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation with the tag of its surface."""
    for path, ops in paths.items():
        tag = next((t for prefix, t in _PREFIXES if path.startswith(prefix)), "meta")
        for op in ops.values():
            op.setdefault("tags", [tag])
    return paths


@cache
def document() -> dict[str, Any]:
    """The whole OpenAPI document (built once)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "barstream", "version": "0.1.0", "description": "Self-hosted backtest server: the canonical v2 API, saved strategies and the seed 001, 003 and 004 dialects"},
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": answers(_tagged({**_paths(), **openapi_v1.paths(), **openapi_seed003.paths(), **openapi_seed004.paths()})),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                **openapi_seed004.security_schemes(),
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }  # fmt: skip
