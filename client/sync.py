"""`Client`: the blocking SDK (httpx for REST, websockets' sync client for the stream)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from websockets.sync.client import ClientConnection, connect

from client import wire
from client.errors import BarstreamError
from client.models import Run, RunResults
from client.stream import (
    RETRYABLE,
    Backoff,
    EventSequence,
    Outcome,
    ReconnectHook,
    classify,
    refusal,
    unavailable,
)
from protocol.events import Event

__all__ = ["Client", "Follow", "Pages"]

T = TypeVar("T")
Items = list[dict[str, Any]]  # a catalog's items (named here: `list` is a method below)


class Client:
    """A barstream server, blocking.

    >>> with Client("http://127.0.0.1:8000", key="bs_...") as bs:
    ...     results = bs.run(symbols=["ETH"], start="2024-03-01", end="2024-09-01",
    ...                      strategy=strategy, on_event=print)
    ...     results.metrics["sharpe_ratio"]
    """

    def __init__(
        self,
        url: str = wire.DEFAULT_URL,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self._http = httpx.Client(
            base_url=self.url, headers=wire.auth_headers(key), timeout=timeout
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def _send(self, call: wire.Call[Any]) -> httpx.Response:
        content = call.content()
        headers = {"Content-Type": "application/json"} if content is not None else None
        return self._http.request(
            call.method, call.path, params=call.params, content=content, headers=headers
        )

    def _call(self, call: wire.Call[T]) -> T:
        return call.parse(wire.check(self._send(call)))

    def submit(self, body: Mapping[str, Any] | None = None, /, **fields: Any) -> Run:
        """Create a v2 run from a create body and/or its fields as keywords; return its status."""
        return self._call(wire.submit(wire.create_body(body, fields)))

    def get(self, run_id: str) -> Run:
        """A run's status."""
        return self._call(wire.get(run_id))

    def list(
        self, *, state: str | None = None, include_archived: bool = False, page_size: int = 50
    ) -> Pages[Run]:
        """The caller's runs, newest first, fetched a page at a time as the iteration goes."""
        return Pages(self, wire.runs(state, include_archived, page_size))

    def results(self, run_id: str) -> RunResults:
        """A completed run's results with every fill and round trip: the pages past the first are
        fetched here (409 `run_not_finished` before it completes)."""
        document = self._call(wire.results(run_id))
        for kind, url in wire.more_pages(document):
            next_url: str | None = url
            while next_url is not None:
                response = self._http.get(next_url)  # the link's own query, as sent
                rows = wire.check(response)
                document[kind] += rows
                next_url = wire.next_page(response) if rows else None
        return wire.whole_results(document)

    def cancel(self, run_id: str) -> Run:
        """Ask a run to stop (409 `run_finished` if it already ended); return its status."""
        return self._call(wire.action(run_id, "cancel"))

    def archive(self, run_id: str) -> Run:
        """Hide a run from the default list."""
        return self._call(wire.action(run_id, "archive"))

    def unarchive(self, run_id: str) -> Run:
        """Bring an archived run back to the default list."""
        return self._call(wire.action(run_id, "unarchive"))

    def symbols(self) -> Items:
        """The symbols that can be backtested, with their ranges and resolutions."""
        return self._call(wire.catalog("symbols"))

    def signals(self) -> Items:
        """The signal catalog."""
        return self._call(wire.catalog("signals"))

    def templates(self) -> Items:
        """The template catalog, each with a JSON Schema of its params."""
        return self._call(wire.catalog("templates"))

    def create_strategy(self, body: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        """Save a strategy; return the stored object (with its `strategy_id`)."""
        return self._call(wire.create_strategy(wire.create_body(body, fields)))

    def strategies(self, *, include_deleted: bool = False, page_size: int = 50) -> Pages[Any]:
        """The caller's saved strategies, newest first."""
        return Pages(self, wire.strategies(include_deleted, page_size))

    def get_strategy(self, strategy_id: str) -> Any:
        """One saved strategy (deleted ones too)."""
        return self._call(wire.get_strategy(strategy_id))

    def delete_strategy(self, strategy_id: str) -> None:
        """Delete a saved strategy (it stays readable, starts no new run)."""
        self._call(wire.delete_strategy(strategy_id))

    def follow(
        self, run_id: str, last_event_id: int = 0, *, on_reconnect: ReconnectHook | None = None
    ) -> Follow:
        """The run's events after `last_event_id`, through dropped connections, to the end."""
        return Follow(self, run_id, last_event_id, on_reconnect)

    def wait(self, run_id: str, on_event: Callable[[Event], object] | None = None) -> RunResults:
        """Follow a run to its end; its results, or a BarstreamError if it failed or was cancelled."""
        with self.follow(run_id) as events:
            for event in events:
                if on_event is not None:
                    on_event(event)
        return self.results(wire.completed_id(self.get(run_id)))

    def run(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        on_event: Callable[[Event], object] | None = None,
        **fields: Any,
    ) -> RunResults:
        """Submit a run, follow it (calling `on_event` per event) and return its results."""
        return self.wait(self.submit(body, **fields).run_id, on_event)

    def _connect(self, run_id: str, last_event_id: int) -> ClientConnection:
        return connect(
            wire.stream_url(self.url, run_id, last_event_id),
            additional_headers=wire.auth_headers(self.key),
            open_timeout=self.timeout,
            close_timeout=5,
        )

    def _refused(self, run_id: str, exc: BaseException) -> BarstreamError:
        """The REST API's own error for the run (401, 404), else a `stream_refused` one."""
        try:
            self.get(run_id)
        except BarstreamError as err:
            return err
        except httpx.HTTPError:
            pass
        return refusal(exc, run_id)


class Follow(Iterator[Event]):
    """A run's events, in order, each once, reconnecting after drops; ends at the terminal state.

    `connection` is the open WebSocket (None between connections), `last_event_id` the id of
    the last event yielded, `reconnects` how many times it connected again.
    """

    def __init__(
        self,
        client: Client,
        run_id: str,
        last_event_id: int = 0,
        on_reconnect: ReconnectHook | None = None,
    ) -> None:
        self.run_id = run_id
        self.last_event_id = last_event_id
        self.reconnects = 0
        self.connection: ClientConnection | None = None
        self._client = client
        self._on_reconnect = on_reconnect
        self._events = self._run()

    def __iter__(self) -> Follow:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def __enter__(self) -> Follow:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop following and close the connection."""
        self._events.close()

    def _run(self) -> Generator[Event, None, None]:
        seq = EventSequence(self.run_id, self.last_event_id)
        backoff, failures = self._client.backoff, 0
        while True:
            try:
                with self._client._connect(self.run_id, seq.last) as ws:
                    self.connection = ws
                    while True:
                        event = seq.accept(ws.recv())
                        if event is None:
                            continue
                        failures, self.last_event_id = 0, event.id
                        yield event
                        if seq.done:
                            return
            except RETRYABLE as exc:
                outcome = classify(exc)
                if outcome is Outcome.END:
                    return
                if outcome is Outcome.REFUSED:
                    raise self._client._refused(self.run_id, exc) from exc
                failures += 1
                if backoff.exhausted(failures):
                    raise unavailable(self.run_id, failures, exc) from exc
                delay = backoff.delay(failures)
                if self._on_reconnect is not None:
                    self._on_reconnect(failures, delay, exc)
                time.sleep(delay)
                self.reconnects += 1
            finally:
                self.connection = None


class Pages(Iterator[T]):
    """Items of a paged list, fetched a page at a time; `total` is known after the first page."""

    def __init__(self, client: Client, first: wire.Call[list[T]]) -> None:
        self.total: int | None = None
        self._items = self._walk(client, first)

    def __iter__(self) -> Pages[T]:
        return self

    def __next__(self) -> T:
        return next(self._items)

    def _walk(self, client: Client, call: wire.Call[list[T]]) -> Generator[T, None, None]:
        response = client._send(call)
        while True:
            items = call.parse(wire.check(response))
            self.total = wire.total_count(response)
            yield from items
            url = wire.next_page(response)
            if url is None:
                return
            response = client._http.get(url)
