"""The official MLflow client (``mlflow-skinny``) driving a live mltrail server, on SQLite, PostgreSQL and the
directory store. The client's network settings are tightened so a server bug fails fast instead of being retried."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow

from mltrail.server.app import create_app
from server.live import thread_server


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "file"])
def server_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp(f"compat-{request.param}")
    uri = {
        "sqlite": lambda: f"sqlite:///{root}/mltrail.db",
        "postgres": lambda: request.getfixturevalue("postgres_db_uri"),
        "file": lambda: str(root / "mlruns"),
    }[request.param]()
    with thread_server(create_app(uri, artifacts_destination=str(root / "mlartifacts"))) as server:
        yield server.url


@pytest.fixture
def client(server_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[mlflow.MlflowClient]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    mlflow.set_tracking_uri(server_url)
    yield mlflow.MlflowClient(server_url)
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
