"""Alembic environment: migrations always run on the connection that :mod:`mltrail.store.sql.migrate` passes in
(holding the cross-process migration lock); there is no ``alembic.ini`` and no offline mode."""

from __future__ import annotations

from alembic import context

from mltrail.store.sql.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
