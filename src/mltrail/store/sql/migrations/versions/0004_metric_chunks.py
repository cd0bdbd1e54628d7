"""Metric histories packed in chunks (``metric_chunks``) instead of a row per point (``metrics``).

Every history is cut into chunks of up to 1,000 consecutive points. ``metric_blocks`` stays as it is: it
summarises the same points.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby, islice
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from alembic import op

from mltrail.store.sql.migrations.column_types import blob, digest, id_type, string, table_options

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_METRIC_COLUMNS = ("run_pk", "key", "timestamp", "step", "value_class", "value")
_CHUNK_POINTS = 1_000
#: Rows per ``bulk_insert``: chunks hold up to 24 KB of points each.
_CHUNK_BATCH = 200
_METRIC_BATCH = 10_000


def upgrade() -> None:
    chunks = op.create_table(
        "metric_chunks",
        sa.Column("run_pk", id_type(), primary_key=True),  # no foreign key (see schema.py)
        sa.Column("key", string(250), primary_key=True),
        sa.Column("ts_to", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("digest", digest(), primary_key=True),
        sa.Column("ts_from", sa.BigInteger(), nullable=False),
        sa.Column("step_from", sa.BigInteger(), nullable=False),
        sa.Column("step_to", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("data", blob(), nullable=False),
        **table_options(sqlite_with_rowid=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Out of line but not compressed: pglz costs more insert time than it saves on packed numbers.
        op.execute("ALTER TABLE metric_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    _insert(chunks, _chunk_rows(op.get_bind()), _CHUNK_BATCH)
    op.drop_table("metrics")


def downgrade() -> None:
    metrics = op.create_table(
        "metrics",
        sa.Column("run_pk", id_type(), primary_key=True),
        sa.Column("key", string(250), primary_key=True),
        sa.Column("timestamp", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("step", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("value_class", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.Double(), primary_key=True),
        **table_options(sqlite_with_rowid=False),
    )
    _insert(metrics, _metric_rows(op.get_bind()), _METRIC_BATCH)
    op.drop_table("metric_chunks")


def _insert(table: sa.Table, rows: Iterable[dict[str, Any]], batch_size: int) -> None:
    rows = iter(rows)
    while batch := list(islice(rows, batch_size)):
        op.bulk_insert(table, batch)


def _run_pks(connection: sa.Connection) -> Sequence[int]:
    runs = sa.table("runs", sa.column("id"))
    return connection.execute(sa.select(runs.c.id).order_by(runs.c.id)).scalars().all()


def _histories(connection: sa.Connection) -> Iterator[list[tuple[Any, ...]]]:
    """Every stored history, one (run, key) at a time in history order, as the write path's point tuples. One
    query per run (rather than one streamed cursor, which PyMySQL could not interleave with the inserts)."""
    metrics = sa.table("metrics", *(sa.column(name) for name in _METRIC_COLUMNS))
    c = metrics.c
    for run_pk in _run_pks(connection):
        query = (
            sa.select(metrics).where(c.run_pk == run_pk).order_by(c.key, c.timestamp, c.step, c.value_class, c.value)
        )
        points = [tuple(row) for row in connection.execute(query)]
        for _, history in groupby(points, itemgetter(1)):
            yield list(history)


def _chunk_rows(connection: sa.Connection) -> Iterator[dict[str, Any]]:
    from mltrail.store.sql.chunks import COLUMNS, rows
    from mltrail.store.sql.points import series_of

    for history in _histories(connection):
        for start in range(0, len(history), _CHUNK_POINTS):
            for row in rows(series_of(history[start : start + _CHUNK_POINTS])):
                yield dict(zip(COLUMNS, row, strict=True))


def _metric_rows(connection: sa.Connection) -> Iterator[dict[str, Any]]:
    """The points of every chunk as ``metrics`` rows, one run at a time (one query per run, as on upgrade)."""
    from mltrail.store.sql.chunks import write_points

    chunks = sa.table("metric_chunks", *(sa.column(name) for name in ("run_pk", "key", "ts_to", "data")))
    c = chunks.c
    for run_pk in _run_pks(connection):
        query = sa.select(c.key, c.data).where(c.run_pk == run_pk).order_by(c.key, c.ts_to)
        for key, history in groupby(connection.execute(query).all(), itemgetter(0)):
            # Readers merge chunks that hold a point twice; the primary key of ``metrics`` admits it once.
            points = dict.fromkeys(point for _, data in history for point in write_points(run_pk, key, data))
            for point in points:
                yield dict(zip(_METRIC_COLUMNS, point, strict=True))
