"""Datasets per experiment, run inputs and input tags.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mltrail.store.sql.migrations.column_types import id_type, long_text, string, table_options

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", id_type(), primary_key=True, autoincrement=True),
        sa.Column(
            "experiment_id",
            id_type(),
            sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE", name="fk_datasets_experiment"),
            nullable=False,
        ),
        sa.Column("name", string(500), nullable=False),
        sa.Column("digest", string(36), nullable=False),
        sa.Column("source_type", string(36), nullable=False),
        sa.Column("source", long_text(), nullable=False),
        sa.Column("schema", long_text(), nullable=True),
        sa.Column("profile", long_text(), nullable=True),
        sa.UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_experiment_name_digest"),
        **table_options(sqlite_autoincrement=True),
    )
    op.create_table(
        "inputs",
        sa.Column(
            "run_pk", id_type(), sa.ForeignKey("runs.id", ondelete="CASCADE", name="fk_inputs_run"), primary_key=True
        ),
        sa.Column(
            "dataset_id",
            id_type(),
            sa.ForeignKey("datasets.id", ondelete="CASCADE", name="fk_inputs_dataset"),
            primary_key=True,
        ),
        **table_options(),
    )
    op.create_index("ix_inputs_dataset", "inputs", ["dataset_id"])
    op.create_table(
        "input_tags",
        sa.Column("run_pk", id_type(), primary_key=True),
        sa.Column("dataset_id", id_type(), primary_key=True),
        sa.Column("key", string(255), primary_key=True),
        sa.Column("value", long_text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_pk", "dataset_id"],
            ["inputs.run_pk", "inputs.dataset_id"],
            ondelete="CASCADE",
            name="fk_input_tags_input",
        ),
        **table_options(),
    )


def downgrade() -> None:
    for table in ("input_tags", "inputs", "datasets"):
        op.drop_table(table)
