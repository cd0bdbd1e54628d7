"""Experiments, runs, params, tags, metric history and latest metrics; the Default experiment "0".

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mltrail.store.sql.migrations.column_types import id_type, is_mysql, long_text, string, table_options

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run_fk(table: str) -> sa.Column[int]:
    return sa.Column(
        "run_pk", id_type(), sa.ForeignKey("runs.id", ondelete="CASCADE", name=f"fk_{table}_run"), primary_key=True
    )


def upgrade() -> None:
    experiments = op.create_table(
        "experiments",
        sa.Column("experiment_id", id_type(), primary_key=True, autoincrement=True),
        sa.Column("name", string(500), nullable=False),
        sa.Column("artifact_location", long_text(), nullable=True),
        sa.Column("lifecycle_stage", string(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=True),
        sa.Column("last_update_time", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
        **table_options(sqlite_autoincrement=True),
    )
    op.create_table(
        "experiment_tags",
        sa.Column(
            "experiment_id",
            id_type(),
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE", name="fk_experiment_tags_experiment"),
            primary_key=True,
        ),
        sa.Column("key", string(250), primary_key=True),
        sa.Column("value", long_text(), nullable=False),
        **table_options(),
    )
    op.create_table(
        "runs",
        sa.Column("id", id_type(), primary_key=True, autoincrement=True),
        sa.Column("run_uuid", string(64), nullable=False),
        sa.Column(
            "experiment_id",
            id_type(),
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE", name="fk_runs_experiment"),
            nullable=False,
        ),
        sa.Column("name", long_text(), nullable=False),
        sa.Column("user_id", long_text(), nullable=False),
        sa.Column("status", string(20), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("deleted_time", sa.BigInteger(), nullable=True),
        sa.Column("lifecycle_stage", string(32), nullable=False),
        sa.Column("artifact_uri", long_text(), nullable=False),
        sa.UniqueConstraint("run_uuid", name="uq_runs_run_uuid"),
        **table_options(sqlite_autoincrement=True),
    )
    op.create_index("ix_runs_experiment_start", "runs", ["experiment_id", sa.text("start_time DESC"), "run_uuid"])
    for table in ("params", "tags"):
        op.create_table(
            table,
            _run_fk(table),
            sa.Column("key", string(250), primary_key=True),
            sa.Column("value", long_text(), nullable=False),
            **table_options(),
        )
    op.create_table(
        "metrics",
        sa.Column("run_pk", id_type(), primary_key=True),  # no foreign key (see schema.py)
        sa.Column("key", string(250), primary_key=True),
        sa.Column("timestamp", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("step", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("value_class", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("value", sa.Double(), primary_key=True),
        **table_options(sqlite_with_rowid=False),
    )
    op.create_table(
        "latest_metrics",
        _run_fk("latest_metrics"),
        sa.Column("key", string(250), primary_key=True),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("value_class", sa.SmallInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Double(), nullable=False),
        sa.Column("min_class", sa.SmallInteger(), nullable=False),
        sa.Column("max_value", sa.Double(), nullable=False),
        sa.Column("max_class", sa.SmallInteger(), nullable=False),
        **table_options(sqlite_with_rowid=False),
    )
    _insert_default_experiment(experiments)


def _insert_default_experiment(experiments: sa.Table) -> None:
    """Experiment "0". Its artifact location is filled in by the first store that opens the database, which
    knows the default artifact root."""
    now = int(time.time() * 1000)
    bind = op.get_bind()
    if is_mysql():
        # Inserting 0 into an AUTO_INCREMENT column means "next id" unless NO_AUTO_VALUE_ON_ZERO is set.
        bind.exec_driver_sql("SET @mltrail_saved_sql_mode = @@SESSION.sql_mode")
        bind.exec_driver_sql("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'")
    op.bulk_insert(
        experiments,
        [
            {
                "experiment_id": 0,
                "name": "Default",
                "artifact_location": None,
                "lifecycle_stage": "active",
                "creation_time": now,
                "last_update_time": now,
            }
        ],
    )
    if is_mysql():
        bind.exec_driver_sql("SET SESSION sql_mode = @mltrail_saved_sql_mode")


def downgrade() -> None:
    for table in ("latest_metrics", "metrics", "tags", "params", "runs", "experiment_tags", "experiments"):
        op.drop_table(table)
