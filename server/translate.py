"""The one place that knows both the wire and the engine: a v2 request becomes a run config."""

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from engine import StrategyError, compile_strategy
from engine.data import BASE_RESOLUTIONS, BarStore
from protocol.enums import RESOLUTIONS
from protocol.errors import ApiError, ErrorCode
from protocol.requests import BacktestCreate, ExecutionSpec
from protocol.results import METRICS
from protocol.times import iso, iso_ns, to_ns

_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Saved:
    """What a run request takes from the saved strategy it names."""

    id: uuid.UUID
    name: str
    dialect: str
    definition: dict[str, Any]
    asset: str | None
    execution_config: dict[str, Any]


def validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    """Turn pydantic's errors into a 422 naming the first field (all of them in `details`)."""
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "") or "body"
        details.append({"field": loc, "message": err["msg"]})
    first = details[0]
    return ApiError(
        422,
        ErrorCode.VALIDATION_ERROR,
        f"{first['field']}: {first['message']}",
        field=first["field"],
        details=details,
    )


def _nul_path(value: Any, path: str) -> str | None:
    """The path of a string or key holding a NUL (depth first), without recursion (a
    body may nest 1,000 deep; keys are stored too, in a strategy's free-form `description`)."""
    stack = [(value, path)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            # "\\u0000" in a string that holds JSON (strategy_json) becomes a NUL once parsed.
            if "\x00" in value or "\\u0000" in value:
                return path
            continue
        items = (
            value.items()
            if isinstance(value, dict)
            else enumerate(value)
            if isinstance(value, list)
            else ()
        )
        subs = []
        for key, item in items:
            if isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                name = key.replace("\x00", "\\u0000")
                sub = f"{path}.{name}" if path else name
                if name != key:
                    return sub
            subs.append((item, sub))
        stack.extend(reversed(subs))
    return None


def reject_nul(raw: Any, path: str = "") -> None:
    """422 naming the first field whose text holds a NUL character (PostgreSQL cannot store it)."""
    field = _nul_path(raw, path)
    if field is not None:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"{field}: text must not contain NUL characters",
            field=field or "body",
        )  # fmt: skip


def load_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object without NUL characters: 400 invalid_json when
    it is not JSON, 422 validation_error when it is not an object or holds a NUL."""
    try:
        raw = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, ErrorCode.INVALID_JSON, "the request body is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "the body must be a JSON object")
    return raw


def _aware(ts: datetime, tz: str) -> datetime:
    """A naive timestamp is read in the request's time zone; an aware one keeps its offset."""
    return ts.replace(tzinfo=ZoneInfo(tz)) if ts.tzinfo is None else ts


def _strategy(req: BacktestCreate) -> dict[str, Any]:
    if req.strategy_json is not None:
        try:
            spec = orjson.loads(req.strategy_json)
        except orjson.JSONDecodeError as exc:
            raise ApiError(
                400,
                ErrorCode.INVALID_STRATEGY,
                f"strategy_json is not valid JSON: {exc}",
                field="strategy_json",
            ) from exc
        if not isinstance(spec, dict):
            raise ApiError(
                400,
                ErrorCode.INVALID_STRATEGY,
                "strategy_json must encode a JSON object",
                field="strategy_json",
            )
        return spec
    assert req.strategy is not None
    return req.strategy


def check_strategy(spec: dict[str, Any], source: str, dialect: str = "v2") -> None:
    try:
        compile_strategy(spec, dialect=dialect)
    except StrategyError as exc:
        field = f"{source}.{exc.path}" if exc.path else source
        message = exc.message
        if dialect == "seed001" and message.startswith("belongs in the execution"):
            message = "does not belong in the strategy: set it in execution_config"
        raise ApiError(400, ErrorCode.INVALID_STRATEGY, f"{field}: {message}", field=field) from exc


def _step(interval: str) -> int:
    """A run interval's length in ns (0 for ticks; weeks and months at their nominal length)."""
    return BASE_RESOLUTIONS[interval]


