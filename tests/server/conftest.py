"""Live servers on both local backends (SQLite and the directory store), shared per test session.

Tests on a shared server create experiments with unique names (see :func:`unique`), so they never depend on
what other tests stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from mltrail.server.app import create_app

from .live import thread_server


def unique(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Backend:
    name: str
    uri: str
    root: Path


@dataclass
class Live:
    url: str
    backend: Backend
    destination: Path


class Api:
    """Requests against one API prefix (``/api/2.0`` or ``/ajax-api/2.0``)."""

    def __init__(self, url: str, prefix: str = "/api/2.0") -> None:
        self.url = url
        self.prefix = prefix
        self.session = requests.Session()

    def post(self, endpoint: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.post(f"{self.url}{self.prefix}/mlflow/{endpoint}", json=body or {}, **kwargs)

    def get(self, endpoint: str, params: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.get(f"{self.url}{self.prefix}/mlflow/{endpoint}", params=params, **kwargs)

    def ok(self, response: requests.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        return response.json()

    def ok_post(self, endpoint: str, body: Any = None) -> dict[str, Any]:
        return self.ok(self.post(endpoint, body))

    def ok_get(self, endpoint: str, params: Any = None) -> dict[str, Any]:
        return self.ok(self.get(endpoint, params))

    def new_experiment(self, **extra: Any) -> str:
        return self.ok_post("experiments/create", {"name": unique(), **extra})["experiment_id"]

    def new_run(self, experiment_id: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"experiment_id": experiment_id or self.new_experiment(), "start_time": 1700000000000, **extra}
        return self.ok_post("runs/create", body)["run"]


def error_of(response: requests.Response, status: int, code: str) -> str:
    """Assert an MLflow error response and return its message."""
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error_code"] == code, payload
    return payload["message"]


@pytest.fixture(scope="session", params=["sqlite", "file"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    root = tmp_path_factory.mktemp(f"backend-{request.param}")
    uri = f"sqlite:///{root}/mltrail.db" if request.param == "sqlite" else str(root / "mlruns")
    return Backend(request.param, uri, root)


@pytest.fixture(scope="session")
def live(backend: Backend) -> Iterator[Live]:
    destination = backend.root / "artifacts"
    app = create_app(backend.uri, artifacts_destination=str(destination))
    with thread_server(app) as server:
        yield Live(server.url, backend, destination)


@pytest.fixture(params=["/api/2.0", "/ajax-api/2.0"])
def api(live: Live, request: pytest.FixtureRequest) -> Api:
    return Api(live.url, request.param)
