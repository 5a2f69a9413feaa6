"""The canonical error body, and one total table per surface from the canonical codes to its own."""

import jsonschema
import pytest

from protocol import seed003, seed004, v1
from protocol.errors import ApiError, ErrorBody, ErrorCode


def test_the_body_leaves_out_what_is_not_given() -> None:
    assert ApiError(404, ErrorCode.NOT_FOUND, "no such run").body() == {
        "error": {"code": "not_found", "message": "no such run"}
    }
    err = ApiError(422, ErrorCode.VALIDATION_ERROR, "bad", field="symbols.0", details=[])
    assert err.body() == {
        "error": {"code": "validation_error", "message": "bad", "field": "symbols.0"}
    }


def test_the_published_error_schema_takes_the_bodies_and_names_every_code() -> None:
    schema = ErrorBody.model_json_schema()
    details = [{"field": "a", "message": "m"}]
    body = ApiError(422, ErrorCode.VALIDATION_ERROR, "m", field="a", details=details).body()
    jsonschema.validate(body, schema)
    assert set(schema["$defs"]["ErrorCode"]["enum"]) == {c.value for c in ErrorCode}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"error": {"code": "nonsense", "message": "m"}}, schema)


def test_each_surface_maps_every_canonical_code() -> None:
    assert set(seed003.RENAMED) == set(ErrorCode)
    assert set(seed004.CODES) == set(ErrorCode)


# Seed 004's error table (README "Errors" of the seed 004 section, from seeds/004).
@pytest.mark.parametrize(
    ("code", "status", "name"),
    [
        (ErrorCode.INVALID_DATE_RANGE, 400, "INVALID_PARAMETER"),
        (ErrorCode.INVALID_TEMPLATE, 400, "INVALID_PARAMETER"),
        (ErrorCode.INVALID_JSON, 400, "INVALID_PARAMETER"),
        (ErrorCode.UNSUPPORTED_ASSET, 400, "INVALID_PARAMETER"),
        (ErrorCode.UNAUTHORIZED, 401, "UNAUTHENTICATED"),
        (ErrorCode.INSUFFICIENT_CREDITS, 402, "INSUFFICIENT_CREDITS"),
        (ErrorCode.NOT_FOUND, 404, "NOT_FOUND"),
        (ErrorCode.STRATEGY_DELETED, 409, "INVALID_STATE"),
        (ErrorCode.RUN_NOT_FINISHED, 409, "INVALID_STATE"),
        (ErrorCode.PAYLOAD_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE"),
        (ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (ErrorCode.TOO_MANY_RUNS, 429, "RATE_LIMITED"),
        (ErrorCode.DATABASE_UNAVAILABLE, 503, "UNAVAILABLE"),
    ],
)
def test_seed004_codes(code: ErrorCode, status: int, name: str) -> None:
    assert seed004.error_body(code, "m", "f") == (
        status,
        {"error": {"code": name, "message": "m", "field": "f"}},
    )


# Seed 003's error table (README "Errors" of the seed 003 section, from seeds/003).
@pytest.mark.parametrize(
    ("code", "raised", "name", "status"),
    [
        (ErrorCode.INVALID_JSON, 400, "invalid_payload", 400),
        (ErrorCode.VALIDATION_ERROR, 422, "invalid_payload", 400),
        (ErrorCode.PAYLOAD_TOO_LARGE, 413, "invalid_payload", 413),
        (ErrorCode.INVALID_STRATEGY, 400, "invalid_strategy", 400),
        (ErrorCode.INVALID_DATE_RANGE, 400, "invalid_date_range", 400),
        (ErrorCode.UNSUPPORTED_ASSET, 400, "unsupported_asset", 400),
        (ErrorCode.UNAUTHORIZED, 401, "unauthorized", 401),
        (ErrorCode.INSUFFICIENT_CREDITS, 402, "insufficient_credits", 402),
        (ErrorCode.NOT_FOUND, 404, "not_found", 404),
        (ErrorCode.TOO_MANY_RUNS, 429, "rate_limited", 429),
        (ErrorCode.RATE_LIMITED, 429, "rate_limited", 429),
        (ErrorCode.INTERNAL_ERROR, 500, "execution_failed", 500),
        (seed003.Code.INVALID_PAYLOAD, 400, "invalid_payload", 400),
    ],
)
def test_seed003_codes(code: str, raised: int, name: str, status: int) -> None:
    assert seed003.to_seed003(code, raised) == (name, status)


def test_seed001_uses_the_canonical_codes() -> None:
    assert v1.error_body(ErrorCode.NOT_FOUND, "gone", None, None) == {
        "success": False,
        "detail": "gone",
        "error": {"code": "not_found", "message": "gone"},
    }
