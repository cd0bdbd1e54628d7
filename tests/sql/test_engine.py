"""Engine set-up: driver choice for bare URLs, pool options from the environment, SQLite session settings."""

from __future__ import annotations

import fcntl
import multiprocessing
import multiprocessing.synchronize
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from databases import require_server, temporary_database
from mltrail.errors import MltrailException
from mltrail.store.sql import SqlStore
from mltrail.store.sql import engine as engine_module
from mltrail.store.sql.engine import SQLITE_POOL_SIZE, create_engine, normalize_url
from mltrail.store.sql.writer_lock import WriterLock

from .helpers import engine_for

SERVER_PARAMS = [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mysql", marks=pytest.mark.mysql)]


@pytest.mark.parametrize(
    ("uri", "drivername"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),  # psycopg2 is not installed here
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("mysql://u@h/db", "mysql+pymysql"),  # MySQLdb is not installed here
        ("mariadb://u@h/db", "mariadb+pymysql"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_bare_urls_get_the_shipped_drivers(uri: str, drivername: str) -> None:
    url = normalize_url(uri)
    assert url.drivername == drivername
    if url.get_backend_name() in ("mysql", "mariadb"):
        assert url.query["charset"] == "utf8mb4"


def test_unsupported_urls_are_refused() -> None:
    with pytest.raises(MltrailException) as info:
        normalize_url("oracle://u@h/db")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_pool_options_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = normalize_url("postgresql://u@localhost/db")
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "3")
    monkeypatch.setenv("MLTRAIL_SQLALCHEMY_MAX_OVERFLOW", "7")
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "99")  # the MLTRAIL_ variable wins
    monkeypatch.setenv("MLTRAIL_SQLALCHEMY_POOL_RECYCLE", "60")
    engine = create_engine(url)
    assert (engine.pool.size(), engine.pool._max_overflow, engine.pool._recycle) == (3, 7, 60)  # type: ignore[attr-defined]
    monkeypatch.setenv("MLTRAIL_SQLALCHEMY_POOLCLASS", "NullPool")
    assert isinstance(create_engine(url).pool, sa.pool.NullPool)
    monkeypatch.setenv("MLTRAIL_SQLALCHEMY_POOLCLASS", "NoSuchPool")
    with pytest.raises(MltrailException):
        create_engine(url)


def test_sqlite_pools_enough_connections_for_concurrent_requests(tmp_path: Path) -> None:
    assert create_engine(normalize_url(f"sqlite:///{tmp_path / 'p.db'}")).pool.size() == SQLITE_POOL_SIZE >= 8


def test_sqlite_connections_use_wal_foreign_keys_and_case_sensitive_like(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'x.db'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 20000
        assert connection.exec_driver_sql("SELECT 'a' LIKE 'A'").scalar() == 0


def test_in_memory_sqlite_works_across_calls() -> None:
    store = SqlStore("sqlite:///:memory:")
    experiment_id = store.create_experiment("in-memory")
    assert store.get_experiment_by_name("in-memory").experiment_id == experiment_id


def _drop_other_connections(uri: str) -> None:
    """The server closes every connection to the database of ``uri`` but the one asking."""
    with engine_for(uri) as engine, engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return
        ids = connection.exec_driver_sql(
            "SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()"
        ).scalars()
        for connection_id in list(ids):
            connection.exec_driver_sql(f"KILL {int(connection_id)}")


@pytest.mark.parametrize("kind", SERVER_PARAMS)
def test_pooled_connections_are_pinged_only_after_idling(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    require_server(kind)  # type: ignore[arg-type]
    with temporary_database(kind, "mltrail_ping") as uri:  # type: ignore[arg-type]
        store = SqlStore(uri)
        try:
            pings: list[object] = []
            ping = store.engine.dialect.do_ping
            monkeypatch.setattr(store.engine.dialect, "do_ping", lambda dbapi: pings.append(dbapi) or ping(dbapi))
            monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 60.0)
            for _ in range(3):
                store.get_experiment("0")
            assert pings == []  # a connection that was just used is used again without a round trip
            _drop_other_connections(uri)  # e.g. a server restart or an idle timeout
            monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
            assert store.get_experiment("0").name == "Default"  # the dead connection was pinged and replaced
            assert pings
        finally:
            store.close()


def test_sqlite_writers_of_one_process_queue_for_each_other(tmp_path: Path) -> None:
    """A second writer waits on the process's lock for as long as the first holds it (not SQLite's busy
    timeout, which sleeps between retries and would fail after it), and starts once the first is done."""
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path))
    created = threading.Event()
    with engine_module.writer_lock(store.engine):
        writer = threading.Thread(target=lambda: (store.create_experiment("second"), created.set()))
        writer.start()
        assert not created.wait(0.5)
    assert created.wait(30)
    writer.join()
    assert store.get_experiment_by_name("second") is not None


