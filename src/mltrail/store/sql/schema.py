"""Tables of the SQL store (SQLAlchemy Core), as the queries see them.

The migrations in ``migrations/versions`` create these tables; ``tests/sql/test_migrations.py`` checks that the
migrated database matches this module, so the two never drift apart.

Design notes:
- Runs have an integer surrogate key ``runs.id``; every per-run table references it instead of the 32-character
  run id, which keeps the metric history (10^8 rows and more) and its indexes small.
- ``metric_chunks`` holds metric histories, the points of one write to one (run, key) packed in one row
  (:mod:`mltrail.store.sql.chunks`): a row per point cost more than everything else a write does. A history is
  one primary-key range; SQLite stores it ``WITHOUT ROWID`` and InnoDB clusters it by that key.
- Metric values in columns: MySQL's DOUBLE cannot hold NaN or ±Inf, so ``latest_metrics`` stores ``value``
  (0 when not finite) plus ``value_class`` (see :data:`NEG_INF` ...). ``(value_class, value)`` sorts in IEEE
  order with NaN last. Chunks hold IEEE doubles as they are.
- ``latest_metrics`` holds, per run and key, the latest point (max step, then timestamp, then value) and the min
  and max values, maintained on every write so that search never scans the history.
- ``metric_blocks`` summarises each history per block of steps, also on every write, so that a chart of a
  1,000,000-point history reads a few thousand rows.
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

#: ``value_class`` codes, ordered like the values they stand for.
NEG_INF = -1
FINITE = 0
POS_INF = 1
NAN = 2

#: Large text (param/tag values, dataset schemas): TEXT, LONGTEXT on MySQL where TEXT is only 64 KB.
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
#: A chunk's packed points: BYTEA, BLOB, LONGBLOB on MySQL where BLOB is only 64 KB.
Blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
#: A 16-byte hash in a primary key (MySQL cannot index a BLOB whole).
Digest = sa.LargeBinary().with_variant(mysql.VARBINARY(16), "mysql", "mariadb")
#: 64-bit integer primary keys; SQLite needs the ``INTEGER`` spelling for an auto-increment rowid alias.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

KEY_LENGTH = 250

metadata = sa.MetaData()

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", IdType, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("artifact_location", LongText, nullable=True),
    sa.Column("lifecycle_stage", sa.String(32), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=True),
    sa.Column("last_update_time", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("name", name="uq_experiments_name"),
    sqlite_autoincrement=True,
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column(
        "experiment_id",
        IdType,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE", name="fk_experiment_tags_experiment"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", LongText, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", IdType, primary_key=True, autoincrement=True),
    sa.Column("run_uuid", sa.String(64), nullable=False),
    sa.Column(
        "experiment_id",
        IdType,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE", name="fk_runs_experiment"),
        nullable=False,
    ),
    sa.Column("name", LongText, nullable=False),
    sa.Column("user_id", LongText, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("deleted_time", sa.BigInteger, nullable=True),
    sa.Column("lifecycle_stage", sa.String(32), nullable=False),
    sa.Column("artifact_uri", LongText, nullable=False),
    sa.UniqueConstraint("run_uuid", name="uq_runs_run_uuid"),
    sqlite_autoincrement=True,
)
# MLflow's default order (start_time DESC, run id ASC) within an experiment, read straight off the index.
sa.Index("ix_runs_experiment_start", runs.c.experiment_id, runs.c.start_time.desc(), runs.c.run_uuid)


def _run_fk(table: str) -> sa.Column[int]:
    return sa.Column(
        "run_pk", IdType, sa.ForeignKey("runs.id", ondelete="CASCADE", name=f"fk_{table}_run"), primary_key=True
    )


params = sa.Table(
    "params",
    metadata,
    _run_fk("params"),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", LongText, nullable=False),
)

tags = sa.Table(
    "tags",
    metadata,
    _run_fk("tags"),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", LongText, nullable=False),
)

metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    # No foreign key, so that MySQL's INSERT IGNORE counts the chunks it stores (see bulk.py); hard deletes remove
    # a run's chunks explicitly.
    sa.Column("run_pk", IdType, primary_key=True),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("ts_to", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("digest", Digest, primary_key=True),
    sa.Column("ts_from", sa.BigInteger, nullable=False),
    sa.Column("step_from", sa.BigInteger, nullable=False),
    sa.Column("step_to", sa.BigInteger, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("data", Blob, nullable=False),
    sqlite_with_rowid=False,
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    _run_fk("latest_metrics"),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("value_class", sa.SmallInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("min_value", sa.Double, nullable=False),
    sa.Column("min_class", sa.SmallInteger, nullable=False),
    sa.Column("max_value", sa.Double, nullable=False),
    sa.Column("max_class", sa.SmallInteger, nullable=False),
    sqlite_with_rowid=False,
)

#: Per (run, key, block of :data:`~mltrail.store.analytics.BLOCK_STEPS` steps): the block's finite points summarised
#: (how many, first and last
#: by ``(step, timestamp, value)``, the first minimum and first maximum by step then timestamp), how many
#: non-finite points it has, and the timestamp range of all its points. Maintained on every write
#: (:mod:`mltrail.store.sql.blocks`); a chart of a long history reads these rows instead of every point. The
#: point columns hold 0 while ``finite`` is 0.
metric_blocks = sa.Table(
    "metric_blocks",
    metadata,
    _run_fk("metric_blocks"),
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("block", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("finite", sa.BigInteger, nullable=False),
    sa.Column("non_finite", sa.BigInteger, nullable=False),
    *(
        sa.Column(f"{point}_{field}", sa.Double if field == "value" else sa.BigInteger, nullable=False)
        for point in ("first", "last", "low", "high")
        for field in ("step", "ts", "value")
    ),
    sa.Column("ts_from", sa.BigInteger, nullable=False),
    sa.Column("ts_to", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", IdType, primary_key=True, autoincrement=True),
    sa.Column(
        "experiment_id",
        IdType,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE", name="fk_datasets_experiment"),
        nullable=False,
    ),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("digest", sa.String(36), nullable=False),
    sa.Column("source_type", sa.String(36), nullable=False),
    sa.Column("source", LongText, nullable=False),
    sa.Column("schema", LongText, nullable=True),
    sa.Column("profile", LongText, nullable=True),
    sa.UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_experiment_name_digest"),
    sqlite_autoincrement=True,
)

inputs = sa.Table(
    "inputs",
    metadata,
    _run_fk("inputs"),
    sa.Column(
        "dataset_id",
        IdType,
        sa.ForeignKey("datasets.id", ondelete="CASCADE", name="fk_inputs_dataset"),
        primary_key=True,
    ),
    sa.Index("ix_inputs_dataset", "dataset_id"),
)

input_tags = sa.Table(
    "input_tags",
    metadata,
    sa.Column("run_pk", IdType, primary_key=True),
    sa.Column("dataset_id", IdType, primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", LongText, nullable=False),
    sa.ForeignKeyConstraint(
        ["run_pk", "dataset_id"],
        ["inputs.run_pk", "inputs.dataset_id"],
        ondelete="CASCADE",
        name="fk_input_tags_input",
    ),
)


def encode_value(value: float) -> tuple[float, int]:
    """``(value, value_class)`` to store for a metric value; non-finite values store 0 and their class."""
    if math.isfinite(value):
        return value, FINITE
    if math.isnan(value):
        return 0.0, NAN
    return 0.0, POS_INF if value > 0 else NEG_INF


_NON_FINITE = {NEG_INF: -math.inf, POS_INF: math.inf, NAN: math.nan}


def decode_value(value: float, value_class: int) -> float:
    """The metric value stored as ``(value, value_class)``."""
    return value if value_class == FINITE else _NON_FINITE[value_class]
