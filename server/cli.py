"""The `barstream` command: `serve`, `keys create`, `credits`, `data import|list|export|fetch`,
and the client's `run` and `runs …` (client/cli.py)."""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

from client.cli import add_commands
from server.settings import Settings


class Server(uvicorn.Server):
    """uvicorn's server, closing our streams with 1001 before it drops connections."""

    def __init__(self, config: uvicorn.Config, app: object) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list | None = None) -> None:  # type: ignore[override]
        streams = getattr(getattr(self._app, "state", None), "streams", None)
        if streams is not None:
            streams.shutdown()
            await streams.wait_closed()
        await super().shutdown(sockets)


def _settings(args: argparse.Namespace) -> Settings:
    kwargs = {}
    if getattr(args, "data_dir", None):
        kwargs["data_dir"] = Path(args.data_dir)
    for name in ("host", "port", "workers"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    return Settings(**kwargs)


def serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted."""
    from server.app import create_app
    from server.connections import protocol_for
    from server.logs import configure

    configure(args.log_level.upper())
    settings = _settings(args)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_ping_interval=settings.ws_ping_seconds,
        ws_ping_timeout=settings.ws_ping_seconds,
        # No permessage-deflate: a compressed frame is per connection, and the stream's frames
        # are built once per node for every subscriber (server/stream.py, Wire).
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=10,
        server_header=False,
        http=protocol_for(settings),
    )
    try:
        Server(config, app).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C after a clean shutdown
        return 130
    return 0


async def _create_key(settings: Settings, user: str, signed_only: bool = False) -> tuple[str, str]:
    from server.auth import create_key
    from server.db.pool import Database
    from server.signing import derive, server_secret

    db = Database(settings)
    pool = await db.open(min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            key = await create_key(conn, user, signed_only=signed_only)
            return key, derive(await server_secret(conn), key)
    finally:
        await db.close()


def keys_create(args: argparse.Namespace) -> int:
    """Create a key for a user (created if new): the key on stdout, its signing secret on
    stderr (both shown once); with --json both as one JSON object on stdout."""
    key, secret = asyncio.run(_create_key(_settings(args), args.user, args.signed_only))
    if args.json:
        print(json.dumps({"key": key, "signing_secret": secret}))
    else:
        print(key)
        print(
            f"signing secret for signed (seed 004) requests, shown once: {secret}", file=sys.stderr
        )
    return 0


async def _credits(settings: Settings, op: str, user: str, amount: Any) -> Any:
    from server import credits
    from server.db.pool import Database

    db = Database(settings)
    pool = await db.open(min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            if op == "grant":
                return await credits.grant(conn, user, amount)
            if op == "set":
                await credits.set_balance(conn, user, amount)
            return await credits.show(conn, user)
    finally:
        await db.close()


def _amount(text: str) -> Any:
    """A credit amount for argparse: a finite decimal number >= 0."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not value.is_finite() or value < 0 or value > Decimal("1e15"):
        raise argparse.ArgumentTypeError(f"{text!r}: a number from 0 to 1e15")
    return value


def _credit_text(value: Any) -> str:
    return "unlimited" if value is None else f"{value.normalize():f}"


def credits_command(args: argparse.Namespace) -> int:
    """Grant, set or show a user's credits (seed 003 runs spend them; unlimited by default)."""
    from server.credits import NoSuchUser

    op = args.credits_command
    amount = None if op == "set" and args.unlimited else getattr(args, "amount", None)
    if op == "grant" and amount is not None and amount <= 0:
        return _fail("--amount must be above 0 for a grant (use `credits set` to lower it)")
    if op == "set" and (amount is None) == (not args.unlimited):
        return _fail("credits set needs exactly one of --amount N and --unlimited")
    try:
        out = asyncio.run(_credits(_settings(args), op, args.user, amount))
    except NoSuchUser:
        return _fail(f"no user named {args.user!r} (`barstream keys create --user` makes one)")
    if op == "grant":
        print(f"{args.user}: {_credit_text(out)} credits")
    else:
        print(
            f"{out.user}: {_credit_text(out.balance)} credits"
            f" ({out.runs_charged} runs charged, {_credit_text(out.spent)} credits spent)"
        )
    return 0


def _credits_parser(sub: Any) -> None:
    """The `credits` subcommands."""
    c = sub.add_parser("credits", help="a user's credits for seed 003 runs").add_subparsers(
        dest="credits_command", required=True
    )
    g = c.add_parser("grant", help="add credits (an unlimited user becomes metered)")
    g.add_argument("--amount", type=_amount, required=True)
    s = c.add_parser("set", help="set the balance, or --unlimited to turn credits off")
    s.add_argument("--amount", type=_amount, default=None)
    s.add_argument("--unlimited", action="store_true")
    w = c.add_parser("show", help="the balance, runs charged and credits spent")
    for p in (g, s, w):
        p.add_argument("--user", required=True)
        p.add_argument("--data-dir", default=None)
        p.set_defaults(func=credits_command)


async def _with_db(settings: Settings, work: Any) -> Any:
    """Run `work(conn)` on the database (the server may be up or down)."""
    from server.db.pool import Database

    db = Database(settings)
    pool = await db.open(min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await work(conn)
    finally:
        await db.close()


def keys_list(args: argparse.Namespace) -> int:
    """Print every key's prefix, user, creation and state; never a key."""
    from server.auth import list_keys

    rows = asyncio.run(_with_db(_settings(args), lambda c: list_keys(c, args.user)))
    for r in rows:
        if r["revoked"]:
            state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M:%S}"
        elif r["revoked_at"] is not None:
            state = f"active until {r['revoked_at']:%Y-%m-%d %H:%M:%S} (rotated)"
        else:
            state = "active"
        only = " signed-only" if r["signed_only"] else ""
        print(
            f"{r['prefix']}  {r['user']}  created {r['created_at']:%Y-%m-%d %H:%M:%S}  {state}{only}"
        )
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    """Revoke a key at once (by the key or its 12-character prefix, as `keys list` shows)."""
    from server.auth import lookup_prefix, revoke

    prefix = lookup_prefix(args.key) if args.key else args.prefix
    found = asyncio.run(_with_db(_settings(args), lambda c: revoke(c, prefix)))
    if not found:
        print(f"barstream: no live key with prefix {prefix!r}", file=sys.stderr)
        return 1
    print(f"revoked {prefix}; its open streams close with 1008", file=sys.stderr)
    return 0


def keys_rotate(args: argparse.Namespace) -> int:
    """Print a new key for the owner of --key; the old one works for --grace more seconds."""
    from server.auth import rotate
    from server.signing import derive, server_secret

    async def work(conn: Any) -> tuple[str, str] | None:
        new = await rotate(conn, args.key, args.grace)
        return None if new is None else (new, derive(await server_secret(conn), new))

    made = asyncio.run(_with_db(_settings(args), work))
    if made is None:
        print("barstream: --key is not a live key", file=sys.stderr)
        return 1
    print(made[0])
    print(f"signing secret for signed (seed 004) requests, shown once: {made[1]}", file=sys.stderr)
    print(f"the old key stops working in {args.grace:g} s", file=sys.stderr)
    return 0


PROGRESS_MIN_BYTES = 4 << 20


def _store(args: argparse.Namespace) -> Any:
    from engine.data import BarStore

    return BarStore(_settings(args).bars_dir)


class _ProgressBar:
    """A plain-text progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, label: str) -> None:
        self.label, self.last = label, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(
            f"\r{self.label} [{bar:<30}] {frac:4.0%} {done / 1e6:.1f}/{total / 1e6:.1f} MB"
        )
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _fail(message: str) -> int:
    print(f"barstream: error: {message}", file=sys.stderr)
    return 1


def data_import(args: argparse.Namespace) -> int:
    """Check a CSV file and add its bars to a symbol; a bad file changes nothing."""
    from engine.data import ImportFailed, import_csv

    path = Path(args.file)
    if not path.is_file():
        return _fail(f"{path}: no such file")
    big = path.stat().st_size >= PROGRESS_MIN_BYTES and not args.no_progress
    try:
        report = import_csv(
            _store(args),
            path,
            args.symbol,
            resolution=args.resolution,
            fmt=args.format,
            aliases=tuple(args.alias or ()),
            calendar=args.calendar,
            replace=args.replace,
            progress=_ProgressBar(f"importing {path.name}") if big else None,
        )
    except ImportFailed as exc:
        return _fail(f"{path.name}: {exc}; nothing was changed")
    except ValueError as exc:
        return _fail(f"{exc}; nothing was changed")
    i = report.info
    from engine.data import iso

    print(
        f"{report.symbol}: {report.rows} rows read ({report.format}, {report.resolution}), "
        f"{report.added} new bars; stored {i.bar_count} bars from {iso(i.first_ts)} to "
        f"{iso(i.last_ts)}, {i.gaps} gaps, calendar {i.calendar}"
    )
    return 0


def _symbol_row(i: Any) -> dict[str, Any]:
    from engine.data import iso

    return {
        "symbol": i.name,
        "aliases": i.aliases,
        "base_resolution": i.base_resolution,
        "resolutions": i.resolutions,
        "first_bar": iso(i.first_ts),
        "last_bar": iso(i.last_ts),
        "bar_count": i.bar_count,
        "gaps": i.gaps,
        "calendar": i.calendar,
        "synthetic": i.synthetic,
    }


def data_list(args: argparse.Namespace) -> int:
    """Print every stored symbol with its aliases, base resolution, range, bars and gaps."""
    rows = [_symbol_row(i) for i in _store(args).symbols()]
    if args.json:
        import orjson

        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return 0
    head = (
        "symbol",
        "aliases",
        "base",
        "first bar",
        "last bar",
        "bars",
        "gaps",
        "calendar",
        "synthetic",
    )
    table = [head] + [
        (
            r["symbol"],
            ",".join(r["aliases"]) or "-",
            r["base_resolution"],
            r["first_bar"],
            r["last_bar"],
            str(r["bar_count"]),
            str(r["gaps"]),
            r["calendar"],
            "yes" if r["synthetic"] else "no",
        )
        for r in rows
    ]
    widths = [max(len(row[c]) for row in table) for c in range(len(head))]
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _ns(value: str | None, default: int) -> int:
    """Nanoseconds of an ISO 8601 date or time (naive means UTC)."""
    from engine.data import parse_iso

    return default if value is None else parse_iso(value)


def data_export(args: argparse.Namespace) -> int:
    """Write a symbol's bars as CSV in the generic import format."""
    from engine.data import write_csv

    store = _store(args)
    info = store.resolve(args.symbol)
    if info is None:
        return _fail(f"unknown symbol {args.symbol!r}; `barstream data list` shows them")
    res = args.resolution or info.base_resolution
    try:
        start, end = _ns(args.start, info.first_ts), _ns(args.end, info.last_ts)
        bars = store.load(info.name, res, start, end, tz=args.tz)
    except ValueError as exc:
        return _fail(str(exc))
    if args.output in (None, "-"):
        write_csv(bars, sys.stdout, tick=res == "tick")
    else:
        with open(args.output, "w", newline="") as out:
            n = write_csv(bars, out, tick=res == "tick")
        print(f"wrote {n} {res} bars of {info.name} to {args.output}", file=sys.stderr)
    return 0


def data_fetch(args: argparse.Namespace) -> int:
    """Fetch public OHLCV history through ccxt into a symbol, resuming from its last bar."""
    try:
        import ccxt  # type: ignore[import-not-found]
    except ImportError:
        return _fail("data fetch needs ccxt: pip install 'barstream[fetch]'")
    from engine.data import fetch

    exchange = getattr(ccxt, args.exchange)({"enableRateLimit": False})
    report = fetch(
        _store(args),
        exchange,
        args.market,
        args.symbol,
        args.resolution,
        _ns(args.since, 0) // 1_000_000,
        until_ms=_ns(args.until, 0) // 1_000_000 if args.until else None,
        aliases=tuple(args.alias or ()),
    )
    print(f"{report.symbol}: {report.added} new bars in {report.requests} requests")
    return 0


def _data_parser(sub: Any) -> None:
    """The `data` subcommands."""
    from engine.data import BASE_RESOLUTIONS, CALENDARS, FORMATS

    d = sub.add_parser("data", help="import, list and export market data").add_subparsers(
        dest="data_command", required=True
    )
    i = d.add_parser("import", help="check a CSV file and add its bars to a symbol")
    i.add_argument("file")
    i.add_argument("--symbol", required=True)
    i.add_argument("--resolution", choices=list(BASE_RESOLUTIONS), default=None)
    i.add_argument("--format", choices=list(FORMATS), default=None, help="default: detected")
    i.add_argument("--alias", action="append", help="another name for the symbol (repeatable)")
    i.add_argument("--calendar", choices=list(CALENDARS), default=None)
    i.add_argument("--replace", action="store_true", help="replace stored bars instead of merging")
    i.add_argument("--no-progress", action="store_true")
    i.add_argument("--data-dir", default=None)
    i.set_defaults(func=data_import)
    ls = d.add_parser("list", help="list stored symbols")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--data-dir", default=None)
    ls.set_defaults(func=data_list)
    e = d.add_parser("export", help="write a symbol's bars as CSV")
    e.add_argument("--symbol", required=True)
    e.add_argument("--resolution", choices=list(BASE_RESOLUTIONS), default=None)
    e.add_argument("--start", default=None, help="ISO 8601 (UTC unless an offset is given)")
    e.add_argument("--end", default=None)
    e.add_argument("--tz", default="UTC", help="day boundary of daily bars")
    e.add_argument("-o", "--output", default=None, help="default: standard output")
    e.add_argument("--data-dir", default=None)
    e.set_defaults(func=data_export)
    f = d.add_parser("fetch", help="fetch exchange history through ccxt (the fetch extra)")
    f.add_argument("--exchange", required=True, help="a ccxt exchange id, e.g. binance")
    f.add_argument("--market", required=True, help="the exchange's market, e.g. BTC/USDT")
    f.add_argument("--symbol", required=True, help="the name to store it as, e.g. BTCUSDT")
    f.add_argument(
        "--resolution", choices=[r for r in BASE_RESOLUTIONS if r != "tick"], default="1m"
    )
    f.add_argument("--since", required=True, help="ISO 8601; ignored once bars are stored")
    f.add_argument("--until", default=None)
    f.add_argument("--alias", action="append")
    f.add_argument("--data-dir", default=None)
    f.set_defaults(func=data_fetch)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="barstream", description="Self-hosted backtest server")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="start the server")
    s.add_argument("--host", default=None)
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--data-dir", default=None, help="default ./.barstream (or BARSTREAM_DATA_DIR)")
    s.add_argument("--workers", type=int, default=None, help="worker processes (default: cores)")
    s.add_argument("--log-level", default="info")
    s.set_defaults(func=serve)
    k = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    c = k.add_parser("create", help="create an API key and print it")
    c.add_argument("--user", required=True)
    c.add_argument("--data-dir", default=None)
    c.add_argument(
        "--json", action="store_true", help="print the key and its signing secret as JSON"
    )
    c.add_argument(
        "--signed-only", action="store_true",
        help="the key authenticates only signed (seed 004) requests, never by itself",
    )  # fmt: skip
    c.set_defaults(func=keys_create)
    ls = k.add_parser("list", help="list keys (prefixes, never the keys)")
    ls.add_argument("--user", default=None)
    ls.add_argument("--data-dir", default=None)
    ls.set_defaults(func=keys_list)
    rv = k.add_parser("revoke", help="revoke a key at once; its open streams close")
    which = rv.add_mutually_exclusive_group(required=True)
    which.add_argument("--key")
    which.add_argument("--prefix", help="the 12 characters after bs_, as `keys list` shows")
    rv.add_argument("--data-dir", default=None)
    rv.set_defaults(func=keys_revoke)
    rt = k.add_parser("rotate", help="a new key; the old one works for a grace period")
    rt.add_argument("--key", required=True)
    rt.add_argument("--grace", type=float, default=3600.0, help="seconds (default 3600)")
    rt.add_argument("--data-dir", default=None)
    rt.set_defaults(func=keys_rotate)
    _credits_parser(sub)
    _data_parser(sub)
    add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `barstream` console script."""
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
