"""A seed 004 job becomes the same run config as a v2 template run; signed requests, weights."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from pydantic import ValidationError
from starlette.requests import Request

from engine.data import BarStore
from protocol import seed004
from protocol.errors import ApiError, ErrorCode
from protocol.requests import BacktestCreate, ExecutionSpec
from protocol.times import iso, parse_time
from server import signing, strategies
from server.auth import User, lookup_prefix
from server.ratelimit import WeightLimiter
from server.translate import config_for, load_object, reject_nul, validation_error

SURFACE = "jobs"


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, ErrorCode.VALIDATION_ERROR, f"{field}: {message}", field=field)


async def signed_user(request: Request, weight: int) -> User:
    """The user of a correctly signed request that fits its key's weight budget; 401 or 429."""
    h = request.headers
    headers = signing.Signed(
        h.get("x-pipai-api-key"), h.get("x-pipai-timestamp"), h.get("x-pipai-signature")
    )
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    target = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
    settings = request.app.state.settings
    try:
        user = await signing.verify(
            request.app.state.pool, headers, request.method, target, await request.body(),
            window=settings.signature_window_seconds,
        )  # fmt: skip
    except signing.SignatureError as exc:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, str(exc)) from exc
    limiter = getattr(request.app.state, "job_weights", None)
    if limiter is None:
        limiter = request.app.state.job_weights = WeightLimiter(settings.job_weight_per_minute)
    wait = limiter.take(lookup_prefix(headers.key or ""), weight)
    if wait is not None:
        raise ApiError(
            429, ErrorCode.RATE_LIMITED,
            f"this key spent its request weight of {settings.job_weight_per_minute} per minute;"
            f" retry in {wait} s", headers={"Retry-After": str(wait)},
        )  # fmt: skip
    return user


def parse(body: bytes) -> seed004.JobBody:
    """Validate a job body: 400 INVALID_PARAMETER naming the field."""
    raw = load_object(body)  # its 422 becomes INVALID_PARAMETER's 400 on this surface
    reject_nul(raw)
    try:
        return seed004.JobBody.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from exc


async def stored_config(pool: asyncpg.Pool, strategy_id: str, user: User) -> dict[str, Any]:
    """A saved job config as the base of a job: 404 unknown, 409 deleted or not a job config."""
    row = await strategies.get(pool, strategy_id, user.id)
    if row is None:
        raise ApiError(
            404, ErrorCode.NOT_FOUND, f"strategy {strategy_id!r} not found", field="strategy_id"
        )
    if row["deleted_at"] is not None:
        raise ApiError(
            409, ErrorCode.INVALID_STATE, f"strategy {strategy_id} was deleted",
            field="strategy_id",
        )  # fmt: skip
    if row["dialect"] != "job":
        raise ApiError(
            409, ErrorCode.INVALID_STATE,
            f"strategy {strategy_id} is not a template job config (it is a {row['dialect']}"
            " strategy); save one with a \"job\" object", field="strategy_id",
        )  # fmt: skip
    return row["definition"]


def venue_for(symbol: str) -> str:
    """The venue whose fees match_exchange uses: Coinbase for dash pairs quoted in USD or USDC
    (BTC-USDC), Binance otherwise (exchange-style BTCUSDT, the seed's own example)."""
    return (
        "coinbase" if "-" in symbol and symbol.rsplit("-", 1)[1] in ("USD", "USDC") else "binance"
    )


def build(
    body: seed004.JobBody, stored: dict[str, Any], store: BarStore, now: datetime
) -> dict[str, Any]:
    """The run config of a job: the echo (`job`) and everything a template run needs."""
    sent = body.model_dump(exclude_none=True, exclude={"strategy_id"})
    cfg = seed004.merged(stored, sent)
    for name in seed004.REQUIRED:
        if name not in cfg:
            raise _invalid(name, "Field required")
    start, end = parse_time(cfg["start"]), parse_time(cfg["end"])
    bad = seed004.check_window(start, end, now)
    if bad is not None:
        raise _invalid(*bad)
    cfg["start"], cfg["end"] = iso(start, "auto"), iso(end, "auto")
    execution: dict[str, Any] = {"fee_model": cfg["fee_model"], "leverage": cfg["leverage"]}
    if cfg["fee_model"] == "fixed_bps":
        execution["fee_bps"] = float(Decimal(str(cfg["fee_bps"])))
    if cfg["fee_model"] == "match_exchange":
        execution["venue"] = venue_for(cfg["symbols"][0])
    try:
        req = BacktestCreate(
            symbols=cfg["symbols"], start=start, end=end, resolution=cfg["timeframe"],
            capital=float(Decimal(str(cfg["capital"]))), template=cfg["template_id"],
            template_params=cfg["params"], execution=ExecutionSpec.model_validate(execution),
        )  # fmt: skip
    except ValidationError as exc:
        raise validation_error(exc) from exc
    config = config_for(req, store)
    # jsonb keeps no key order: the echo is also kept as text, in the order it was sent.
    return {**config, "surface": SURFACE, "job": cfg, "job_echo": orjson.dumps(cfg).decode()}


def new_short_id() -> str:
    """A job id: bt_ and 8 hex digits."""
    return f"bt_{uuid.uuid4().hex[:8]}"


def now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)
