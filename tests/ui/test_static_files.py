"""The built UI bundle is served by the tracking server, also under a --static-prefix."""

from __future__ import annotations

import re

import requests

from mltrail.server.static_files import STATIC_DIR

from .conftest import running_server
from .seed import Seed


def test_index_and_hashed_assets(server: str) -> None:
    index = requests.get(f"{server}/", timeout=10)
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"
    assets = re.findall(r'(?:src|href)="\./(static-files/[^"]+)"', index.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        r = requests.get(f"{server}/{asset}", timeout=10)
        assert r.status_code == 200, asset
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert requests.get(f"{server}/static-files/nope.js", timeout=10).status_code == 404


def test_bundle_is_committed_with_the_package() -> None:
    assert (STATIC_DIR / "index.html").is_file()
    assert list((STATIC_DIR / "static-files").glob("index-*.js"))


def test_static_prefix(seeded: Seed, tmp_path) -> None:
    with running_server(seeded.root, str(tmp_path), "/tracking") as url:
        assert url.endswith("/tracking")
        page = requests.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and '<div id="app">' in page.text
        bare = requests.get(url, timeout=10, allow_redirects=False)
        assert bare.status_code == 308 and bare.headers["location"] == "/tracking/"
        r = requests.post(
            f"{url}/ajax-api/2.0/mltrail/runs/count", json={"experiment_ids": [seeded.many_experiment]}, timeout=30
        )
        assert r.json()["count"] > 0
        root = url.removesuffix("/tracking")
        assert requests.get(f"{root}/", timeout=10).status_code == 404
