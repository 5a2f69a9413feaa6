"""The `barstream` command: `serve`, and `keys create`."""

import argparse
import asyncio
import sys
from pathlib import Path

import uvicorn

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
        timeout_graceful_shutdown=10,
        server_header=False,
    )
    Server(config, app).run()
    return 0


async def _create_key(settings: Settings, user: str) -> str:
    from server.auth import create_key
    from server.db.pool import Database

    db = Database(settings)
    pool = await db.open(min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await create_key(conn, user)
    finally:
        await db.close()


def keys_create(args: argparse.Namespace) -> int:
    """Create a key for a user (created if new) and print only the key."""
    print(asyncio.run(_create_key(_settings(args), args.user)))
    return 0


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
    c.set_defaults(func=keys_create)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `barstream` console script."""
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
