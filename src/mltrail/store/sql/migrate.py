"""Creating and upgrading the SQL schema with Alembic, safely when many processes open a new database at once.

- A new, empty database is migrated to the newest revision when a store first opens it.
- A database at an older revision is refused with an error naming ``mltrail db upgrade <url>`` (upgrading is a
  deliberate step: take a backup first).
- Migrations run under a lock shared by every process: a file lock next to a SQLite database, a session-level
  ``pg_advisory_lock`` on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB. The revision is read again after the lock
  is taken, so concurrent openers migrate exactly once.

Alembic is imported only when a migration actually runs; checking an up-to-date database is one query.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from mltrail.errors import ErrorCode, MltrailException
from mltrail.store.sql.engine import WRITE_OPTION, is_memory_sqlite

#: The newest revision in ``migrations/versions`` (a test checks they agree).
HEAD_REVISION = "0004"
#: Our own version table, so an MLflow database (``alembic_version``) is never mistaken for ours.
VERSION_TABLE = "mltrail_alembic_version"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_LOCK_NAME = "mltrail_schema_migration"
_LOCK_TIMEOUT_S = 600


def display_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def current_revision(connection: sa.Connection) -> str | None:
    """The schema revision of the database, ``None`` for a database mltrail has not set up."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def ensure_schema(engine: sa.Engine) -> None:
    """Set up a new database, accept one at the newest revision, refuse anything else with a clear error."""
    with engine.connect() as connection:
        revision = current_revision(connection)
    if revision != HEAD_REVISION:
        # Decide under the lock: another process may be migrating right now (on MySQL, whose DDL is not
        # transactional, an intermediate revision is visible meanwhile).
        upgrade(engine, only_if_new=True)


def upgrade(engine: sa.Engine, revision: str = "head", *, only_if_new: bool = False) -> str | None:
    """Migrate the database to ``revision`` under the cross-process lock; return the revision before.

    With ``only_if_new``, a database that another process set up meanwhile is left as it is (and checked).
    """
    from alembic import command
    from alembic.config import Config

    with _schema_lock(engine) as connection:
        before = current_revision(connection)
        if before is None and sa.inspect(connection).has_table("experiments"):
            raise MltrailException(
                f"The database {display_url(engine)} holds tables that mltrail did not create "
                "(an MLflow database?). Use a new, empty database for mltrail.",
                ErrorCode.INVALID_STATE,
            )
        if only_if_new and before is not None:
            if before != HEAD_REVISION:
                raise _out_of_date(engine, before)
            return before
        connection.commit()
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
        return before


def _out_of_date(engine: sa.Engine, found: str) -> MltrailException:
    url = display_url(engine)
    return MltrailException(
        f"Detected out-of-date database schema (found version {found}, but expected {HEAD_REVISION}). "
        f"Take a backup of your database, then run 'mltrail db upgrade {url}' to migrate it to the latest schema. "
        "If the found version is newer, upgrade mltrail instead.",
        ErrorCode.INVALID_STATE,
    )


@contextmanager
def _schema_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        with _sqlite_file_lock(engine.url), engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            yield connection
        return
    with engine.connect() as connection:
        if backend == "postgresql":
            # Advisory locks are per database, so one fixed key serves every database on the server.
            key = zlib.crc32(_LOCK_NAME.encode())
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            unlock = sa.text("SELECT pg_advisory_unlock(:key)")
            params: dict[str, object] = {"key": key}
        else:
            # GET_LOCK names are server-wide: include the database name.
            name = f"{_LOCK_NAME}.{engine.url.database}"[:64]
            got = connection.execute(
                sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": _LOCK_TIMEOUT_S}
            ).scalar()
            if got != 1:
                raise MltrailException(
                    f"Timed out waiting for another process to migrate {display_url(engine)}",
                    ErrorCode.TEMPORARILY_UNAVAILABLE,
                )
            unlock = sa.text("SELECT RELEASE_LOCK(:name)")
            params = {"name": name}
        connection.commit()
        try:
            yield connection
        finally:
            connection.rollback()
            connection.execute(unlock, params)
            connection.commit()


@contextmanager
def _sqlite_file_lock(url: sa.URL) -> Iterator[None]:
    if is_memory_sqlite(url):
        yield
        return
    path = f"{os.path.abspath(url.database or '')}.mltrail-lock"
    with open(path, "a+b") as handle:
        _lock_file(handle.fileno())
        try:
            yield
        finally:
            _unlock_file(handle.fileno())


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:  # LK_LOCK gives up after ~10 s; keep waiting like flock does
                continue

    def _unlock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
