"""Column types and table options the migrations use, chosen for the database being migrated.

Keys and values compare and sort by code point and case-sensitively on every dialect, like the in-memory search
of the directory store:
- PostgreSQL: ``COLLATE "C"`` on text columns (the database default is usually a locale-aware collation).
- MySQL/MariaDB: utf8mb4 with a binary NO PAD collation (the server default ``utf8mb4_general_ci`` ignores case
  and trailing spaces); MySQL 5.7 has only the PAD SPACE ``utf8mb4_bin``.
- SQLite: its default BINARY collation already does this.

Migration scripts are frozen snapshots of the schema at their revision; they use these helpers rather than the
tables of :mod:`mltrail.store.sql.schema`, which describe only the newest revision.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql


def _dialect() -> sa.Dialect:
    return op.get_bind().dialect


def is_mysql() -> bool:
    return _dialect().name in ("mysql", "mariadb")


def string(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length, collation="C") if _dialect().name == "postgresql" else sa.String(length)


def long_text() -> sa.types.TypeEngine[str]:
    dialect = _dialect()
    if dialect.name == "postgresql":
        return sa.Text(collation="C")
    return mysql.LONGTEXT() if is_mysql() else sa.Text()


def blob() -> sa.types.TypeEngine[bytes]:
    """LONGBLOB on MySQL, where BLOB holds only 64 KB."""
    return mysql.LONGBLOB() if is_mysql() else sa.LargeBinary()


def digest() -> sa.types.TypeEngine[bytes]:
    """A 16-byte hash in a primary key: VARBINARY(16) on MySQL, which cannot index a whole BLOB."""
    return mysql.VARBINARY(16) if is_mysql() else sa.LargeBinary()


def id_type() -> sa.types.TypeEngine[int]:
    return sa.Integer() if _dialect().name == "sqlite" else sa.BigInteger()


def _mysql_collation() -> str:
    dialect = _dialect()
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"
    version = dialect.server_version_info or (0,)
    return "utf8mb4_0900_bin" if version >= (8, 0, 17) else "utf8mb4_bin"


def table_options(*, sqlite_with_rowid: bool = True, sqlite_autoincrement: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``op.create_table``."""
    options: dict[str, Any] = {}
    if is_mysql():
        options.update(mysql_engine="InnoDB", mysql_charset="utf8mb4", mysql_collate=_mysql_collation())
    elif _dialect().name == "sqlite":
        if not sqlite_with_rowid:
            options["sqlite_with_rowid"] = False
        if sqlite_autoincrement:
            options["sqlite_autoincrement"] = True
    return options
