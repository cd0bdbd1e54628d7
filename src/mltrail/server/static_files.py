"""Serve the built web UI (``mltrail/server/static``, produced by ``ui/ci-build.sh``).

``<prefix>/`` answers ``index.html`` (never cached, so a new server version is picked up at once) and
``<prefix>/static-files/…`` the bundle's assets, whose names carry a content hash and are cached for a year.
The UI uses hash routing, so no other path needs an index fallback.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR_NAME = "static-files"

_NOT_BUILT = """<!doctype html><title>mltrail</title>
<p>The mltrail web UI is not built in this installation. Run <code>bash ui/ci-build.sh</code> in a source
checkout; the REST API under <code>/api/2.0/mlflow/</code> works without it.</p>"""


class _ImmutableAssets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def mount_ui(app: Starlette, static_prefix: str = "", static_dir: Path = STATIC_DIR) -> None:
    """Serve the UI at ``<static_prefix>/``. Register it after the API routes."""
    prefix = "/" + static_prefix.strip("/") if static_prefix.strip("/") else ""
    index = static_dir / "index.html"

    async def index_page(request: Request) -> Response:
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=404)
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    app.router.add_route(f"{prefix}/", index_page, methods=["GET", "HEAD"], include_in_schema=False)
    if prefix:

        async def to_index(request: Request) -> Response:
            return RedirectResponse(f"{prefix}/", status_code=308)

        app.router.add_route(prefix, to_index, methods=["GET", "HEAD"], include_in_schema=False)
    assets = static_dir / ASSETS_DIR_NAME
    app.mount(
        f"{prefix}/{ASSETS_DIR_NAME}",
        _ImmutableAssets(directory=assets, check_dir=False),
        name="mltrail-ui-assets",
    )
