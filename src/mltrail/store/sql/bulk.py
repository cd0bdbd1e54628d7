"""Writing many rows in one round trip: INSERT-or-ignore and INSERT-or-update for each dialect.

- PostgreSQL: ``INSERT .. SELECT * FROM unnest(<one array literal per column>) ON CONFLICT ..``, a single
  statement with one parameter per column whatever the number of rows (psycopg's executemany would send one
  statement per row). orjson writes each column as a JSON array, which is the array literal once its brackets
  are swapped for braces (unless it escaped a character: see :func:`_array_literal`); that is about 10x faster
  than the driver dumps arrays, and the server parses array literals in about half the time it takes to pick
  fields out of JSON rows. Row values must be str, int64, None or finite floats (metrics store non-finite
  values as a class code and 0.0): orjson writes floats in their shortest round-trip form, which PostgreSQL
  reads back exactly.
- SQLite: multi-row ``INSERT .. VALUES (..), (..) ..`` with up to :data:`MAX_ROWS` rows, or fewer if the
  connection's bound-variable limit is lower (about half the CPU of ``executemany``, which steps the statement
  once per row).
- MySQL/MariaDB: ``executemany``, which PyMySQL turns into one multi-row ``INSERT .. ON DUPLICATE KEY UPDATE``.

The SQL is compiled once per dialect; rows are bound as tuples without SQLAlchemy's per-row parameter
processing, which costs more than the database itself for small rows.

MySQL evaluates the assignments of ``ON DUPLICATE KEY UPDATE`` left to right, each seeing the columns already
assigned; the ``assignments`` callbacks therefore return an ordered list, written so that the order does not
change the result (see :mod:`mltrail.store.sql.writes`). Constants in assignments must be inline literals
(``sa.literal_column``), as rows are bound positionally.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

#: ``assignments(new, old)`` -> ordered ``[(column name, expression)]``; ``new`` is the proposed row
#: (``excluded`` / ``VALUES()``), ``old`` the table's columns (the stored row). ``None`` means "ignore conflicts".
Assignments = Callable[[Any, Any], Sequence[tuple[str, Any]]]


#: Rows per SQLite statement: a log_batch's metrics in one statement.
MAX_ROWS = 1000


class BulkInsert:
    """INSERT of rows (tuples in ``columns`` order) into ``table``; on a primary-key or unique conflict either
    skip the row (``assignments=None``) or update the stored row with ``assignments``.

    ``strict=True`` (without assignments) makes a conflict fail the statement with an ``IntegrityError``
    instead: on PostgreSQL a plain INSERT costs about half as much as ``ON CONFLICT DO NOTHING``, whose
    speculative insertion checks the index twice and logs an extra WAL record per row.
    """

    def __init__(
        self,
        dialect: sa.Dialect,
        table: sa.Table,
        columns: Sequence[str],
        assignments: Assignments | None = None,
        *,
        strict: bool = False,
    ) -> None:
        if strict and assignments is not None:
            raise ValueError("a strict insert has no assignments")
        self.columns = tuple(columns)
        self._postgres = dialect.name == "postgresql"
        if self._postgres:
            postgres = _postgres_statement(dialect, table, self.columns, assignments, strict)
            self._sql = str(postgres.compile(dialect=dialect))
            return
        values = {name: sa.bindparam(name) for name in self.columns}
        statement: Any
        if strict:
            statement = sa.insert(table).values(values)
        elif dialect.name in ("mysql", "mariadb"):
            insert = mysql.insert(table).values(values)
            if assignments is None and not table.foreign_keys:
                # INSERT IGNORE counts only the rows it inserts (see ``execute``). It would also turn data errors
                # into warnings, but rows are validated before they get here, and the table has no foreign key.
                statement = insert.prefix_with("IGNORE")
            elif assignments is None:
                # A no-op update rather than INSERT IGNORE, which would also swallow foreign-key errors.
                first = next(iter(table.primary_key.columns)).name
                statement = insert.on_duplicate_key_update({first: table.c[first]})
            else:
                statement = insert.on_duplicate_key_update(list(assignments(insert.inserted, table.c)))
        else:
            insert = sqlite.insert(table).values(values)
            statement = (
                insert.on_conflict_do_nothing()
                if assignments is None
                else insert.on_conflict_do_update(
                    index_elements=_primary_key(table), set_=dict(assignments(insert.excluded, table.c))
                )
            )
        compiled = statement.compile(dialect=dialect)
        self._sql = compiled.string
        self._named = not compiled.positional
        order = [self.columns.index(name) for name in compiled.positiontup or ()]
        self._reorder = None if self._named or order == list(range(len(self.columns))) else order
        self._multirow: _MultiRow | None = None
        if dialect.name == "sqlite" and not self._named:
            self._multirow = _MultiRow(self._sql, len(self.columns))

    def execute(self, connection: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Writes the rows; returns the driver's count of affected rows. For an INSERT-or-ignore into a table
        without foreign keys that is the number of rows inserted (conflicting rows are not counted)."""
        if not rows:
            return 0
        if self._postgres:
            arrays = {f"c{i}": _array_literal(column) for i, column in enumerate(zip(*rows, strict=True))}
            return connection.exec_driver_sql(self._sql, arrays).rowcount
        params: Sequence[Any]
        if self._named:
            params = [dict(zip(self.columns, row, strict=True)) for row in rows]
        elif self._reorder is not None:
            params = [tuple(row[i] for i in self._reorder) for row in rows]
        else:
            params = rows
        if self._multirow is not None:
            return self._multirow.execute(connection, params)
        return connection.exec_driver_sql(self._sql, list(params)).rowcount


