"""`AsyncClient`: the asyncio SDK (httpx for REST, websockets' asyncio client for the stream)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect

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

__all__ = ["AsyncClient", "AsyncFollow", "AsyncPages"]

T = TypeVar("T")
Items = list[dict[str, Any]]  # a catalog's items (named here: `list` is a method below)
EventHook = Callable[[Event], object] | Callable[[Event], Awaitable[object]]


class AsyncClient:
    """A barstream server, for asyncio.

    >>> async with AsyncClient("http://127.0.0.1:8000", key="bs_...") as bs:
    ...     run = await bs.submit(symbols=["ETH"], start="2024-03-01", end="2024-09-01",
    ...                           strategy=strategy)
    ...     async for event in bs.follow(run.run_id):
    ...         print(event.id, event.type, event.data)
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
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=wire.auth_headers(key), timeout=timeout
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def _send(self, call: wire.Call[Any]) -> httpx.Response:
        content = call.content()
        headers = {"Content-Type": "application/json"} if content is not None else None
        return await self._http.request(
            call.method, call.path, params=call.params, content=content, headers=headers
        )

    async def _call(self, call: wire.Call[T]) -> T:
        return call.parse(wire.check(await self._send(call)))

    async def submit(self, body: Mapping[str, Any] | None = None, /, **fields: Any) -> Run:
        """Create a v2 run from a create body and/or its fields as keywords; return its status."""
        return await self._call(wire.submit(wire.create_body(body, fields)))

    async def get(self, run_id: str) -> Run:
        """A run's status."""
        return await self._call(wire.get(run_id))

    def list(
        self, *, state: str | None = None, include_archived: bool = False, page_size: int = 50
    ) -> AsyncPages[Run]:
        """The caller's runs, newest first, fetched a page at a time as the iteration goes."""
        return AsyncPages(self, wire.runs(state, include_archived, page_size))

    async def results(self, run_id: str) -> RunResults:
        """A completed run's results with every fill and round trip: the pages past the first are
        fetched here (409 `run_not_finished` before it completes)."""
        document = await self._call(wire.results(run_id))
        for kind, url in wire.more_pages(document):
            next_url: str | None = url
            while next_url is not None:
                response = await self._http.get(next_url)  # the link's own query, as sent
                rows = wire.check(response)
                document[kind] += rows
                next_url = wire.next_page(response) if rows else None
        return wire.whole_results(document)

    async def cancel(self, run_id: str) -> Run:
        """Ask a run to stop (409 `run_finished` if it already ended); return its status."""
        return await self._call(wire.action(run_id, "cancel"))

    async def archive(self, run_id: str) -> Run:
        """Hide a run from the default list."""
        return await self._call(wire.action(run_id, "archive"))

    async def unarchive(self, run_id: str) -> Run:
        """Bring an archived run back to the default list."""
        return await self._call(wire.action(run_id, "unarchive"))

    async def symbols(self) -> Items:
        """The symbols that can be backtested, with their ranges and resolutions."""
        return await self._call(wire.catalog("symbols"))

    async def signals(self) -> Items:
        """The signal catalog."""
        return await self._call(wire.catalog("signals"))

    async def templates(self) -> Items:
        """The template catalog, each with a JSON Schema of its params."""
        return await self._call(wire.catalog("templates"))

    async def create_strategy(self, body: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        """Save a strategy; return the stored object (with its `strategy_id`)."""
        return await self._call(wire.create_strategy(wire.create_body(body, fields)))

    def strategies(self, *, include_deleted: bool = False, page_size: int = 50) -> AsyncPages[Any]:
        """The caller's saved strategies, newest first."""
        return AsyncPages(self, wire.strategies(include_deleted, page_size))

    async def get_strategy(self, strategy_id: str) -> Any:
        """One saved strategy (deleted ones too)."""
        return await self._call(wire.get_strategy(strategy_id))

    async def delete_strategy(self, strategy_id: str) -> None:
        """Delete a saved strategy (it stays readable, starts no new run)."""
        await self._call(wire.delete_strategy(strategy_id))

    def follow(
        self, run_id: str, last_event_id: int = 0, *, on_reconnect: ReconnectHook | None = None
    ) -> AsyncFollow:
        """The run's events after `last_event_id`, through dropped connections, to the end."""
        return AsyncFollow(self, run_id, last_event_id, on_reconnect)

    async def wait(self, run_id: str, on_event: EventHook | None = None) -> RunResults:
        """Follow a run to its end; its results, or a BarstreamError if it failed or was cancelled."""
        async with self.follow(run_id) as events:
            async for event in events:
                if on_event is not None:
                    done = on_event(event)
                    if asyncio.iscoroutine(done):
                        await done
        return await self.results(wire.completed_id(await self.get(run_id)))

    async def run(
        self,
        body: Mapping[str, Any] | None = None,
        /,
        *,
        on_event: EventHook | None = None,
        **fields: Any,
    ) -> RunResults:
        """Submit a run, follow it (calling `on_event` per event) and return its results."""
        return await self.wait((await self.submit(body, **fields)).run_id, on_event)

    def _connect(self, run_id: str, last_event_id: int) -> connect:
        return connect(
            wire.stream_url(self.url, run_id, last_event_id),
            additional_headers=wire.auth_headers(self.key),
            open_timeout=self.timeout,
            close_timeout=5,
        )

    async def _refused(self, run_id: str, exc: BaseException) -> BarstreamError:
        """The REST API's own error for the run (401, 404), else a `stream_refused` one."""
        try:
            await self.get(run_id)
        except BarstreamError as err:
            return err
        except httpx.HTTPError:
            pass
        return refusal(exc, run_id)


class AsyncFollow(AsyncIterator[Event]):
    """A run's events, in order, each once, reconnecting after drops; ends at the terminal state.

    `connection` is the open WebSocket (None between connections), `last_event_id` the id of
    the last event yielded, `reconnects` how many times it connected again.
    """

    def __init__(
        self,
        client: AsyncClient,
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

    def __aiter__(self) -> AsyncFollow:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def __aenter__(self) -> AsyncFollow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop following and close the connection."""
        await self._events.aclose()

    async def _run(self) -> AsyncGenerator[Event, None]:
        seq = EventSequence(self.run_id, self.last_event_id)
        backoff, failures = self._client.backoff, 0
        while True:
            try:
                async with self._client._connect(self.run_id, seq.last) as ws:
                    self.connection = ws
                    while True:
                        event = seq.accept(await ws.recv())
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
                    raise await self._client._refused(self.run_id, exc) from exc
                failures += 1
                if backoff.exhausted(failures):
                    raise unavailable(self.run_id, failures, exc) from exc
                delay = backoff.delay(failures)
                if self._on_reconnect is not None:
                    self._on_reconnect(failures, delay, exc)
                await asyncio.sleep(delay)
                self.reconnects += 1
            finally:
                self.connection = None


class AsyncPages(AsyncIterator[T]):
    """Items of a paged list, fetched a page at a time; `total` is known after the first page."""

    def __init__(self, client: AsyncClient, first: wire.Call[list[T]]) -> None:
        self.total: int | None = None
        self._items = self._walk(client, first)

    def __aiter__(self) -> AsyncPages[T]:
        return self

    async def __anext__(self) -> T:
        return await self._items.__anext__()

    async def _walk(self, client: AsyncClient, call: wire.Call[list[T]]) -> AsyncGenerator[T, None]:
        response = await client._send(call)
        while True:
            items = call.parse(wire.check(response))
            self.total = wire.total_count(response)
            for item in items:
                yield item
            url = wire.next_page(response)
            if url is None:
                return
            response = await client._http.get(url)
