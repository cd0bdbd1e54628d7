"""Writing many rows in one round trip: INSERT-or-ignore and INSERT-or-update for each dialect.

- PostgreSQL: ``INSERT .. SELECT FROM json_array_elements(<all rows as one JSON text>) ON CONFLICT ..``, a single
  statement with one parameter whatever the number of rows (psycopg's executemany would send one statement per
  row). orjson writes that text about 10x faster than the driver dumps one array per column. Row values must be
  str, int64, None or finite floats (metrics store non-finite values as a class code and 0.0): orjson writes
  floats in their shortest round-trip form, which PostgreSQL reads back exactly.
- SQLite: multi-row ``INSERT .. VALUES (..), (..) ..`` with as many rows as the bound-variable limit allows
  (about half the CPU of ``executemany``, which steps the statement once per row).
- MySQL/MariaDB: ``executemany``, which PyMySQL turns into one multi-row ``INSERT .. ON DUPLICATE KEY UPDATE``.

The SQL is compiled once per dialect; rows are bound as tuples without SQLAlchemy's per-row parameter
processing, which costs more than the database itself for small rows.

MySQL evaluates the assignments of ``ON DUPLICATE KEY UPDATE`` left to right, each seeing the columns already
assigned; the ``assignments`` callbacks therefore return an ordered list, written so that the order does not
change the result (see :mod:`mltrail.store.sql.writes`). Constants in assignments must be inline literals
(``sa.literal_column``), as rows are bound positionally.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

#: ``assignments(new, old)`` -> ordered ``[(column name, expression)]``; ``new`` is the proposed row
#: (``excluded`` / ``VALUES()``), ``old`` the table's columns (the stored row). ``None`` means "ignore conflicts".
Assignments = Callable[[Any, Any], Sequence[tuple[str, Any]]]


class BulkInsert:
    """INSERT of rows (tuples in ``columns`` order) into ``table``; on a primary-key or unique conflict either
    skip the row (``assignments=None``) or update the stored row with ``assignments``."""

    def __init__(
        self, dialect: sa.Dialect, table: sa.Table, columns: Sequence[str], assignments: Assignments | None = None
    ) -> None:
        self.columns = tuple(columns)
        self._postgres = dialect.name == "postgresql"
        if self._postgres:
            self._sql = str(_postgres_statement(dialect, table, self.columns, assignments).compile(dialect=dialect))
            return
        values = {name: sa.bindparam(name) for name in self.columns}
        if dialect.name in ("mysql", "mariadb"):
            insert = mysql.insert(table).values(values)
            if assignments is None:
                # A no-op update rather than INSERT IGNORE, which would also swallow foreign-key and data errors.
                first = next(iter(table.primary_key.columns)).name
                statement: Any = insert.on_duplicate_key_update({first: table.c[first]})
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

    def execute(self, connection: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._postgres:
            connection.exec_driver_sql(self._sql, {"rows": orjson.dumps(rows).decode()})
            return
        params: Sequence[Any]
        if self._named:
            params = [dict(zip(self.columns, row, strict=True)) for row in rows]
        elif self._reorder is not None:
            params = [tuple(row[i] for i in self._reorder) for row in rows]
        else:
            params = rows
        if self._multirow is not None:
            self._multirow.execute(connection, params)
        else:
            connection.exec_driver_sql(self._sql, list(params))


class _MultiRow:
    """A compiled single-row SQLite INSERT rewritten to take many rows per statement."""

    #: SQLite's default bound-variable limit before 3.32 (and the lowest any build uses).
    MAX_VARIABLES = 999

    def __init__(self, sql: str, width: int) -> None:
        group = "(" + ", ".join(["?"] * width) + ")"
        head, found, tail = sql.partition(f"VALUES {group}")
        if not found:
            raise ValueError(f"not a single-row INSERT: {sql}")
        self._head, self._tail, self._group = head + "VALUES ", tail, group
        self._chunk = max(1, self.MAX_VARIABLES // width)

    def _sql(self, rows: int) -> str:
        return self._head + ", ".join([self._group] * rows) + self._tail

    def execute(self, connection: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        chunk = self._chunk
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            # A tuple of values is one execution (a list would mean executemany).
            connection.exec_driver_sql(self._sql(len(part)), tuple(chain.from_iterable(part)))


def _postgres_statement(
    dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...], assignments: Assignments | None
) -> sa.Executable:
    fields = (
        sa.literal_column(f"CAST(rows.row ->> {i} AS {table.c[name].type.compile(dialect=dialect)})")
        for i, name in enumerate(columns)
    )
    source = sa.select(*fields).select_from(sa.text("json_array_elements(CAST(:rows AS json)) AS rows(row)"))
    insert = postgresql.insert(table).from_select(list(columns), source)
    if assignments is None:
        return insert.on_conflict_do_nothing()
    return insert.on_conflict_do_update(
        index_elements=_primary_key(table), set_=dict(assignments(insert.excluded, table.c))
    )


def _primary_key(table: sa.Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]
