"""The browser page (`/`) and the API docs page (`/docs`): static files shipped in the package.

No build step: `server/static/` holds plain ES modules, CSS and the vendored chart library, served
as they are. No key is needed for these files; the page asks for one and calls the public API.
The pages may load nothing from another origin (their Content-Security-Policy says so), so they
work offline.
"""

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).resolve().parents[1] / "static"
VENDOR = STATIC / "vendor"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _file(folder: Path, name: str) -> Response:
    """One file of `folder` by its bare name (the route admits no slash), or a 404."""
    path = folder / name
    if name.startswith(".") or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise HTTPException(404, f"no static file {name!r}")
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if path.suffix == ".html":
        headers["Content-Security-Policy"] = POLICY
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)


async def page(_request: Request) -> Response:
    """The single-page app: sign in, runs, new run, a run followed live."""
    return _file(STATIC, "index.html")


async def docs(_request: Request) -> Response:
    """The OpenAPI document rendered for people."""
    return _file(STATIC, "docs.html")


async def static(request: Request) -> Response:
    """The page's own scripts and styles."""
    return _file(STATIC, request.path_params["name"])


async def vendor(request: Request) -> Response:
    """Third-party files kept as published (uPlot and its licence)."""
    return _file(VENDOR, request.path_params["name"])


routes = [
    Route("/", page, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Route("/static/{name}", static, methods=["GET"]),
    Route("/static/vendor/{name}", vendor, methods=["GET"]),
]
