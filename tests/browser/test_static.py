"""The page's files: served without a key, with the right types, a strict policy, nothing else."""

import re

import httpx

from server.routes.web import STATIC, VENDOR
from tests.server.harness import ServerProcess


def test_page_files_are_served_without_a_key(web: ServerProcess) -> None:
    with httpx.Client(base_url=web.url) as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert c.get("/docs").headers["content-type"].startswith("text/html")
        for file in STATIC.glob("*.js"):
            answer = c.get(f"/static/{file.name}")
            assert answer.status_code == 200, file.name
            assert answer.headers["content-type"].startswith("text/javascript")
            assert answer.content == file.read_bytes()
        assert c.get("/static/app.css").headers["content-type"].startswith("text/css")
        assert "MIT License" in c.get("/static/vendor/uPlot.LICENSE.txt").text
        assert (
            c.get("/static/vendor/uPlot.esm.js").content == (VENDOR / "uPlot.esm.js").read_bytes()
        )
        for missing in ("/static/nope.js", "/static/vendor/README.md", "/static/.hidden.js"):
            assert c.get(missing).status_code == 404, missing
        assert c.get("/static/../server/app.py").status_code == 404


def test_the_pages_name_only_their_own_files() -> None:
    """Every script, stylesheet and module import is a path on this server: nothing from a CDN."""
    html = re.compile(r'(?:src|href)="([^"#]+)"')
    imports = re.compile(r'^import\b[^"\n]*"([^"]+)";', re.MULTILINE)
    targets = [(f.name, t) for f in STATIC.glob("*.html") for t in html.findall(f.read_text())]
    targets += [(f.name, t) for f in STATIC.glob("*.js") for t in imports.findall(f.read_text())]
    assert len(targets) > 10
    for name, target in targets:
        assert target.startswith(("/", "./", "data:")) and "//" not in target, f"{name}: {target}"
