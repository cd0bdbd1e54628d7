"""SQL tracking store (SQLite, PostgreSQL, MySQL/MariaDB) on SQLAlchemy Core with Alembic migrations."""

from mltrail.store.sql.store import SqlStore

__all__ = ["SqlStore"]
