"""The OpenAPI paths and schemas of the seed 003 surface (`/api/public/v1/backtest`)."""

import json
from typing import Any

from pydantic import BaseModel

from protocol import seed003
from server.openapi_common import RETRY_AFTER, body, flag

REF = "#/components/schemas/{model}"
TAG = "seed003"
_ERRORS = {
    "400": "invalid_payload (malformed JSON, a missing, unknown or ill-typed field, a bad date),"
    " invalid_strategy, invalid_date_range or unsupported_asset",
    "401": "unauthorized: missing or invalid API key",
    "402": "insufficient_credits: the balance does not cover the run (nothing is stored)",
    "404": "not_found: no such backtest of the caller's (another user's is a 404 too)",
    "413": "invalid_payload: the body is larger than BARSTREAM_MAX_BODY_BYTES",
    "429": "rate_limited: the key's requests per minute are spent, or too many runs at once;"
    " retry after Retry-After seconds",
    "500": "execution_failed: a server-side failure while handling the request",
}


def schemas() -> dict[str, Any]:
    """Component schemas: the submit body, the two answers, the result and the error."""
    out: dict[str, Any] = {}
    models: tuple[type[BaseModel], ...] = (
        seed003.SubmitBody, seed003.SubmitResponse, seed003.Backtest, seed003.Error,
    )  # fmt: skip
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        for name, sub in schema.pop("$defs", {}).items():
            out[f"Seed003{name}"] = sub
        out[f"Seed003{model.__name__}"] = schema
    return _prefixed(out)


def _prefixed(value: Any) -> Any:
    """Point every nested $ref at the Seed003-prefixed component names."""
    if isinstance(value, dict):
        return {
            k: (v.replace("/schemas/", "/schemas/Seed003", 1) if k == "$ref" else _prefixed(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_prefixed(v) for v in value]
    return value


def _json(ref: str, description: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    out = {}
    for c in codes:
        out[str(c)] = _json("Seed003Error", _ERRORS[str(c)])
        if c == 429:
            out[str(c)]["headers"] = RETRY_AFTER
    return out


SECURITY = [{"apiKey": []}, {"bearer": []}]
MOMENTUM = {
    "name": "momentum score",
    "variables": {"fast": "ema(12)", "slow": "ema(26)", "r": "rsi(14)"},
    "conditions": [
        {"name": "trend_up", "when": "fast > slow", "score": 2},
        {"name": "not_overbought", "when": "r < 70", "score": 1},
    ],
    "threshold": 3,
    "risk": {"stop": {"type": "percent", "value": 0.01}, "reward_risk": 2.0},
}
SUBMIT_EXAMPLE = {
    "strategySnapshotJson": json.dumps(MOMENTUM), "assetPair": "BTC-USDC",
    "initialDate": "2024-03-01", "finalDate": "2024-05-31",
}  # fmt: skip


def paths() -> dict[str, Any]:
    """The two routes of the surface, tagged `seed003`."""
    submit = {
        "tags": [TAG],
        "summary": "Submit a score-strategy backtest",
        "description": "Answers 200 at once with status Running; poll GET /backtest/{id}. A run"
        " costs BARSTREAM_RUN_CREDITS credits when the caller's balance is metered.",
        "security": SECURITY,
        "requestBody": {**body("Seed003SubmitBody", SUBMIT_EXAMPLE), "description": "the backtest"},
        "responses": {
            "200": {
                **_json("Seed003SubmitResponse", "queued; Location names the fetch URL"),
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
            **_errors(400, 401, 402, 413, 429, 500),
        },
    }
    fetch = {
        "tags": [TAG],
        "summary": "A backtest's status and, once Completed, its R results",
        "security": SECURITY,
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
            flag("includeTrades", "include result.tradesDetail"),
        ],
        "responses": {
            "200": _json("Seed003Backtest", "the backtest"),
            **_errors(400, 401, 404, 429, 500),
        },
    }
    return {
        "/api/public/v1/backtest": {"post": submit},
        "/api/public/v1/backtest/{id}": {"get": fetch},
    }