def _timeframe_problem(timeframe: str, interval: str) -> str | None:
    """Why a signal timeframe (a wire name) cannot run on the run's bars, or None when it can."""
    from engine import timeframe_problem

    return timeframe_problem(interval, RESOLUTIONS.get(timeframe, timeframe))


def _check_timeframes(spec: dict[str, Any], source: str, interval: str) -> None:
    """A signal may run on the run's bars or a coarser multiple of them, never a finer one."""
    for group in ("entry", "exit", "short_entry", "short_exit", "conditions"):
        for i, sig in enumerate(spec.get(group) or []):
            tf = sig.get("timeframe") if isinstance(sig, dict) else None
            problem = None if tf is None else _timeframe_problem(tf, interval)
            if problem is not None:
                field = f"{source}.{group}[{i}].timeframe"
                raise ApiError(400, ErrorCode.INVALID_STRATEGY, f"{field}: {problem}", field=field)


def _execution(req: BacktestCreate, saved: Saved | None) -> ExecutionSpec:
    """The run's execution settings: a saved strategy's defaults under the request's own."""
    if saved is None or not saved.execution_config:
        return req.execution
    merged = {**saved.execution_config, **req.execution.model_dump(exclude_unset=True)}
    try:
        return ExecutionSpec.model_validate(merged)
    except ValidationError as exc:
        raise validation_error(exc, prefix="execution") from exc


def _check_execution(execution: ExecutionSpec) -> None:
    """Rules that need the engine's tables (venues, fee tiers, margin): 422 naming the field."""
    from engine import Execution

    try:
        Execution.from_dict(execution.model_dump(exclude_none=True))
    except ValueError as exc:
        path, _, message = str(exc).partition(": ")
        field = f"execution.{path}" if message else "execution"
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, f"{field}: {message or exc}", field=field
        ) from exc


# A sweep may simulate at most this many variant-bar steps (about a minute of one core).
MAX_SWEEP_VARIANT_BARS = 2_000_000_000


def _check_budget(
    store: BarStore, symbols: list[str], start_ns: int, end_ns: int, interval: str, variants: int
) -> None:
    """Refuse before queuing a sweep whose variants times bars exceed the budget (a tick run
    counts every stored tick)."""
    step = _step(interval)
    bars = sum((min(end_ns, i.last_ts) - max(start_ns, i.first_ts)) // step + 1 if step
               else i.bar_count
               for i in (store.resolve(s) for s in symbols) if i is not None)  # fmt: skip
    if variants * bars > MAX_SWEEP_VARIANT_BARS:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR,
            f"the sweep would simulate {variants:,} variants of {bars:,} bars; at most"
            f" {MAX_SWEEP_VARIANT_BARS:,} variant-bars per run: narrow the grid, the range or"
            " the resolution", field="sweep",
        )  # fmt: skip


def _check_sweep(
    req: BacktestCreate, spec: dict[str, Any], source: str, interval: str, dialect: str = "v2"
) -> dict[str, Any] | None:
    """Expand a sweep once to check every variant compiles; return its config entry."""
    if req.sweep is None:
        return None
    from engine import SweepError, expand

    if req.sweep.rank_by not in METRICS:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR,
            f"sweep.rank_by must be a metric: {', '.join(sorted(METRICS))}", field="sweep.rank_by",
        )  # fmt: skip
    try:
        variants = expand(spec, req.sweep.grid, dialect=dialect)
    except SweepError as exc:
        path = exc.path.replace("strategy.", f"{source}.", 1)
        code = ErrorCode.INVALID_STRATEGY if path.startswith(source) else ErrorCode.VALIDATION_ERROR
        status = 400 if code == ErrorCode.INVALID_STRATEGY else 422
        raise ApiError(status, code, f"{path}: {exc.message}", field=path) from exc
    for v in variants:  # a grid may vary a timeframe: each variant must suit the run's bars
        for cond in v.strategy.conditions:
            problem = cond.timeframe and _timeframe_problem(cond.timeframe, interval)
            if problem:
                field = f"{source}.{cond.path}.timeframe"
                raise ApiError(
                    400, ErrorCode.INVALID_STRATEGY,
                    f"{field}: {problem} (variant {v.params})",
                    field=field,
                )  # fmt: skip
    return {**req.sweep.model_dump(), "variant_count": len(variants)}


