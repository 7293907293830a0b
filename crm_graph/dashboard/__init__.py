"""The dashboard page at ``/dashboard``: charts of the pipeline, RFM, revenue concentration,
lifetime value, churn risks and support, drawn in the browser from the GraphQL API.

The page is static: ``static/index.html``, one JavaScript module (``static/dashboard.js``) and a
stylesheet. It reads the API with the visitor's own credentials, so it shows exactly what they
may see, and the server computes nothing for it. It is served with a Content-Security-Policy
that allows only this server's own scripts, styles and connections: no inline script or style,
no CDN.

The chart library, Apache ECharts, is pinned below (version and the SHA-384 of the one file the
page loads). ``python -m crm_graph.dashboard fetch`` (run by ``make serve``) downloads it from the
npm registry (``npm pack``) into ``dashboard/`` in the data directory, refusing a file whose hash
differs; the page's ``<script integrity=...>`` makes the browser check it again. Without the
file the page says how to fetch it instead of drawing charts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from crm_graph.core import npm_assets
from crm_graph.core.npm_assets import sri

PATH = "/dashboard"
STATIC = Path(__file__).parent / "static"

# package, version, file inside the package, SRI hash of that file
CHART_LIBRARY = ("echarts", "6.1.0", "dist/echarts.min.js",
                 "sha384-C2iskrW/uPW46KzOjrvJIQo4YkV8lkD+QS0CrDN18IIPIpT/g2USu8bTP3nvmIAD")

# Only this server's own resources; the page runs no inline code and is not framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
LIBRARY_TAG = '<script src="{src}" integrity="{integrity}" crossorigin="anonymous"></script>'
MISSING_TAG = '<meta name="chart-library" content="missing">'


class OptionalFiles(StaticFiles):
    """Static files from a directory that may not exist yet: 404s until it does (Starlette's
    own check answers a missing directory with an error, a 500)."""

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).is_dir():
            await super().check_config()


def library_dir(settings: Any) -> Path:
    """Where the fetched chart library lives: ``dashboard/`` in the data directory."""
    return Path(settings.data_dir) / "dashboard"


def library_file(root: Path) -> Path:
    package, version, path, _ = CHART_LIBRARY
    return npm_assets.local_path(root, package, version, path)


def page(root: Path) -> str:
    """index.html with the library's script tag (or, without the file, the marker the module reads)."""
    package, version, path, integrity = CHART_LIBRARY
    html = (STATIC / "index.html").read_text()
    if library_file(root).is_file():
        tag = LIBRARY_TAG.format(src=f"{PATH}/lib/{package}@{version}/{path}", integrity=integrity)
    else:
        tag = MISSING_TAG
    return html.replace("<!-- chart library -->", tag)


def routes(settings: Any) -> list[BaseRoute]:
    root = library_dir(settings)

    async def dashboard(_: Request) -> Response:
        try:
            html = page(root)
        except FileNotFoundError:  # an installation without the package's data files
            return Response("The dashboard's files are not installed.", status_code=404, media_type="text/plain")
        return HTMLResponse(html, headers=PAGE_HEADERS)

    return [
        Route(PATH, dashboard, methods=["GET", "HEAD"]),
        Mount(f"{PATH}/static", app=OptionalFiles(directory=STATIC, check_dir=False), name="dashboard-static"),
        Mount(f"{PATH}/lib", app=OptionalFiles(directory=root, check_dir=False), name="dashboard-lib"),
    ]


def fetch(root: Path) -> Path | None:
    """Download the pinned chart library into ``root``; None when it is there already."""
    package, version, path, integrity = CHART_LIBRARY
    target = library_file(root)
    if target.is_file() and sri(target.read_bytes()) == integrity:
        return None
    [written] = npm_assets.fetch(root, package, version, [path], integrity={path: integrity})
    return written


def main(argv: list[str]) -> int:
    return npm_assets.main(
        argv, module="crm_graph.dashboard", default_dir=library_dir, default_help="dashboard/ in CRM_DATA_DIR",
        fetch=lambda root: [p for p in [fetch(root)] if p is not None],
        subject="chart library", without="/dashboard will show no charts",
    )
