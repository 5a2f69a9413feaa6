"""`barstream run` and `barstream runs …`: the command-line client, built on the SDK.

server/cli.py adds these subcommands to the `barstream` command with `add_commands`.
"""

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from client.config import ConfigError, resolve
from client.display import metrics_table, run_table, runs_table, view_for
from client.errors import BarstreamError
from client.sync import Client
from protocol.enums import TERMINAL_STATES, RunState

__all__ = ["add_commands"]

INTERRUPTED = 130
BODY_KEYS = frozenset({"strategy", "strategy_json", "strategy_id", "template", "symbols"})
DEFAULT_DAYS = 365
WIDE = 400  # columns of output that is not a terminal: a table is as wide as it needs


def _client(args: argparse.Namespace) -> Client:
    settings = resolve(args.url, args.key)
    if not settings.key:
        raise ConfigError(
            "no API key: pass --key, set BARSTREAM_API_KEY, or put api_key in "
            "~/.config/barstream/config.toml (see `barstream run --help`)"
        )
    return Client(settings.url, settings.key)


def _console(args: argparse.Namespace) -> Console:
    """Standard output (standard error when standard output carries JSON); not a terminal,
    it does not wrap at 80 columns."""
    console = Console(highlight=False, stderr=bool(getattr(args, "json", False)))
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = WIDE
    return console


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def _load_file(path: str) -> Any:
    try:
        return json.loads(sys.stdin.read() if path == "-" else Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON ({exc})") from exc


def _catalog_entry(symbols: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    want = name.upper()
    for s in symbols:
        if want == s["name"].upper() or want in (a.upper() for a in s.get("aliases", [])):
            return s
    return None


def _default_window(bs: Client, body: dict[str, Any]) -> None:
    """Fill a missing end with the symbols' last bar, a missing start with a year before it."""
    catalog = bs.symbols()
    entries = [_catalog_entry(catalog, str(s)) for s in body.get("symbols") or []]
    if not entries or None in entries:
        return  # the server names the unknown symbol
    first = max(datetime.fromisoformat(e["first_bar"]) for e in entries if e)
    last = min(datetime.fromisoformat(e["last_bar"]) for e in entries if e)
    body.setdefault("end", last.isoformat())
    start = max(first, datetime.fromisoformat(body["end"]) - timedelta(days=DEFAULT_DAYS))
    body.setdefault("start", start.isoformat())


def create_body(args: argparse.Namespace, bs: Client) -> dict[str, Any]:
    """The v2 create body from the strategy file (a strategy or a whole body) and the flags."""
    doc = _load_file(args.strategy) if args.strategy else {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{args.strategy}: a JSON object is needed")
    body = dict(doc) if BODY_KEYS & doc.keys() else ({"strategy": doc} if doc else {})
    if args.strategy_id:
        body.pop("strategy", None)
        body["strategy_id"] = args.strategy_id
    if args.symbols:
        body["symbols"] = [s for chunk in args.symbols for s in chunk.split(",") if s]
    elif "symbols" not in body and isinstance(body.get("strategy"), dict):
        asset = body["strategy"].get("asset")
        body.update({"symbols": [asset]} if asset else {})
    flags = {"start": args.start, "end": args.end, "resolution": args.resolution,
             "capital": args.capital, "name": args.name}  # fmt: skip
    body.update({k: v for k, v in flags.items() if v is not None})
    if "strategy" not in body and "strategy_id" not in body and "template" not in body:
        raise ConfigError(
            "give --strategy FILE (a strategy or a whole create body) or --strategy-id"
        )
    if ("start" not in body or "end" not in body) and body.get("symbols"):
        _default_window(bs, body)
    return body


class Watch:
    """Follows one run on the console; Ctrl+C asks whether to cancel the run or detach."""

    def __init__(self, bs: Client, run_id: str, console: Console, *, show: bool = True) -> None:
        self.bs, self.run_id, self.console, self.show = bs, run_id, console, show
        self.last_event_id = 0
        self.final: str | None = None

    def follow(self, last_event_id: int = 0) -> int:
        """Follow to the end and report; the exit status."""
        self.last_event_id = last_event_id
        try:
            self._follow()
        except KeyboardInterrupt:
            return self._interrupted()
        return self.report()

    def _follow(self) -> None:
        view = view_for(self.console, self.run_id) if self.show else None

        def reconnecting(failures: int, delay: float, exc: BaseException) -> None:
            text = f"connection lost ({type(exc).__name__}); reconnecting in {delay:.1f}s"
            (view.note if view else self.console.print)(f"{text} (attempt {failures})")

        with self.bs.follow(self.run_id, self.last_event_id, on_reconnect=reconnecting) as events:
            try:
                if view is not None:
                    view.start()
                for event in events:
                    self.last_event_id = event.id
                    if view is not None:
                        view.event(event)
                    if event.type == "state" and event.data.state in TERMINAL_STATES:
                        self.final = str(event.data.state)
            finally:
                if view is not None:
                    view.stop()

    def report(self) -> int:
        """Print the outcome (the metrics table once completed); the exit status."""
        run = self.bs.get(self.run_id)
        if run.state != RunState.COMPLETED and not self.show:
            _print_json(run.to_dict())
            return 1
        if run.state != RunState.COMPLETED:
            why = f": {run.error.code}: {run.error.message}" if run.error else ""
            self.console.print(f"run {run.run_id} {run.state}{why}", markup=False)
            return 1
        results = self.bs.results(self.run_id)
        if not self.show:
            _print_json(results.to_dict())
            return 0
        plain = not self.console.is_terminal
        self.console.print(metrics_table(results.to_dict()["metrics"], plain=plain))
        return 0

    def _interrupted(self) -> int:
        self.console.print(f"\ninterrupted; run {self.run_id} is still on the server", markup=False)
        if sys.stdin.isatty() and self._ask() == "cancel":
            return self._cancel()
        self.console.print(
            f"detached: run {self.run_id} keeps running. Follow it again with:\n"
            f"  barstream runs follow {self.run_id}",
            markup=False,
            soft_wrap=True,
        )
        return INTERRUPTED

    def _ask(self) -> str:
        prompt = "[c]ancel the run, or [d]etach and leave it running? [d] "
        try:
            answer = self.console.input(prompt, markup=False).strip().lower()
        except (EOFError, KeyboardInterrupt):
            return "detach"
        return "cancel" if answer.startswith("c") else "detach"

    def _cancel(self) -> int:
        try:
            self.bs.cancel(self.run_id)
            self.console.print(f"cancel requested for run {self.run_id}", markup=False)
        except BarstreamError as err:
            if err.code != "run_finished":
                raise
        for _ in self.bs.follow(self.run_id, self.last_event_id):
            pass
        state = self.bs.get(self.run_id).state
        self.console.print(f"run {self.run_id} {state}", markup=False)
        return INTERRUPTED


def run_command(args: argparse.Namespace) -> int:
    """Submit a run and, unless --no-follow, follow it to its results."""
    console = _console(args)
    with _client(args) as bs:
        run = bs.submit(create_body(args, bs))
        c = run.config
        if not args.follow:
            if args.json:
                _print_json(run.to_dict())
            else:
                console.print(f"run {run.run_id} submitted ({run.state})", markup=False)
                console.print(f"follow it with: barstream runs follow {run.run_id}", markup=False)
            return 0
        console.print(
            f"run {run.run_id} submitted: {','.join(run.symbols)} {c.get('resolution')} "
            f"{c.get('start')} .. {c.get('end')}",
            markup=False,
            soft_wrap=True,
        )
        return Watch(bs, run.run_id, console, show=not args.json).follow()


def runs_list(args: argparse.Namespace) -> int:
    """The caller's runs, newest first."""
    with _client(args) as bs:
        pages = bs.list(
            state=args.state, include_archived=args.archived, page_size=min(args.limit, 200)
        )
        runs = [r for _, r in zip(range(args.limit), pages, strict=False)]
    if args.json:
        _print_json([r.to_dict() for r in runs])
        return 0
    console = _console(args)
    console.print(runs_table(runs, plain=not console.is_terminal))
    console.print(f"{len(runs)} of {pages.total or 0} runs", markup=False)
    return 0


def _one(action: Callable[[Client, str], Any]) -> Callable[[argparse.Namespace], int]:
    """A `runs` subcommand that acts on one run and shows its status."""

    def command(args: argparse.Namespace) -> int:
        with _client(args) as bs:
            run = action(bs, args.run_id)
        if args.json:
            _print_json(run.to_dict())
        else:
            console = _console(args)
            console.print(run_table(run, plain=not console.is_terminal))
        return 0

    command.__doc__ = action.__doc__
    return command


def runs_results(args: argparse.Namespace) -> int:
    """A completed run's metrics (the whole results document with --json)."""
    with _client(args) as bs:
        results = bs.results(args.run_id)
    if args.json:
        _print_json(results.to_dict())
        return 0
    console = _console(args)
    doc = results.to_dict()
    console.print(metrics_table(doc["metrics"], plain=not console.is_terminal))
    console.print(
        f"{len(doc['trades'])} fills, {len(doc['round_trips'])} round trips, "
        f"{len(doc['open_positions'])} open positions",
        markup=False,
    )
    return 0


def runs_follow(args: argparse.Namespace) -> int:
    """Follow a run's events to its end, reconnecting after drops."""
    with _client(args) as bs:
        if not args.json_lines:
            return Watch(bs, args.run_id, _console(args)).follow(args.last_event_id)
        err = Console(stderr=True, highlight=False)
        with bs.follow(
            args.run_id,
            args.last_event_id,
            on_reconnect=lambda n, d, e: err.print(f"reconnecting in {d:.1f}s (attempt {n})"),
        ) as events:
            for event in events:
                sys.stdout.write(event.model_dump_json() + "\n")
                sys.stdout.flush()
    return 0


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Errors as one line on standard error and exit status 1, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (BarstreamError, ConfigError) as err:
            print(f"barstream: error: {err}", file=sys.stderr)
        except httpx.HTTPError as err:
            print(f"barstream: error: cannot reach the server: {err}", file=sys.stderr)
        except KeyboardInterrupt:
            return INTERRUPTED
        return 1

    run.__doc__ = command.__doc__
    return run


def _connection_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--url", default=None, help="server URL (else BARSTREAM_URL, config file)")
    p.add_argument("--key", default=None, help="API key (else BARSTREAM_API_KEY, config file)")
    return p


def _run_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    r = sub.add_parser(
        "run",
        parents=[common],
        help="submit a backtest and follow it with a live progress bar",
        description="Submit a v2 run and follow it (the default) to its metrics; Ctrl+C asks "
        "whether to cancel the run or detach. URL and key: --url/--key, else BARSTREAM_URL/"
        "BARSTREAM_API_KEY, else url/api_key in $BARSTREAM_CONFIG or "
        "~/.config/barstream/config.toml.",
    )
    r.add_argument("--strategy", help="JSON file: a strategy object or a whole v2 create body")
    r.add_argument("--strategy-id", help="a saved strategy's id instead of a file")
    r.add_argument("--symbols", action="append", help="ETH or ETH,BTC (repeatable)")
    r.add_argument("--from", dest="start", help="ISO 8601 start (default: a year before --to)")
    r.add_argument("--to", dest="end", help="ISO 8601 end (default: the symbols' last bar)")
    r.add_argument("--resolution", help="tick, 1s, 1m, 5m, 15m, 1h, 4h, 1d, 1w, 1M (default 1h)")
    r.add_argument("--capital", type=float)
    r.add_argument("--name")
    r.add_argument(
        "--follow",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="follow the run to its end (default); --no-follow only submits",
    )
    r.add_argument("--json", action="store_true", help="print the results document (JSON)")
    r.set_defaults(func=_guarded(run_command))


def add_commands(sub: Any) -> None:
    """Add `run` and `runs list|show|results|cancel|archive|unarchive|follow` to `sub`."""
    common = _connection_options()
    _run_parser(sub, common)
    runs = sub.add_parser("runs", help="list, show, follow, cancel and archive runs")
    rs = runs.add_subparsers(dest="runs_command", required=True)
    ls = rs.add_parser("list", parents=[common], help="your runs, newest first")
    ls.add_argument("--state", choices=[s.value for s in RunState])
    ls.add_argument("--archived", action="store_true", help="include archived runs")
    ls.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_guarded(runs_list))
    one: dict[str, Callable[[Client, str], Any]] = {
        "show": Client.get,
        "cancel": Client.cancel,
        "archive": Client.archive,
        "unarchive": Client.unarchive,
    }
    for name, action in one.items():
        p = rs.add_parser(name, parents=[common], help=(action.__doc__ or "").rstrip("."))
        p.add_argument("run_id")
        p.add_argument("--json", action="store_true", help="print the status object (JSON)")
        p.set_defaults(func=_guarded(_one(action)))
    res = rs.add_parser("results", parents=[common], help="a completed run's metrics")
    res.add_argument("run_id")
    res.add_argument("--json", action="store_true", help="print the whole results document")
    res.set_defaults(func=_guarded(runs_results))
    f = rs.add_parser("follow", parents=[common], help="follow a run's events to its end")
    f.add_argument("run_id")
    f.add_argument("--last-event-id", type=int, default=0, help="start after this event")
    f.add_argument("--json-lines", action="store_true", help="print each event as a JSON line")
    f.set_defaults(func=_guarded(runs_follow))