def _symbols(
    store: BarStore,
    names: list[str],
    start_ns: int | None,
    end_ns: int | None,
    resolution: str | None = None,
) -> list[str]:
    """Resolve names to stored symbols: 400 for an unknown one, for a resolution it has no data
    at (or a run cannot use), or for a range outside its data; the range check is skipped
    when start_ns is None."""
    resolved = []
    for i, name in enumerate(names):
        info = store.resolve(name)
        if info is None:
            raise ApiError(
                400,
                ErrorCode.UNSUPPORTED_ASSET,
                f"unknown symbol {name!r}; GET /api/v2/symbols lists them",
                field=f"symbols.{i}",
            )
        if resolution is not None:
            _check_resolution(info, resolution)
        # The last bar covers [last_ts, last_ts + step), so an end inside it is covered;
        # ticks have no length (step 0), so there the data ends at the last tick itself.
        step = BASE_RESOLUTIONS[info.base_resolution]
        data_end = info.last_ts + max(step, 1)  # exclusive
        if (
            start_ns is not None
            and end_ns is not None
            and not (info.first_ts <= start_ns and end_ns < data_end)
        ):
            first = datetime.fromtimestamp(info.first_ts / _NS, UTC)
            last = datetime.fromtimestamp(info.last_ts / _NS, UTC)
            until = datetime.fromtimestamp((info.last_ts + step) / _NS, UTC)
            ends = f" (bar opens; the last bar ends at {iso(until, 'auto')})" if step else ""
            raise ApiError(
                400,
                ErrorCode.INVALID_DATE_RANGE,
                f"{info.name} has data from {iso(first, 'auto')} to {iso(last, 'auto')}{ends};"
                " the requested range is outside it",
                field="start" if not info.first_ts <= start_ns < data_end else "end",
            )
        if info.name in resolved:
            first = resolved.index(info.name)
            raise ApiError(
                422, ErrorCode.VALIDATION_ERROR,
                f"symbols.{i}: {name!r} names {info.name}, as symbols.{first} does; give each"
                " symbol once", field=f"symbols.{i}",
            )  # fmt: skip
        resolved.append(info.name)
    return resolved


def _check_bars(
    store: BarStore, symbols: list[str], start_ns: int, end_ns: int, interval: str, tz: str
) -> None:
    """400 naming `end` unless a bar of the run's resolution opens in [start, end] for some symbol
    (1h from 10:18 to 10:19 has none): a run without one would fail in its worker. The first
    64 bars' span is read; the whole range only when that span has none (a gap in the data)."""
    probe_end = min(end_ns, start_ns + 64 * _step(interval)) if _step(interval) else end_ns
    for s in symbols:
        if len(store.load(s, interval, start_ns, probe_end, tz=tz)):
            return
    for s in symbols if probe_end < end_ns else ():
        if len(store.load(s, interval, start_ns, end_ns, tz=tz)):
            return
    raise ApiError(
        400, ErrorCode.INVALID_DATE_RANGE,
        f"no {interval} bar of {', '.join(symbols)} opens from {iso_ns(start_ns, 'auto')} to"
        f" {iso_ns(end_ns, 'auto')}: widen the range or use a finer resolution", field="end",
    )  # fmt: skip


