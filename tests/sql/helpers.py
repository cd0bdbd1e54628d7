"""Helpers shared by the SQL store tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from mltrail.store.sql.engine import create_engine, normalize_url

#: ``params`` for fixtures that run once per dialect (markers let ``-m "not mysql"`` deselect a service).
DIALECT_PARAMS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


class StatementCounter:
    """Counts the SQL statements an engine executes while active."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _record(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        sa.event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._record)

    @property
    def count(self) -> int:
        return len(self.statements)


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@contextmanager
def engine_for(uri: str) -> Iterator[sa.Engine]:
    """An engine for ``uri``, disposed of afterwards."""
    engine = create_engine(normalize_url(uri))
    try:
        yield engine
    finally:
        engine.dispose()
