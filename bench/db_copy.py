"""Copy every row of a SQLite tracking database into a PostgreSQL database whose schema the same library
created. Used once per cached data set, so a library does not spend another half hour (or more) inserting
the same 20 million rows again just to have them in PostgreSQL too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

_SKIPPED = ("alembic_version",)


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _postgres_columns(target, table: str) -> dict[str, str]:
    rows = target.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s",
        (table,),
    ).fetchall()
    return dict(rows)


def copy_sqlite_to_postgres(sqlite_path: Path, postgres_url: str) -> None:
    """Replace the rows of every table the two databases share by the SQLite database's rows."""
    import psycopg

    source = sqlite3.connect(sqlite_path)
    sqlite_tables = [row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    with psycopg.connect(postgres_url) as target:
        target.execute("SET session_replication_role = replica")  # foreign keys unchecked: any table order
        tables = [t for t in sqlite_tables if t not in _SKIPPED and _postgres_columns(target, t)]
        target.execute(f"TRUNCATE {_quoted(tables)} CASCADE")
        for table in tables:
            types = _postgres_columns(target, table)
            columns = [row[1] for row in source.execute(f'PRAGMA table_info("{table}")') if row[1] in types]
            booleans = [i for i, column in enumerate(columns) if types[column] == "boolean"]
            with target.cursor().copy(f'COPY "{table}" ({_quoted(columns)}) FROM STDIN') as copy:
                for row in source.execute(f'SELECT {_quoted(columns)} FROM "{table}"'):
                    if booleans:
                        row = list(row)
                        for i in booleans:
                            row[i] = None if row[i] is None else bool(row[i])
                    copy.write_row(row)
        for table, column, sequence in target.execute(
            "SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name) "
            "FROM information_schema.columns WHERE table_schema = 'public' AND column_default LIKE 'nextval%'"
        ).fetchall():
            target.execute(f'SELECT setval(%s, GREATEST(1, (SELECT max("{column}") FROM "{table}")))', (sequence,))
    with psycopg.connect(postgres_url, autocommit=True) as target:
        target.execute("VACUUM ANALYZE")
    source.close()