def _check_resolution(info: Any, resolution: str) -> None:
    """400 unsupported_resolution naming the symbol unless it has data at that resolution."""
    if RESOLUTIONS[resolution] in info.resolutions:
        return
    raise ApiError(
        400,
        ErrorCode.UNSUPPORTED_RESOLUTION,
        f"{info.name} has no {resolution} data (stored at {info.base_resolution}); it can run"
        f" at: {', '.join(info.resolutions)}",
        field="resolution",
    )


def parse_create(body: bytes) -> BacktestCreate:
    """Validate a v2 create body: 400 for bad JSON, 422 naming the field."""
    if b"\\u0000" in body:
        with contextlib.suppress(orjson.JSONDecodeError):  # the model's parse says so below
            reject_nul(orjson.loads(body))
    try:
        return BacktestCreate.model_validate_json(body or b"{}")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ApiError(
                400, ErrorCode.INVALID_JSON, "the request body is not valid JSON"
            ) from exc
        raise validation_error(exc) from exc


def build_config(body: bytes, store: BarStore) -> dict[str, Any]:
    """Validate a v2 create body without a saved strategy; return the resolved config."""
    return config_for(parse_create(body), store)


def _run_symbols(req: BacktestCreate, saved: Saved | None) -> list[str]:
    if req.symbols:
        return req.symbols
    if saved is not None and saved.asset:
        return [saved.asset]
    why = "the saved strategy has no asset" if saved else "only a saved strategy's asset"
    raise ApiError(
        422, ErrorCode.VALIDATION_ERROR, f"symbols: Field required ({why} can stand in for it)",
        field="symbols", details=[{"field": "symbols", "message": "Field required"}],
    )  # fmt: skip


_INT_RANGE = (-(2**63), 2**64 - 1)  # what a stored (JSON) config can hold


def storable(config: dict[str, Any]) -> dict[str, Any]:
    """The config, or a 422 naming the first integer too large to store (a 500 before)."""
    try:
        orjson.dumps(config)
    except TypeError as exc:
        field = _huge_int(config) or "body"
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR,
            f"{field}: integers must lie in {_INT_RANGE[0]}..{_INT_RANGE[1]}; send a larger"
            " number as a float or a string", field=field,
        ) from exc  # fmt: skip
    return config