class _MultiRow:
    """A compiled single-row SQLite INSERT rewritten to take many rows per statement."""

    def __init__(self, sql: str, width: int) -> None:
        group = "(" + ", ".join(["?"] * width) + ")"
        head, found, tail = sql.partition(f"VALUES {group}")
        if not found:
            raise ValueError(f"not a single-row INSERT: {sql}")
        self._head, self._tail, self._group = head + "VALUES ", tail, group
        self._width = width
        self._chunk = 0  # rows per statement, from the first connection's bound-variable limit

    def _sql(self, rows: int) -> str:
        return self._head + ", ".join([self._group] * rows) + self._tail

    def _rows_per_statement(self, connection: sa.Connection) -> int:
        if not self._chunk:
            limit = connection.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._chunk = max(1, min(MAX_ROWS, limit // self._width))
        return self._chunk

    def execute(self, connection: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        chunk, affected = self._rows_per_statement(connection), 0
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            # A tuple of values is one execution (a list would mean executemany).
            affected += connection.exec_driver_sql(self._sql(len(part)), tuple(chain.from_iterable(part))).rowcount
        return affected


def _postgres_statement(
    dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...], assignments: Assignments | None, strict: bool
) -> sa.Executable:
    arrays = ", ".join(
        f"CAST(:c{i} AS {table.c[name].type.compile(dialect=dialect)}[])" for i, name in enumerate(columns)
    )
    source = sa.select(sa.literal_column("*")).select_from(sa.text(f"unnest({arrays}) AS rows"))
    insert = postgresql.insert(table).from_select(list(columns), source)
    if strict:
        return insert
    if assignments is None:
        return insert.on_conflict_do_nothing()
    return insert.on_conflict_do_update(
        index_elements=_primary_key(table), set_=dict(assignments(insert.excluded, table.c))
    )


def _array_literal(values: Sequence[Any]) -> str:
    r"""PostgreSQL's literal of an array of str, int, float or None values.

    A JSON array is that literal between braces instead of brackets (``null`` is NULL in both), as long as it
    has no escape sequence: JSON writes ``"``, ``\`` and control characters as escapes (``\"``, ``\\``,
    ``\n``...) that an array literal reads differently, so only then are the strings quoted one by one."""
    text = orjson.dumps(values).decode()
    if "\\" not in text:
        return "{" + text[1:-1] + "}"
    return "{" + ",".join(_array_element(value) for value in values) + "}"


def _array_element(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return orjson.dumps(value).decode()


def _primary_key(table: sa.Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]
