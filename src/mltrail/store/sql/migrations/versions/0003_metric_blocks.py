"""Per-block summaries of metric histories (``metric_blocks``), filled from the stored points.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from operator import itemgetter

import sqlalchemy as sa
from alembic import op

from mltrail.store.sql.migrations.column_types import id_type, string, table_options

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POINT_COLUMNS = [
    sa.Column(f"{point}_{field}", sa.Double() if field == "value" else sa.BigInteger(), nullable=False)
    for point in ("first", "last", "low", "high")
    for field in ("step", "ts", "value")
]


def upgrade() -> None:
    blocks = op.create_table(
        "metric_blocks",
        sa.Column(
            "run_pk",
            id_type(),
            sa.ForeignKey("runs.id", ondelete="CASCADE", name="fk_metric_blocks_run"),
            primary_key=True,
        ),
        sa.Column("key", string(250), primary_key=True),
        sa.Column("block", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("finite", sa.BigInteger(), nullable=False),
        sa.Column("non_finite", sa.BigInteger(), nullable=False),
        *_POINT_COLUMNS,
        sa.Column("ts_from", sa.BigInteger(), nullable=False),
        sa.Column("ts_to", sa.BigInteger(), nullable=False),
        **table_options(sqlite_with_rowid=False),
    )
    _fill(blocks)


def _series(connection: sa.Connection) -> Iterator[list[tuple]]:
    """Every stored history, one (run, key) at a time, as the write path's point tuples. One query per run
    (rather than one streamed cursor, which PyMySQL could not interleave with the inserts)."""
    metrics = sa.table(
        "metrics", *(sa.column(c) for c in ("run_pk", "key", "timestamp", "step", "value_class", "value"))
    )
    runs = sa.table("runs", sa.column("id"))
    for run_pk in connection.execute(sa.select(runs.c.id).order_by(runs.c.id)).scalars().all():
        rows = connection.execute(sa.select(metrics).where(metrics.c.run_pk == run_pk).order_by(metrics.c.key))
        for _, points in groupby((tuple(row) for row in rows), itemgetter(1)):
            yield list(points)


def _fill(blocks: sa.Table) -> None:
    from mltrail.store.sql.blocks import COLUMNS, summarize

    bind = op.get_bind()
    rows: list[dict] = []
    for points in _series(bind):
        rows.extend(dict(zip(COLUMNS, row, strict=True)) for row in summarize(points))
        if len(rows) >= 10_000:
            op.bulk_insert(blocks, rows)
            rows = []
    if rows:
        op.bulk_insert(blocks, rows)


def downgrade() -> None:
    op.drop_table("metric_blocks")
