"""The ``store`` fixture: every contract test runs once per store in ``STORE_FACTORIES``.

Stores live for the whole session (building a SQL schema per test would dominate the run time), so tests never
assume an empty store: each test works in experiments it creates with unique names (``new_experiment``).

To add a store, add one entry to ``STORE_FACTORIES``: a context manager taking the fixture request and a private
temporary directory, yielding a :class:`StoreUnderTest` and cleaning up after itself. For example, a REST store
served by a real server on SQLite::

    @contextmanager
    def rest_store(request, tmp):
        app = create_app(f"sqlite:///{tmp / 'server.db'}", str(tmp / "artifacts"), ...)
        with thread_server(app) as url:
            yield StoreUnderTest("rest", RestStore(url), tmp / "artifacts")

    STORE_FACTORIES["rest"] = rest_store   # or an entry in the dict literal below
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from mltrail.store.base import TrackingStore

from .helpers import new_experiment


@dataclass(frozen=True)
class StoreUnderTest:
    kind: str
    store: TrackingStore
    #: Local directory under which experiments get their default artifact location (``<root>/<experiment_id>``).
    artifact_root: Path


StoreFactory = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[StoreUnderTest]]


def _close(store: TrackingStore) -> None:
    """Release pooled connections so the session database can be dropped (stores without ``close`` hold none)."""
    close = getattr(store, "close", None)
    if callable(close):
        close()


@contextmanager
def file_store(request: pytest.FixtureRequest, tmp: Path) -> Iterator[StoreUnderTest]:
    from mltrail.store.file import FileStore

    yield StoreUnderTest("file", FileStore(str(tmp / "mlruns")), tmp / "mlruns")


def _sql_store(kind: str, uri: str, tmp: Path) -> Iterator[StoreUnderTest]:
    from mltrail.store.sql import SqlStore

    store = SqlStore(uri, default_artifact_root=str(tmp / "artifacts"))
    try:
        yield StoreUnderTest(kind, store, tmp / "artifacts")
    finally:
        _close(store)


@contextmanager
def sqlite_store(request: pytest.FixtureRequest, tmp: Path) -> Iterator[StoreUnderTest]:
    yield from _sql_store("sqlite", f"sqlite:///{tmp / 'mltrail.db'}", tmp)


@contextmanager
def postgres_store(request: pytest.FixtureRequest, tmp: Path) -> Iterator[StoreUnderTest]:
    yield from _sql_store("postgres", request.getfixturevalue("postgres_db_uri"), tmp)


@contextmanager
def mysql_store(request: pytest.FixtureRequest, tmp: Path) -> Iterator[StoreUnderTest]:
    yield from _sql_store("mysql", request.getfixturevalue("mysql_db_uri"), tmp)


@contextmanager
def rest_store(request: pytest.FixtureRequest, tmp: Path) -> Iterator[StoreUnderTest]:
    """The REST client talking to a real server (in a thread of this process) backed by SQLite."""
    from mltrail.server.app import create_app
    from mltrail.store.rest import RestStore
    from server.live import thread_server

    app = create_app(f"sqlite:///{tmp / 'server.db'}", str(tmp / "artifacts"), serve_artifacts=False)
    with thread_server(app) as server:
        store = RestStore(server.url)
        try:
            yield StoreUnderTest("rest", store, tmp / "artifacts")
        finally:
            _close(store)


STORE_FACTORIES: dict[str, StoreFactory] = {
    "file": file_store,
    "sqlite": sqlite_store,
    "postgres": postgres_store,
    "mysql": mysql_store,
    "rest": rest_store,
}
#: pytest markers per store, so ``-m "not mysql"`` deselects a service that is not installed.
_MARKS = {"postgres": [pytest.mark.postgres], "mysql": [pytest.mark.mysql]}


@pytest.fixture(scope="session", params=[pytest.param(kind, marks=_MARKS.get(kind, ())) for kind in STORE_FACTORIES])
def store_under_test(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoreUnderTest]:
    kind: str = request.param
    with STORE_FACTORIES[kind](request, tmp_path_factory.mktemp(f"store-{kind}")) as sut:
        yield sut


@pytest.fixture
def store(store_under_test: StoreUnderTest) -> TrackingStore:
    return store_under_test.store


@pytest.fixture
def experiment_id(store: TrackingStore) -> str:
    """A fresh, empty experiment of this test."""
    return new_experiment(store)


@pytest.fixture
def run_id(store: TrackingStore, experiment_id: str) -> str:
    """A fresh RUNNING run in a fresh experiment."""
    return store.create_run(experiment_id, user_id="tester", start_time=1_000, run_name="the-run").info.run_id


@pytest.fixture
def reference_store(
    store_under_test: StoreUnderTest, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[TrackingStore]:
    """A second, independent store of another kind to compare results with (file ↔ sqlite)."""
    kind = "sqlite" if store_under_test.kind == "file" else "file"
    directory = tmp_path / f"reference-{kind}"
    directory.mkdir()
    with STORE_FACTORIES[kind](request, directory) as reference:
        yield reference.store
