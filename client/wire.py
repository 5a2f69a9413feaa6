"""The SDK's requests and answers without I/O: one definition shared by the sync and async
clients, which only send what these functions build and parse what comes back."""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx

from client.errors import BarstreamError
from client.models import Run, RunResults
from protocol.enums import RunState

__all__ = [
    "DEFAULT_URL",
    "Call",
    "auth_headers",
    "check",
    "completed_id",
    "create_body",
    "next_page",
    "stream_url",
    "total_count",
]

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8000"
RUNS = "/api/v2/backtests"
STRATEGIES = "/api/v2/strategies"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    def content(self) -> bytes | None:
        """The JSON body as bytes, or None."""
        return None if self.body is None else json.dumps(self.body).encode()


def auth_headers(key: str | None) -> dict[str, str]:
    """The headers every request carries."""
    out = {"Accept": "application/json"}
    if key:
        out["Authorization"] = f"Bearer {key}"
    return out


def error_from(response: httpx.Response) -> BarstreamError:
    """A BarstreamError from an error answer (`{"error": {"code", "message", "field"?}}`)."""
    try:
        err = response.json().get("error")
    except (ValueError, AttributeError):
        err = None
    if not isinstance(err, dict):
        text = response.text.strip()[:200] or response.reason_phrase
        return BarstreamError(response.status_code, "http_error", text)
    return BarstreamError(
        response.status_code,
        str(err.get("code", "http_error")),
        str(err.get("message", "")),
        field=err.get("field"),
        details=err.get("details"),
    )


def check(response: httpx.Response) -> Any:
    """The answer's JSON, or a BarstreamError for a 4xx/5xx status."""
    if response.status_code >= 400:
        raise error_from(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def total_count(response: httpx.Response) -> int | None:
    """The `X-Total-Count` of a list answer, if it has one."""
    raw = response.headers.get("X-Total-Count")
    return int(raw) if raw is not None and raw.isdigit() else None


def completed_id(run: Run) -> str:
    """The run's id if it completed; a BarstreamError with its error if it did not."""
    if run.state == RunState.COMPLETED:
        return run.run_id
    if run.error is not None:
        code, message = run.error.code, run.error.message
    else:
        code, message = str(run.state), f"the run is {run.state}"
    raise BarstreamError(None, code, f"run {run.run_id} {run.state}: {message}", run_id=run.run_id)


RESULTS_PAGE = 1000  # rows of each listing the results request asks for at once


def next_page(response: httpx.Response) -> str | None:
    """The URL of the next page (`Link: <…>; rel="next"`), or None on the last page."""
    return response.links.get("next", {}).get("url")


def _plain(value: Any) -> Any:
    """Dates and times as ISO 8601, tuples as lists, recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def create_body(body: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A v2 create body: `body` with `fields` on top; a single symbol may be a string."""
    out = {**(body or {}), **fields}
    if isinstance(out.get("symbols"), str):
        out["symbols"] = [out["symbols"]]
    return {str(k): _plain(v) for k, v in out.items()}


def stream_url(base_url: str, run_id: str, last_event_id: int) -> str:
    """The WebSocket URL of a run's stream, resuming after `last_event_id`."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = f"{parts.path.rstrip('/')}{RUNS}/{quote(run_id, safe='')}/stream"
    query = urlencode({"last_event_id": last_event_id})
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def _items(document: Any) -> list[dict[str, Any]]:
    return list(document["items"])


def _runs(document: Any) -> list[Run]:
    return [Run.from_wire(d) for d in document]


def _same(document: Any) -> Any:
    return document


def _id(run_id: str) -> str:
    return quote(str(run_id), safe="")


def submit(body: dict[str, Any]) -> Call[Run]:
    return Call("POST", RUNS, Run.from_wire, body=body)


def get(run_id: str) -> Call[Run]:
    return Call("GET", f"{RUNS}/{_id(run_id)}", Run.from_wire)


def runs(state: str | None, include_archived: bool, page_size: int) -> Call[list[Run]]:
    params: dict[str, Any] = {"limit": page_size}
    if state:
        params["state"] = state
    if include_archived:
        params["include_archived"] = "true"
    return Call("GET", RUNS, _runs, params=params)


def results(run_id: str) -> Call[dict[str, Any]]:
    """The results document with the first page of each listing (see `more_pages`)."""
    return Call("GET", f"{RUNS}/{_id(run_id)}/results", _same, params={"limit": RESULTS_PAGE})


def more_pages(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(listing, URL of its next page) for each listing the results document holds in part."""
    paging = document.get("paging") or {}
    return [(kind, p["next"]) for kind, p in paging.items() if p.get("next")]


def whole_results(document: dict[str, Any]) -> RunResults:
    """The results once every page is in: each listing as long as its total, else an error."""
    for kind, p in (document.get("paging") or {}).items():
        if len(document.get(kind, [])) != p.get("total"):
            got, total = len(document.get(kind, [])), p.get("total")
            raise BarstreamError(None, "incomplete_results", f"{kind}: read {got} of {total} rows")
    return RunResults.from_wire(document)


def action(run_id: str, name: str) -> Call[Run]:
    """POST …/cancel, …/archive or …/unarchive."""
    return Call("POST", f"{RUNS}/{_id(run_id)}/{name}", Run.from_wire)


def catalog(name: str) -> Call[list[dict[str, Any]]]:
    """GET /api/v2/symbols, /signals or /templates: their items."""
    return Call("GET", f"/api/v2/{name}", _items)


def create_strategy(body: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", STRATEGIES, _same, body=body)


def strategies(include_deleted: bool, page_size: int) -> Call[list[dict[str, Any]]]:
    params: dict[str, Any] = {"limit": page_size}
    if include_deleted:
        params["include_deleted"] = "true"
    return Call("GET", STRATEGIES, list, params=params)


def get_strategy(strategy_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{STRATEGIES}/{_id(strategy_id)}", _same)


def delete_strategy(strategy_id: str) -> Call[None]:
    return Call("DELETE", f"{STRATEGIES}/{_id(strategy_id)}", lambda _: None)
