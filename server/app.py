"""Assembles the application: routes, error handlers, middleware and the lifespan."""

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from protocol.errors import ApiError
from server.lifespan import lifespan
from server.limits import BodyLimit
from server.outage import DB_ERRORS, Outage
from server.responses import api_error, database_unavailable, http_error, server_error
from server.routes import backtests, meta, seed003, seed004, strategies, v1, web
from server.settings import Settings
from server.stream import routes as stream_routes


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the ASGI app for `settings` (defaults from the environment)."""
    settings = settings or Settings()
    app = Starlette(
        routes=[
            *meta.routes,
            *backtests.routes,
            *strategies.routes,
            *v1.routes,
            *seed003.routes,
            *seed004.routes,
            *stream_routes,
            *web.routes,
        ],
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_body_bytes)],
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            **{kind: database_unavailable for kind in DB_ERRORS},
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.outage = Outage()
    return app
