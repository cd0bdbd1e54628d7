"""Fixtures for the client tests: a clean working directory and environment per test, and the tracking URI of
a fresh directory store or SQLite database (``tracking_uri``, parametrized over both)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import mltrail
from mltrail import config
from mltrail.client import fluent


@pytest.fixture(autouse=True)
def clean_client_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test runs in its own directory, without MLTRAIL_*/MLFLOW_* variables, with no active run or
    experiment, and ends the runs it leaves open."""
    for name in list(os.environ):
        if name.startswith(("MLTRAIL_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "_tracking_uri", None)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    monkeypatch.setattr(fluent, "_active_experiment_uri", None)
    yield
    while mltrail.active_run() is not None:
        mltrail.end_run()


@pytest.fixture(params=["file", "sqlite"])
def tracking_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Tracking URI of an empty store, set as the process-wide tracking URI."""
    uri = str(tmp_path / "mlruns") if request.param == "file" else f"sqlite:///{tmp_path / 'mltrail.db'}"
    mltrail.set_tracking_uri(uri)
    return uri
