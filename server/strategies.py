"""Saved strategies: checked on save, owned per user, soft-deleted, merged into run requests."""

import uuid
from typing import Any

import asyncpg
import orjson
from pydantic import ValidationError

from engine.data import BarStore
from protocol.errors import ApiError, ErrorCode
from protocol.strategies import StrategyBody
from server import paging
from server.events import iso
from server.translate import Saved, check_strategy, load_object, reject_nul, validation_error

_COLUMNS = (
    "id, name, description, dialect, definition, asset, execution_config, created_at,"
    " updated_at, deleted_at"
)


def wire(row: asyncpg.Record) -> dict[str, Any]:
    """The wire form of a stored strategy (see protocol.strategies.SavedStrategy)."""
    sid = str(row["id"])
    return {
        "strategy_id": sid,
        "id": sid,
        "name": row["name"],
        "description": row["description"],
        "asset": row["asset"],
        "dialect": row["dialect"],
        "strategy": row["definition"],
        "execution_config": row["execution_config"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "deleted": row["deleted_at"] is not None,
        "deleted_at": iso(row["deleted_at"]),
    }


def parse(body: bytes) -> StrategyBody:
    """Validate a create/update body: 400 for bad JSON, 422 naming the field."""
    raw = load_object(body)
    reject_nul(raw)
    try:
        return StrategyBody.from_wire(raw)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def definition(body: StrategyBody) -> tuple[dict[str, Any], str] | None:
    """The strategy object of a body and the field it came from, or None when it has none."""
    if body.job is not None:
        return body.job, "job"
    if body.strategy is not None:
        return body.strategy, "strategy"
    if body.strategy_json is None:
        return None
    try:
        spec = orjson.loads(body.strategy_json)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            400, ErrorCode.INVALID_STRATEGY, f"strategy_json is not valid JSON: {exc}",
            field="strategy_json",
        ) from exc  # fmt: skip
    return spec, "strategy_json"


def _check(spec: Any, source: str, dialect: str) -> None:
    """A strategy object by its dialect's rules, or a job config by seed 004's field rules."""
    if source != "job":
        check_strategy(spec, source, dialect)
        return
    from engine import TEMPLATES
    from protocol.seed004 import JobBody

    if "strategy_id" in spec:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "job.strategy_id: a saved job config"
                       " cannot name another strategy", field="job.strategy_id")  # fmt: skip
    try:
        job = JobBody.model_validate(spec)
    except ValidationError as exc:
        raise validation_error(exc, prefix="job") from exc
    if job.template_id is not None and job.template_id not in TEMPLATES:
        raise ApiError(
            400, ErrorCode.INVALID_TEMPLATE,
            f"job.template_id: unknown template {job.template_id!r} ({', '.join(TEMPLATES)})",
            field="job.template_id",
        )  # fmt: skip


def _check_asset(store: BarStore, asset: str | None) -> None:
    if asset is not None and store.resolve(asset) is None:
        raise ApiError(
            400, ErrorCode.UNSUPPORTED_ASSET,
            f"asset: unknown symbol {asset!r}; GET /api/v2/symbols lists them", field="asset",
        )  # fmt: skip


def _name(body: StrategyBody, spec: dict[str, Any]) -> str:
    name = body.name or (spec.get("name") if isinstance(spec.get("name"), str) else None)
    return (name or spec.get("template_id") or "strategy")[:200]


async def create(
    pool: asyncpg.Pool, store: BarStore, user_id: uuid.UUID, body: StrategyBody, dialect: str
) -> asyncpg.Record:
    """Check and store a new strategy; 422 when the body has no strategy."""
    found = definition(body)
    if found is None:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, "strategy: a strategy object is required"
            " (strategy, strategy_json, or the object's own fields)", field="strategy",
        )  # fmt: skip
    spec, source = found
    dialect = "job" if source == "job" else dialect
    _check(spec, source, dialect)
    asset = body.asset or (spec.get("asset") if isinstance(spec.get("asset"), str) else None)
    _check_asset(store, asset)
    return await pool.fetchrow(
        "INSERT INTO strategies (id, user_id, name, description, dialect, definition, asset,"
        f" execution_config) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}",
        uuid.uuid4(), user_id, _name(body, spec), body.description, dialect, spec, asset,
        body.execution_defaults() or {},
    )  # fmt: skip


