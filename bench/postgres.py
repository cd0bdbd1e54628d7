"""Throw-away PostgreSQL databases on the local service (127.0.0.1:5432, user postgres), through ``psql``."""

from __future__ import annotations

import subprocess

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"


def _psql(sql: str) -> str:
    result = subprocess.run(
        ["psql", "-h", HOST, "-p", str(PORT), "-U", USER, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", sql],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql failed on {sql!r}: {result.stderr.strip()}")
    return result.stdout.strip()


def url(name: str) -> str:
    return f"postgresql://{USER}@{HOST}:{PORT}/{name}"


def exists(name: str) -> bool:
    return _psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


def create(name: str, template: str | None = None) -> str:
    """Create database ``name`` (a copy of ``template`` if given) and return its URL."""
    _psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return url(name)


def drop(name: str) -> None:
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rename(old: str, new: str) -> None:
    _psql(f'ALTER DATABASE "{old}" RENAME TO "{new}"')


def names(prefix: str) -> list[str]:
    """Databases whose name starts with ``prefix``."""
    rows = _psql(f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'")
    return rows.splitlines() if rows else []