Event = multiprocessing.synchronize.Event


def _create_experiment(uri: str, artifacts: str, name: str, ready: Event, created: Event) -> None:
    store = SqlStore(uri, artifacts)
    ready.set()
    store.create_experiment(name)
    created.set()


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_sqlite_writers_of_other_processes_queue_for_the_lock_too(tmp_path: Path, start_method: str) -> None:
    """A writer in another process (a forked worker that inherited the engine, or an unrelated one) waits while
    this process holds the write lock instead of sleeping in SQLite's busy handler, and goes on once it is
    released; the lock lives in a file beside the database."""
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = SqlStore(uri, str(tmp_path))
    context = multiprocessing.get_context(start_method)
    ready, created = context.Event(), context.Event()
    with engine_module.writer_lock(store.engine):
        writer = context.Process(target=_create_experiment, args=(uri, str(tmp_path), "other", ready, created))
        writer.start()
        assert ready.wait(60)
        assert not created.wait(0.5)
    assert created.wait(60)
    writer.join(30)
    assert writer.exitcode == 0
    assert store.get_experiment_by_name("other") is not None
    assert (tmp_path / "db.sqlite-writer.lock").exists()


def _fork_while_writing(uri: str, artifacts: str, child_pid: multiprocessing.Queue) -> None:
    """Holds the store's write lock, forks a child that lingers, and waits to be killed (never releasing)."""
    store = SqlStore(uri, artifacts)
    with engine_module.writer_lock(store.engine):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        child_pid.put(pid)
        time.sleep(60)


def test_a_writer_killed_while_holding_the_lock_frees_it_although_its_forked_child_lives_on(tmp_path: Path) -> None:
    """The child's copy of the held lock file is closed at the fork, so the lock dies with the writer."""
    uri = f"sqlite:///{tmp_path / 'db.sqlite'}"
    SqlStore(uri, str(tmp_path))
    context = multiprocessing.get_context("spawn")
    child_pid = context.Queue()
    writer = context.Process(target=_fork_while_writing, args=(uri, str(tmp_path), child_pid))
    writer.start()
    child = child_pid.get(timeout=60)
    try:
        assert _held_elsewhere(tmp_path / "db.sqlite-writer.lock")
        writer.kill()
        # Not join(): it waits for a pipe that the forked child holds open too.
        deadline = time.monotonic() + 30
        while writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        with WriterLock(str(tmp_path / "db.sqlite"), 5.0):  # the child still runs, without the lock
            os.kill(child, 0)
    finally:
        os.kill(child, signal.SIGKILL)


def _held_elsewhere(lock_file: Path) -> bool:
    """Whether another open file description of ``lock_file`` is refused an exclusive flock."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_writer_lock_is_reentrant_and_holds_the_file_until_the_outermost_release(tmp_path: Path) -> None:
    lock, lock_file = WriterLock(str(tmp_path / "db.sqlite"), 5.0), tmp_path / "db.sqlite-writer.lock"
    with lock:
        with lock:
            assert _held_elsewhere(lock_file)
        assert _held_elsewhere(lock_file)
    assert not _held_elsewhere(lock_file)


def test_writer_lock_gives_up_after_its_timeout_with_temporarily_unavailable(tmp_path: Path) -> None:
    lock_file = tmp_path / "db.sqlite-writer.lock"
    holder = os.open(lock_file, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process, stopped while writing
    try:
        lock = WriterLock(str(tmp_path / "db.sqlite"), 0.3)
        with pytest.raises(MltrailException) as raised, lock:
            pass
        assert raised.value.error_code == "TEMPORARILY_UNAVAILABLE"
        assert "locked" in raised.value.message
    finally:
        os.close(holder)
    with lock:  # the thread lock was released with the failure; the file is free now
        assert _held_elsewhere(lock_file)


def test_a_lock_file_that_cannot_be_created_leaves_only_the_thread_lock(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "missing" / "db.sqlite"), 5.0)  # no such directory
    with lock, lock:
        pass
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("kind", SERVER_PARAMS)
def test_server_databases_let_writers_of_one_process_run_side_by_side(kind: str, tmp_path: Path) -> None:
    require_server(kind)  # type: ignore[arg-type]
    with temporary_database(kind, "mltrail_writers") as uri:  # type: ignore[arg-type]
        store = SqlStore(uri, str(tmp_path))
        try:
            created = threading.Event()
            with engine_module.writer_lock(store.engine):  # these databases lock rows, not the database
                threading.Thread(target=lambda: (store.create_experiment("second"), created.set())).start()
                assert created.wait(30)
        finally:
            store.engine.dispose()
