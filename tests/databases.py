"""Throw-away PostgreSQL and MariaDB/MySQL databases for tests.

Each test session creates its own uniquely named database on the local services (see ``SERVERS``) and drops it
at the end, so test runs never see each other's data. Usage from any test module or conftest::

    from databases import require_server, temporary_database

    require_server("postgres")                      # fail (CI=true) or skip (locally) when the service is down
    with temporary_database("postgres", "mltrail_sqlstore") as uri:
        store = SqlStore(uri)

The session fixtures ``postgres_db_uri`` / ``mysql_db_uri`` in ``tests/conftest.py`` wrap exactly this.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import pytest
import sqlalchemy as sa

Kind = Literal["postgres", "mysql"]

#: Server URL (without database) of each service, as used on developer machines and in CI.
SERVERS: dict[Kind, str] = {
    "postgres": "postgresql+psycopg://postgres@127.0.0.1:5432",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306",
}
#: Database the admin connection uses to run CREATE/DROP DATABASE.
_ADMIN_DATABASE: dict[Kind, str] = {"postgres": "postgres", "mysql": ""}
#: Query string every URI carries (MySQL needs utf8mb4 for 4-byte characters such as emoji).
_QUERY: dict[Kind, str] = {"postgres": "", "mysql": "?charset=utf8mb4"}


def database_uri(kind: Kind, database: str) -> str:
    """SQLAlchemy URI of ``database`` on the ``kind`` service."""
    return f"{SERVERS[kind]}/{database}{_QUERY[kind]}"


def _admin_engine(kind: Kind) -> sa.Engine:
    return sa.create_engine(
        database_uri(kind, _ADMIN_DATABASE[kind]),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
        connect_args={"connect_timeout": 3},
    )


def server_unavailable_reason(kind: Kind) -> str | None:
    """``None`` if the service answers, else why not (for a skip/fail message)."""
    try:
        with _admin_engine(kind).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver or network error means "not usable"
        return f"{kind} service at {SERVERS[kind]} is not reachable: {type(exc).__name__}: {exc}".strip()
    return None


def require_server(kind: Kind) -> None:
    """Skip the calling test when the service is down; with ``CI=true`` fail instead, so CI never goes green
    by silently skipping every database test."""
    reason = server_unavailable_reason(kind)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: database services are required)", pytrace=False)
    pytest.skip(reason)


def create_database(kind: Kind, prefix: str = "mltrail_test") -> str:
    """Create ``<prefix>_<random>`` with the server's default collation and return its URI."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # Server defaults on purpose (utf8mb4_general_ci on MariaDB is case- and trailing-space-insensitive):
    # stores must be correct on the databases users actually have.
    ddl = f"CREATE DATABASE {name}" + (" CHARACTER SET utf8mb4" if kind == "mysql" else "")
    engine = _admin_engine(kind)
    with engine.connect() as conn:
        conn.execute(sa.text(ddl))
    return database_uri(kind, name)


def drop_database(uri: str) -> None:
    """Drop the database of ``uri``, even if connections to it are still open."""
    url = sa.make_url(uri)
    kind: Kind = "postgres" if url.get_backend_name() == "postgresql" else "mysql"
    force = " WITH (FORCE)" if kind == "postgres" else ""
    with _admin_engine(kind).connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {url.database}{force}"))


@contextmanager
def temporary_database(kind: Kind, prefix: str = "mltrail_test") -> Iterator[str]:
    """A fresh database for the duration of the ``with`` block; yields its URI."""
    uri = create_database(kind, prefix)
    try:
        yield uri
    finally:
        drop_database(uri)
