"""Fixtures shared by every test package.

``postgres_db_uri`` / ``mysql_db_uri``: one throw-away database per test session on the local service, dropped at
the end. Several test packages share it, so tests must work on a non-empty database: create experiments with unique
names and never truncate tables (a test that needs an empty database uses ``databases.temporary_database``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from databases import require_server, temporary_database


@pytest.fixture(scope="session")
def postgres_db_uri() -> Iterator[str]:
    require_server("postgres")
    with temporary_database("postgres", "mltrail_test") as uri:
        yield uri


@pytest.fixture(scope="session")
def mysql_db_uri() -> Iterator[str]:
    require_server("mysql")
    with temporary_database("mysql", "mltrail_test") as uri:
        yield uri
