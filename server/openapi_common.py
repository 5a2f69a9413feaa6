"""What every surface's OpenAPI operations share: paging and flag parameters with the bounds the
server holds them to (server.paging), and the error answers any route can give.

`answers` adds to each operation the errors it can answer without saying so itself, in the
error shape of its surface (server.responses.render picks the same by path): 401 and 503 (the
key is checked in the database) on every keyed route, 400, 413, 415 and the surface's
validation status on every route with a body, and that status on every route with a query.
"""

from typing import Any

from protocol.enums import RunState

_ERROR_SHAPES = (("/api/v1/", "V1Error"), ("/api/public/v1/", "Seed003Error"), ("/v1/", "JobError"))
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
FLAG_SPELLINGS = "`true`/`false`, also `1`/`0` and `yes`/`no`, any case; anything else is refused"


def limit(most: int = 200, default: int = 50) -> dict[str, Any]:
    """The `limit` query parameter of a listing (server.paging.limit)."""
    return {
        "name": "limit", "in": "query",
        "description": f"items per page, 1 to {most}; plain digits",
        "schema": {"type": "integer", "minimum": 1, "maximum": most, "default": default},
    }  # fmt: skip


CURSOR = {
    "name": "cursor", "in": "query",
    "description": "the next page's cursor, as the previous page gave it (`Link` or"
    " `next_cursor`); opaque: any other value is refused",
    "schema": {"type": "string"},
}  # fmt: skip
RUN_STATE = {
    "name": "state", "in": "query", "description": "only runs in this state",
    "schema": {"type": "string", "enum": [s.value for s in RunState]},
}  # fmt: skip


def flag(name: str, what: str) -> dict[str, Any]:
    """A boolean query parameter (server.paging.flag)."""
    return {
        "name": name, "in": "query", "description": f"{what}; {FLAG_SPELLINGS}",
        "schema": {"type": "boolean", "default": False},
    }  # fmt: skip


# Request examples (the README's): each one a request the server takes on its demo data, so a
# reader can send it as it is and schemathesis' examples phase makes real runs and strategies.
SEED_STRATEGY = {
    "name": "ETH Strategy", "asset": "ETH",
    "entry": [
        {"name": "macd_bullish_cross", "timeframe": "1h", "signal_type": "TRIGGER",
         "params": {"window_fast": 12, "window_slow": 26, "window_sign": 9}},
        {"name": "is_above_sma", "timeframe": "1h", "signal_type": "FILTER", "params": {"window": 50}},
    ],
    "exit": [{"name": "sma_cross_down", "timeframe": "1h", "params": {}}],
}  # fmt: skip


def body(ref: str, example: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """A JSON request body of component `ref` with an example."""
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"required": required,
            "content": {"application/json": {"schema": schema, "example": example}}}  # fmt: skip


def error_shape(path: str) -> str:
    """The component name of the error body a request to `path` gets."""
    return next((name for prefix, name in _ERROR_SHAPES if path.startswith(prefix)), "Error")


_WHY = {
    "400": "the body is not JSON, or a rule no schema can state (an unknown symbol or signal,"
    " a date range outside the data)",
    "401": "missing or invalid API key",
    "413": "the body is larger than BARSTREAM_MAX_BODY_BYTES",
    "415": "the body is not JSON (Content-Type other than application/json)",
    "422": "a field or query parameter breaks a rule of this document",
    "503": "the database is unavailable; retry after Retry-After seconds",
}


def answers(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation of `paths` with the errors it can answer (documented ones kept)."""
    for path, ops in paths.items():
        shape = error_shape(path)
        invalid = "400" if shape in ("Seed003Error", "JobError") else "422"
        for op in ops.values():
            if "101" in op["responses"]:
                continue  # a WebSocket: refusals are close codes (README, Events and the stream)
            wanted: list[str] = []
            if op.get("security") != []:
                wanted += ["401", "503"]
            if "requestBody" in op:
                wanted += ["400", "413", "415", invalid]
            if any(p["in"] == "query" for p in op.get("parameters", [])):
                wanted.append(invalid)
            responses = op["responses"]
            for status in sorted(set(wanted)):
                why = _WHY[status]
                if status == invalid == "400":
                    why = f"{_WHY['422']}; {why}"
                responses.setdefault(status, _error(shape, why))
            if "503" in wanted:
                responses["503"].setdefault("headers", RETRY_AFTER)
            op["responses"] = dict(sorted(responses.items()))
    return paths


def _error(shape: str, description: str) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{shape}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}
