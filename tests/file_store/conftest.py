"""Fixtures of the directory-store tests: a fresh store in a private temporary folder per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail.store.file import FileStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "mlruns"


@pytest.fixture
def store(root: Path) -> FileStore:
    return FileStore(str(root))


@pytest.fixture
def experiment_id(store: FileStore) -> str:
    return store.create_experiment("exp")


@pytest.fixture
def run_id(store: FileStore, experiment_id: str) -> str:
    return store.create_run(experiment_id, user_id="tester", start_time=1_000, run_name="the-run").info.run_id


def run_dir(root: Path, experiment_id: str, run_id: str) -> Path:
    return root / experiment_id / run_id
