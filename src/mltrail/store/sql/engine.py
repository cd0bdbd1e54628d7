"""Engines for the SQL store: URL normalisation, pool options from the environment, per-dialect session setup.

One engine per database URL and process (stores for the same URL share its pool); a forked child gets fresh
pools so it never uses the parent's connections.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, pool

from mltrail.errors import MltrailException
from mltrail.store.sql.writer_lock import WriterLock

#: Execution option marking a connection whose next transaction writes (SQLite then takes the write lock at BEGIN).
WRITE_OPTION = "mltrail_write"

#: Milliseconds SQLite waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 20_000

#: Connections an SQLite engine keeps open. Opening one runs five PRAGMAs, so the pool holds enough for a server's
#: concurrent requests rather than opening and closing overflow connections under load.
SQLITE_POOL_SIZE = 16

#: Seconds a pooled server connection may sit idle and still be used without a ping first. A ping costs a round
#: trip, as much as a small statement; connections that just served a request are alive, while one idle for
#: longer may have been closed by a server restart, an idle timeout or a proxy.
PING_AFTER_IDLE_SECONDS = 1.0

#: ``MLTRAIL_SQLALCHEMY_<NAME>`` (fallback ``MLFLOW_SQLALCHEMYSTORE_<NAME>``) -> create_engine argument.
_POOL_ENV = {"POOL_SIZE": "pool_size", "MAX_OVERFLOW": "max_overflow", "POOL_RECYCLE": "pool_recycle"}

_engines: dict[str, sa.Engine] = {}
_lock = threading.Lock()
#: Per SQLite engine, the lock its writing transactions hold (see :func:`writer_lock`).
_writer_locks: weakref.WeakKeyDictionary[sa.Engine, WriterLock] = weakref.WeakKeyDictionary()


def _env(name: str) -> str | None:
    value = os.environ.get(f"MLTRAIL_SQLALCHEMY_{name}") or os.environ.get(f"MLFLOW_SQLALCHEMYSTORE_{name}")
    return value.strip() if value and value.strip() else None


def normalize_url(db_uri: str) -> sa.URL:
    """Parse ``db_uri`` and pick the driver we ship for bare ``postgresql://`` / ``mysql://`` URLs."""
    try:
        url = sa.make_url(db_uri)
    except sa.exc.ArgumentError:
        raise MltrailException.invalid_parameter(f"Invalid database URI '{db_uri}'") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "postgres":  # Heroku-style alias
        backend = "postgresql"
    if not driver and backend == "postgresql":
        # psycopg 3 (our ``postgres`` extra) unless only psycopg2 is installed.
        only_psycopg2 = importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2")
        driver = "psycopg2" if only_psycopg2 else "psycopg"
    if not driver and backend in ("mysql", "mariadb") and importlib.util.find_spec("MySQLdb") is None:
        driver = "pymysql"
    if backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
        raise MltrailException.invalid_parameter(
            f"Unsupported database URI '{db_uri}': use sqlite://, postgresql:// or mysql:// (mariadb://)"
        )
    url = url.set(drivername=f"{backend}+{driver}" if driver else backend)
    if backend in ("mysql", "mariadb") and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def is_memory_sqlite(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _sqlite_file(url: sa.URL) -> str | None:
    """The real path of an SQLite database file; None in memory or for a URI filename (``?uri=true``)."""
    if is_memory_sqlite(url) or url.query.get("uri") in ("true", "1"):
        return None
    return os.path.realpath(url.database)


def _engine_options(url: sa.URL) -> dict[str, Any]:
    if is_memory_sqlite(url):
        # One shared connection, or every pooled connection would see its own empty database.
        return {"poolclass": pool.StaticPool, "connect_args": {"check_same_thread": False}}
    poolclass = _env("POOLCLASS")
    options: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        # No pre-ping: a database file does not drop connections, and the ping is a query per checkout.
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        if poolclass is None:
            options["pool_size"] = SQLITE_POOL_SIZE
    if url.get_backend_name() in ("mysql", "mariadb"):
        # Fewer gap locks than REPEATABLE READ, hence fewer deadlocks between concurrent loggers.
        options["isolation_level"] = "READ COMMITTED"
    if poolclass:
        cls = getattr(pool, poolclass, None)
        if not (isinstance(cls, type) and issubclass(cls, pool.Pool)):
            raise MltrailException.invalid_parameter(f"Unknown SQLAlchemy pool class '{poolclass}'")
        options["poolclass"] = cls
    for name, argument in _POOL_ENV.items():
        value = _env(name)
        if value is not None and poolclass not in ("NullPool", "StaticPool", "SingletonThreadPool"):
            try:
                options[argument] = int(value)
            except ValueError:
                raise MltrailException.invalid_parameter(f"{name} must be an integer, got '{value}'") from None
    if _env("ECHO") in ("1", "true", "True", "TRUE"):
        options["echo"] = True
    return options


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database to WAL mode (which the file keeps). While other processes open a new database at the
    same time, SQLite can refuse the switch with "database is locked" at once instead of waiting in its busy
    handler: then it is tried again, for up to the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _setup_sqlite(engine: sa.Engine) -> None:
    """WAL, busy timeout, foreign keys, case-sensitive LIKE; and BEGIN IMMEDIATE for writes.

    pysqlite's own transaction handling is switched off so that a writing transaction takes SQLite's write
    lock at BEGIN: a deferred transaction that reads first and writes later fails at once with "database is
    locked" when another process committed in between, instead of waiting for the busy timeout.
    """
    memory = is_memory_sqlite(engine.url)
    _writer_locks[engine] = WriterLock(_sqlite_file(engine.url), SQLITE_BUSY_TIMEOUT_MS / 1000)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if not memory:
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def writer_lock(engine: sa.Engine) -> AbstractContextManager[Any]:
    """What a writing transaction holds from before BEGIN until its commit: for SQLite, a :class:`WriterLock`
    that queues the database's writers of every process; nothing for the databases that lock rows."""
    return _writer_locks.get(engine) or nullcontext()


def _ping_idle_connections(engine: sa.Engine) -> None:
    """Like ``pool_pre_ping``, but only for connections idle for more than :data:`PING_AFTER_IDLE_SECONDS`:
    a dead one is replaced by a new connection before the transaction starts."""
    idle_since = "mltrail_idle_since"

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[idle_since] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(idle_since, None)
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error:
            alive = False
        if not alive:
            raise sa.exc.DisconnectionError("connection closed while idle in the pool")


def create_engine(url: sa.URL) -> sa.Engine:
    """A new engine for ``url`` (already normalised) with our pool and session settings."""
    engine = sa.create_engine(url, **_engine_options(url))
    if url.get_backend_name() == "sqlite":
        _setup_sqlite(engine)
    else:
        _ping_idle_connections(engine)
    return engine


def get_engine(url: sa.URL, on_create: Callable[[sa.Engine], None] | None = None) -> sa.Engine:
    """The process-wide engine for ``url``; ``on_create(engine)`` runs once, when it is first created
    (the store uses it to check or migrate the schema)."""
    key = url.render_as_string(hide_password=False)
    engine = _engines.get(key)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_engine(url)
            if on_create is not None:
                try:
                    on_create(engine)
                except BaseException:
                    engine.dispose()
                    raise
            _engines[key] = engine
        return engine


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    for engine, lock in list(_writer_locks.items()):
        _writer_locks[engine] = lock.for_forked_child()
    for engine in _engines.values():
        # New pools in the child; the parent's connections stay open (and usable) in the parent.
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_reset_after_fork)
