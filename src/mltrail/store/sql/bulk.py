"""Writing many rows in one round trip: INSERT-or-ignore and INSERT-or-update for each dialect.

- PostgreSQL: ``INSERT .. SELECT FROM unnest(<one array per column>) ON CONFLICT ..``, a single statement with one
  binary array parameter per column whatever the number of rows (psycopg's executemany would send one statement
  per row).
- SQLite: a prepared statement run with ``executemany`` over plain tuples.
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
from typing import Any

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
            sql = str(_postgres_statement(dialect, table, self.columns, assignments).compile(dialect=dialect))
            if dialect.driver == "psycopg":
                # psycopg 3 sends ``%b`` parameters in binary: no per-element text quoting of the arrays.
                for name in self.columns:
                    sql = sql.replace(f"%({name})s", f"%({name})b")
            self._sql = sql
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

    def execute(self, connection: sa.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._postgres:
            columns = {name: [row[i] for row in rows] for i, name in enumerate(self.columns)}
            connection.exec_driver_sql(self._sql, columns)
            return
        params: list[Any]
        if self._named:
            params = [dict(zip(self.columns, row, strict=True)) for row in rows]
        elif self._reorder is not None:
            params = [tuple(row[i] for i in self._reorder) for row in rows]
        else:
            params = list(rows)
        connection.exec_driver_sql(self._sql, params)


def _postgres_statement(
    dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...], assignments: Assignments | None
) -> sa.Executable:
    arrays = ", ".join(f"CAST(:{name} AS {table.c[name].type.compile(dialect=dialect)}[])" for name in columns)
    names = ", ".join(f'"{name}"' for name in columns)
    source = sa.select(*(sa.literal_column(f'rows."{name}"') for name in columns)).select_from(
        sa.text(f"unnest({arrays}) AS rows({names})")
    )
    insert = postgresql.insert(table).from_select(list(columns), source)
    if assignments is None:
        return insert.on_conflict_do_nothing()
    return insert.on_conflict_do_update(
        index_elements=_primary_key(table), set_=dict(assignments(insert.excluded, table.c))
    )


def _primary_key(table: sa.Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]