async def get(pool: asyncpg.Pool, strategy_id: str, user_id: uuid.UUID) -> asyncpg.Record | None:
    """The caller's strategy (deleted ones too), or None."""
    try:
        sid = uuid.UUID(strategy_id)
    except ValueError:
        return None
    return await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM strategies WHERE id = $1 AND user_id = $2", sid, user_id
    )


async def update(
    pool: asyncpg.Pool,
    store: BarStore,
    row: asyncpg.Record,
    body: StrategyBody,
    *,
    replace: bool,
) -> asyncpg.Record:
    """Replace (PUT) or change (PATCH) a live strategy; 409 once it is deleted."""
    if row["deleted_at"] is not None:
        raise ApiError(
            409, ErrorCode.STRATEGY_DELETED, f"strategy {row['id']} was deleted; create a new one",
            field="strategy_id",
        )  # fmt: skip
    found = definition(body)
    if found is None and replace:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, "strategy: PUT replaces the whole strategy and"
            " needs its object; PATCH changes single fields", field="strategy",
        )  # fmt: skip
    spec = row["definition"]
    if found is not None:
        spec, source = found
        if (source == "job") != (row["dialect"] == "job"):
            raise ApiError(
                422, ErrorCode.VALIDATION_ERROR, f"{source}: a {row['dialect']} strategy cannot"
                " become another kind; create a new one", field=source,
            )  # fmt: skip
        _check(spec, source, row["dialect"])
    sent = body.model_fields_set
    execution = body.execution_defaults()

    def pick(key: str, new: Any) -> Any:
        return new if replace or key in sent else row[key]

    asset = pick("asset", body.asset or (spec.get("asset") if found else None))
    _check_asset(store, asset)
    return await pool.fetchrow(
        "UPDATE strategies SET name = $2, description = $3, definition = $4, asset = $5,"
        f" execution_config = $6, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        row["id"],
        body.name if body.name else (_name(body, spec) if found or replace else row["name"]),
        pick("description", body.description),
        spec,
        asset,
        pick("execution_config", execution or {}),
    )


async def delete(pool: asyncpg.Pool, row: asyncpg.Record) -> None:
    """Mark a strategy deleted (idempotent); runs that used it keep reading it."""
    await pool.execute(
        "UPDATE strategies SET deleted_at = coalesce(deleted_at, now()) WHERE id = $1", row["id"]
    )


async def page(
    pool: asyncpg.Pool,
    user_id: uuid.UUID,
    *,
    limit: int,
    cursor: paging.Cursor | None,
    include_deleted: bool,
) -> tuple[list[asyncpg.Record], int, str | None]:
    """One page of the caller's strategies, newest first, the total, and the next cursor."""
    where = ["user_id = $1"] + ([] if include_deleted else ["deleted_at IS NULL"])
    return await paging.fetch_page(pool, "strategies", _COLUMNS, where, [user_id], limit, cursor)


async def for_run(pool: asyncpg.Pool, strategy_id: str, user_id: uuid.UUID) -> Saved:
    """The live strategy a run request names; 404 when unknown, someone else's, or deleted."""
    row = await get(pool, strategy_id, user_id)
    if row is None:
        raise ApiError(
            404, ErrorCode.NOT_FOUND, f"strategy {strategy_id!r} not found", field="strategy_id"
        )
    if row["deleted_at"] is not None:
        raise ApiError(
            404, ErrorCode.NOT_FOUND, f"strategy {strategy_id!r} was deleted and starts no new run",
            field="strategy_id",
        )  # fmt: skip
    keys = ("id", "name", "dialect", "definition", "asset", "execution_config")
    return Saved(*(row[k] for k in keys))
