"""Writing many rows in one round trip: INSERT-or-ignore and INSERT-or-update for each dialect.

- PostgreSQL: ``INSERT .. SELECT * FROM unnest(<one array literal per column>) ON CONFLICT ..``, a single
  statement with one parameter per column whatever the number of rows (psycopg's executemany would send one
  statement per row). orjson writes each column as a JSON array, which is the array literal once its brackets
  are swapped for braces (unless it escaped a character: see :func:`array_literal`); that is about 10x faster
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

:class:`Batch` sends several bulk writes together: on PostgreSQL as one statement whose writes are
data-modifying ``WITH`` clauses, one round trip instead of one per table (a round trip costs about as much as
writing a few hundred rows, more on a busy server). A batch can also take the first column of its rows from a
query in the same statement (:meth:`Batch.execute_keyed`): then it needs no transaction around it.

MySQL evaluates the assignments of ``ON DUPLICATE KEY UPDATE`` left to right, each seeing the columns already
assigned; the ``assignments`` callbacks therefore return an ordered list, written so that the order does not
change the result (see :mod:`mltrail.store.sql.writes`). Constants in assignments must be inline literals
(``sa.literal_column``), as rows are bound positionally.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from mltrail.store.sql.loaders import cursor_rows

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
        #: Whether the count of affected rows can be less than the number of rows (then a :class:`Batch` counts
        #: them); a strict insert writes every row or fails, an upsert inserts or updates every row.
        self.skips = assignments is None and not strict
        if self._postgres:
            self._parts: dict[tuple[str, bool], str] = {}
            statements = (
                _postgres_statement(dialect, table, self.columns, assignments, strict, keyed) for keyed in (False, True)
            )
            self._sql, self._keyed_sql = (str(statement.compile(dialect=dialect)) for statement in statements)
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
            return connection.exec_driver_sql(self._sql, self._arrays(rows)).rowcount
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

    def _arrays(self, rows: Sequence[tuple[Any, ...]], prefix: str = "c", keyed: bool = False) -> dict[str, str]:
        """The parameters of the PostgreSQL statement: one array literal per column (but the first, if keyed)."""
        columns = enumerate(zip(*rows, strict=True))
        return {f"{prefix}{i}": array_literal(column) for i, column in columns if i or not keyed}

    def _postgres_part(self, prefix: str, keyed: bool) -> str:
        """The PostgreSQL statement with its parameters renamed ``<prefix><i>``, as part of a :class:`Batch`."""
        part = self._parts.get((prefix, keyed))
        if part is None:
            part = self._keyed_sql if keyed else self._sql
            for i in range(len(self.columns)):
                part = part.replace(f"%(c{i})s", f"%({prefix}{i})s")
            part = self._parts[(prefix, keyed)] = f"{part} RETURNING 1" if self.skips else part
        return part


class Batch:
    """Bulk writes sent together: on PostgreSQL one statement, each write a data-modifying ``WITH`` clause of it;
    elsewhere one statement each, in the order they were added. A failing write raises (roll back).

    The writes of one statement run on one snapshot, in no set order: each must write its own table, and none
    may depend on another's rows.
    """

    def __init__(self) -> None:
        self._writes: list[tuple[BulkInsert, Sequence[tuple[Any, ...]]]] = []

    def add(self, writer: BulkInsert, rows: Sequence[tuple[Any, ...]]) -> int:
        """Queue a write; returns its index in the counts :meth:`execute` returns."""
        self._writes.append((writer, rows))
        return len(self._writes) - 1

    def execute(self, connection: sa.Connection) -> list[int]:
        """Sends the writes; returns the count of affected rows of each (see :meth:`BulkInsert.execute`)."""
        if connection.dialect.name != "postgresql" or sum(1 for _, rows in self._writes if rows) < 2:
            return [writer.execute(connection, rows) for writer, rows in self._writes]
        return self._send(connection, None, {})

    def execute_keyed(self, connection: sa.Connection, key: str, params: dict[str, Any]) -> list[int] | None:
        """PostgreSQL only: sends the writes as one statement, in which the first column of every row is the
        ``id`` that the query ``key`` (with its ``params``) selects instead of the row's own. If it selects no
        row, nothing is written and None returned; else the counts of :meth:`execute`.

        One statement is atomic by itself, so the connection may be in autocommit mode: that saves the round
        trips of BEGIN and COMMIT."""
        return self._send(connection, key, params)

    def _send(self, connection: sa.Connection, key: str | None, params: dict[str, Any]) -> list[int] | None:
        clauses, params, counted = [], dict(params), []
        if key is not None:
            clauses.append(f"batch_key (id) AS ({key})")
            counted.append("(SELECT id FROM batch_key)")
        for i, (writer, rows) in enumerate(self._writes):
            if rows:
                clauses.append(f"w{i} AS ({writer._postgres_part(f'w{i}_', key is not None)})")
                params.update(writer._arrays(rows, f"w{i}_", key is not None))
                if writer.skips:
                    counted.append(f"(SELECT count(*) FROM w{i})")
        sql = f"WITH {', '.join(clauses)} SELECT {', '.join(counted) or '1'}"
        found = iter(_fetch_one(connection, sql, params))
        if key is not None and next(found) is None:
            return None
        return [next(found) if rows and writer.skips else len(rows) for writer, rows in self._writes]


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=64)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its ``%(name)s`` placeholders numbered ``$1, $2 ...`` (PostgreSQL's own), and the names in
    that order."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${names.setdefault(match[1], len(names) + 1)}"

    return _PLACEHOLDER.sub(number, sql).replace("%%", "%"), tuple(names)


def _fetch_one(connection: sa.Connection, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    """The one row of a :class:`Batch` statement, sent by psycopg's raw cursor with numbered placeholders: its
    default cursor parses a statement for placeholders on every execution unless it is under 4 KB, and a batch
    is 10 KB."""
    import psycopg

    numbered, names = _numbered(sql)
    cursor = psycopg.RawCursor(connection.connection.driver_connection)
    (row,) = cursor_rows(connection, cursor, numbered, [params[name] for name in names])
    return row


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
    dialect: sa.Dialect,
    table: sa.Table,
    columns: tuple[str, ...],
    assignments: Assignments | None,
    strict: bool,
    keyed: bool,
) -> sa.Executable:
    """The INSERT of ``unnest(<one array per column>)``; if ``keyed``, of ``batch_key.id`` and the arrays of the
    other columns (see :meth:`Batch.execute_keyed`)."""
    arrays = ", ".join(
        f"CAST(:c{i} AS {table.c[name].type.compile(dialect=dialect)}[])"
        for i, name in enumerate(columns)
        if i or not keyed
    )
    if keyed:
        source = sa.select(sa.literal_column("batch_key.id"), sa.literal_column("rows.*")).select_from(
            sa.text(f"batch_key, unnest({arrays}) AS rows")
        )
    else:
        source = sa.select(sa.literal_column("*")).select_from(sa.text(f"unnest({arrays}) AS rows"))
    insert = postgresql.insert(table).from_select(list(columns), source)
    if strict:
        return insert
    if assignments is None:
        return insert.on_conflict_do_nothing()
    return insert.on_conflict_do_update(
        index_elements=_primary_key(table), set_=dict(assignments(insert.excluded, table.c))
    )


def array_literal(values: Sequence[Any]) -> str:
    r"""PostgreSQL's literal of an array of str, int, float or None values, or of bytes values (in hex).

    A JSON array is that literal between braces instead of brackets (``null`` is NULL in both), as long as it
    has no escape sequence: JSON writes ``"``, ``\`` and control characters as escapes (``\"``, ``\\``,
    ``\n``...) that an array literal reads differently, so only then are the strings quoted one by one."""
    if values and isinstance(values[0], bytes):
        return "{" + ",".join(f'"\\\\x{value.hex()}"' for value in values) + "}"
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