def _huge_int(value: Any) -> str | None:
    """The path of the first integer outside _INT_RANGE, depth first, without recursion."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, int) and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            return path
        if isinstance(value, dict):
            items = [(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()]
        elif isinstance(value, list):
            items = [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        else:
            continue
        stack.extend(reversed(items))
    return None


def config_for(
    req: BacktestCreate, store: BarStore, saved: Saved | None = None, dialect: str = "v2"
) -> dict[str, Any]:
    """Resolve a validated request (and the saved strategy it names) into a storable config."""
    return storable(_config(req, store, saved, dialect))


def _config(
    req: BacktestCreate, store: BarStore, saved: Saved | None, dialect: str
) -> dict[str, Any]:
    """Resolve a validated request (and the saved strategy it names) into a run config."""
    if saved is not None and saved.dialect == "job":
        raise ApiError(
            400, ErrorCode.INVALID_STRATEGY, f"strategy_id: strategy {saved.id} is a template job"
            " config; run it with POST /v1/backtest/jobs", field="strategy_id",
        )  # fmt: skip
    start, end = _aware(req.start, req.timezone), _aware(req.end, req.timezone)
    if start >= end:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "start must be before end", field="start")
    names = _run_symbols(req, saved)
    interval = RESOLUTIONS[req.resolution]
    start_ns, end_ns = to_ns(start), to_ns(end)
    symbols = _symbols(store, names, start_ns, end_ns, req.resolution)
    if interval == "tick" and len(symbols) > 1:
        raise ApiError(
            422, ErrorCode.VALIDATION_ERROR, "symbols: a tick run takes one symbol (ticks of"
            " several symbols share no bar clock); run each alone or use second bars",
            field="symbols",
        )  # fmt: skip
    _check_bars(store, symbols, start_ns, end_ns, interval, req.timezone)
    common = {
        **_common(req, start, end, interval, symbols),
        **_benchmark(store, req, start_ns, end_ns),
    }
    execution = _execution(req, saved)
    _check_execution(execution)
    if req.template is not None:
        return {**common, **_template(req, symbols)}
    if saved is not None:
        spec, source, dialect = saved.definition, "strategy_id", saved.dialect
    else:
        source = "strategy" if req.strategy is not None else "strategy_json"
        spec = _strategy(req)
    check_strategy(spec, source, dialect)
    _check_timeframes(spec, source, interval)
    sweep = _check_sweep(req, spec, source, interval, dialect)
    if sweep:
        _check_budget(store, symbols, start_ns, end_ns, interval, sweep["variant_count"])
    return {
        **common,
        "strategy": spec,
        "execution": execution.model_dump(exclude_none=True),
        **({"dialect": dialect} if dialect != "v2" else {}),
        **({"strategy_id": str(saved.id)} if saved is not None else {}),
        **({"sweep": sweep} if sweep else {}),
    }


def _common(
    req: BacktestCreate, start: datetime, end: datetime, interval: str, symbols: list[str]
) -> dict[str, Any]:
    return {
        "name": req.name,
        "symbols": symbols,
        "start": iso(start, "auto"),
        "end": iso(end, "auto"),
        "resolution": req.resolution,
        "interval": interval,
        "capital": req.capital,
        "currency": req.currency,
        "timezone": req.timezone,
        **({"periods_per_year": req.periods_per_year} if req.periods_per_year else {}),
        **({"risk_free_rate": req.risk_free_rate} if req.risk_free_rate else {}),
    }


def _benchmark(store: BarStore, req: BacktestCreate, start_ns: int, end_ns: int) -> dict[str, str]:
    """The config entry of the symbol a run compares with: 400 naming `benchmark` unless it
    has data at the run's resolution over the whole range."""
    if req.benchmark is None:
        return {}
    try:
        [name] = _symbols(store, [req.benchmark], start_ns, end_ns, req.resolution)
    except ApiError as exc:
        raise ApiError(
            exc.status, exc.code, f"benchmark: {exc.message}", field="benchmark"
        ) from exc
    return {"benchmark": name}


def _template(req: BacktestCreate, symbols: list[str]) -> dict[str, Any]:
    """Check a template's params and symbol count; its runs hold one position at a time
    unless the request says otherwise (exit signals of templates stay true for many bars)."""
    from engine import TemplateError, compile_template

    assert req.template is not None
    params = req.template_params or {}
    try:
        compile_template(req.template, params, symbols=symbols)
    except TemplateError as exc:
        field = (
            exc.path.replace("params", "template_params", 1)
            if exc.path.startswith("params")
            else exc.path
        )
        raise ApiError(
            400, ErrorCode.INVALID_TEMPLATE, f"{field}: {exc.message}", field=field
        ) from exc
    execution = req.execution.model_dump(exclude_none=True)
    if "max_open_positions" not in req.execution.model_fields_set:
        execution["max_open_positions"] = 1
    return {"template": req.template, "template_params": params, "execution": execution}


def job_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Return what a worker needs to run a stored config."""

    def ns(ts: str) -> int:
        return to_ns(datetime.fromisoformat(ts))

    return {
        "symbols": config["symbols"],
        "resolution": config["interval"],
        "start_ns": ns(config["start"]),
        "end_ns": ns(config["end"]),
        "strategy": config.get("strategy"),
        "execution": config["execution"],
        "capital": config["capital"],
        "timezone": config.get("timezone", "UTC"),
        "dialect": config.get("dialect", "v2"),
        **{
            k: config[k] for k in ("periods_per_year", "risk_free_rate", "benchmark") if k in config
        },
        **({"sweep": config["sweep"]} if config.get("sweep") else {}),
        **(
            {"template": config["template"], "template_params": config["template_params"]}
            if config.get("template")
            else {}
        ),
    }
