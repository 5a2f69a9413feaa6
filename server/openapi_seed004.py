"""The OpenAPI paths and schemas of the seed 004 surface (signed template jobs)."""

from typing import Any

from protocol.seed004 import STATUS, Code, Job, JobBody
from server.openapi_common import CURSOR, RETRY_AFTER, body, limit

REF = "#/components/schemas/{model}"
SIGNED = [{"pipaiKey": [], "pipaiTimestamp": [], "pipaiSignature": []}]


def schemas() -> dict[str, Any]:
    """Component schemas: the job request, the job object, the error."""
    out: dict[str, Any] = {}
    for name, model in (("JobRequest", JobBody), ("Job", Job)):
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        out[name] = schema
    out["JobError"] = {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"enum": [c.value for c in Code]},
            "message": {"type": "string"}, "field": {"type": "string"}}}},
    }  # fmt: skip
    return out


def security_schemes() -> dict[str, Any]:
    """The three signing headers (see the README's Signing)."""
    return {
        "pipaiKey": {"type": "apiKey", "in": "header", "name": "X-PipAI-API-Key"},
        "pipaiTimestamp": {"type": "apiKey", "in": "header", "name": "X-PipAI-Timestamp"},
        "pipaiSignature": {"type": "apiKey", "in": "header", "name": "X-PipAI-Signature",
                           "description": "hex HMAC-SHA256 of ts\\nMETHOD\\npath?query\\nsha256hex(body)"},
    }  # fmt: skip


def _json(ref: str, description: str = "ok") -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    out = {str(c): _json("JobError", "error") for c in codes}
    if "429" in out:
        out["429"] = {**out["429"], "description": "5 active jobs, or the key's weight spent",
                      "headers": RETRY_AFTER}  # fmt: skip
    return out


STATUS_PARAM = {
    "name": "status", "in": "query", "description": "only jobs in this status",
    "schema": {"type": "string", "enum": list(STATUS.values())},
}  # fmt: skip


ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"},
      "description": "bt_<8 hex> or the run's UUID"}  # fmt: skip
JOB_EXAMPLE = {
    "template_id": "tpl_ma_cross", "params": {"window_fast": 10, "window_slow": 30},
    "symbols": ["BTCUSDT"], "timeframe": "1h", "start": "2025-01-01T00:00:00Z",
    "end": "2025-03-01T00:00:00Z", "capital": "10000",
}  # fmt: skip
ANY = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}


def paths() -> dict[str, Any]:
    """Every seed 004 path."""
    op = {"security": SIGNED}
    return {
        "/v1/backtest/jobs": {
            "post": {**op, "summary": "Create a backtest job (weight 20)", "requestBody": body("JobRequest", JOB_EXAMPLE),
                     "responses": {"201": _json("Job", "queued"), **_errors(400, 401, 402, 404, 409, 413, 429)}},
            "get": {**op, "summary": "The caller's jobs, newest first (weight 1)",
                    "parameters": [STATUS_PARAM, limit(), CURSOR],
                    "responses": {"200": ANY, **_errors(400, 401, 429)}},
        },
        "/v1/backtest/jobs/{job_id}": {"get": {**op, "summary": "One job (weight 1)", "parameters": [ID], "responses": {"200": _json("Job"), **_errors(401, 404, 429)}}},
        "/v1/backtest/jobs/{job_id}/result": {"get": {**op, "summary": "A done job's full result (weight 1)", "parameters": [ID], "responses": {"200": ANY, **_errors(401, 404, 409, 429)}}},
        "/v1/backtest/jobs/{job_id}/cancel": {"post": {**op, "summary": "Cancel a job (weight 1)", "parameters": [ID], "responses": {"200": _json("Job"), **_errors(401, 404, 409, 429)}}},
    }  # fmt: skip
