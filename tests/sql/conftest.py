"""Fixtures for the SQL store tests: every test taking ``db_uri`` or ``store`` runs on SQLite, PostgreSQL and
MariaDB/MySQL.

PostgreSQL and MariaDB tests share one database per session (``tests/conftest.py``), so tests never assume an empty
database: they create their own experiments (``new_experiment``). Tests that need a fresh database use
``databases.temporary_database``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from databases import require_server, temporary_database
from mltrail.store.sql import SqlStore

from .helpers import DIALECT_PARAMS


@pytest.fixture(scope="session")
def sqlite_db_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'mltrail.db'}"


@pytest.fixture(params=DIALECT_PARAMS)
def db_uri(request: pytest.FixtureRequest) -> str:
    """URI of the session database of each dialect."""
    return request.getfixturevalue(f"{request.param}_db_uri")


@pytest.fixture
def store(db_uri: str, tmp_path: Path) -> Iterator[SqlStore]:
    yield SqlStore(db_uri, default_artifact_root=str(tmp_path / "artifacts"))


@pytest.fixture
def new_experiment(store: SqlStore) -> str:
    """A new experiment with a unique name in the store."""
    return store.create_experiment(f"exp-{uuid.uuid4().hex}")


@pytest.fixture(params=DIALECT_PARAMS)
def fresh_db_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of each dialect."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    require_server(request.param)
    with temporary_database(request.param, "mltrail_migrate") as uri:
        yield uri
        SqlStore(uri).close()  # release pooled connections before the drop
