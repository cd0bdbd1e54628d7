"""Bulk writes of run data inside a caller's transaction: metrics (history + per-key summaries), params, tags
and dataset inputs. Every function issues a constant number of statements, whatever the number of rows.

Rows are written in key order so that concurrent transactions lock rows in the same order (no deadlocks between
two batches for the same run).

``latest_metrics`` is maintained with one upsert whose update keeps, per (run, key):
- the latest point: greatest ``(step, timestamp, value_class, value)``;
- the minimum: least ``(value_class, value)`` (NaN sorts last, so it is the minimum only if every point is NaN);
- the maximum: greatest ``(value_class, value)`` ignoring NaN, unless every point is NaN.
Each ``CASE`` assigns the least significant column of a tuple first. MySQL evaluates the assignments left to
right, each seeing the columns already assigned; in that order a tuple comparison still gives the same answer
for every column (a less significant column changes only when a more significant one already decided).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from mltrail.entities import DatasetInput, Metric, Param, RunTag
from mltrail.errors import MltrailException
from mltrail.store.sql import blocks, chunks
from mltrail.store.sql import schema as t
from mltrail.store.sql.bulk import Batch, BulkInsert, array_literal
from mltrail.store.sql.expressions import lex_greater
from mltrail.store.sql.points import Point, Series, series_of

RUN_NAME_TAG = "mlflow.runName"
DATASET_CONTEXT_TAG = "mlflow.data.context"


def _summary_assignments(new: Any, old: Any) -> list[tuple[str, Any]]:
    newer = lex_greater(
        [new.step, new.timestamp, new.value_class, new.value], [old.step, old.timestamp, old.value_class, old.value]
    )
    lower = lex_greater([old.min_class, old.min_value], [new.min_class, new.min_value])
    nan = sa.literal_column(str(t.NAN))
    higher = sa.and_(
        new.max_class != nan,
        sa.or_(
            old.max_class == nan,
            lex_greater([new.max_class, new.max_value], [old.max_class, old.max_value]),
        ),
    )

    def pick(condition: sa.ColumnElement[bool], column: str) -> tuple[str, Any]:
        return column, sa.case((condition, getattr(new, column)), else_=getattr(old, column))

    return [
        pick(newer, "value"),
        pick(newer, "value_class"),
        pick(newer, "timestamp"),
        pick(newer, "step"),
        pick(lower, "min_value"),
        pick(lower, "min_class"),
        pick(higher, "max_value"),
        pick(higher, "max_class"),
    ]


def _replace_value(new: Any, old: Any) -> list[tuple[str, Any]]:
    return [("value", new.value)]


_SUMMARY_COLUMNS = (
    "run_pk",
    "key",
    "value",
    "value_class",
    "timestamp",
    "step",
    "min_value",
    "min_class",
    "max_value",
    "max_class",
)
_DATASET_COLUMNS = ("experiment_id", "name", "digest", "source_type", "source", "schema", "profile")


@lru_cache(maxsize=16)
def _writers(dialect: sa.Dialect) -> dict[str, BulkInsert]:
    """The bulk writers of one dialect, compiled once."""
    return {
        "chunks": BulkInsert(dialect, t.metric_chunks, chunks.COLUMNS),
        "new_chunks": BulkInsert(dialect, t.metric_chunks, chunks.COLUMNS, strict=True),
        "latest": BulkInsert(dialect, t.latest_metrics, _SUMMARY_COLUMNS, _summary_assignments),
        "params": BulkInsert(dialect, t.params, ("run_pk", "key", "value")),
        "new_params": BulkInsert(dialect, t.params, ("run_pk", "key", "value"), strict=True),
        "tags": BulkInsert(dialect, t.tags, ("run_pk", "key", "value"), _replace_value),
        "experiment_tags": BulkInsert(dialect, t.experiment_tags, ("experiment_id", "key", "value"), _replace_value),
        "datasets": BulkInsert(dialect, t.datasets, _DATASET_COLUMNS),
        "inputs": BulkInsert(dialect, t.inputs, ("run_pk", "dataset_id")),
        "input_tags": BulkInsert(dialect, t.input_tags, ("run_pk", "dataset_id", "key", "value"), _replace_value),
    }


@lru_cache(maxsize=16)
def _active_run_pk(dialect: sa.Dialect, guarded: bool) -> str:
    """The query of the ``runs.id`` of the active run with the bound ``run_id``, compiled once. If ``guarded``,
    it also finds no run when a stored chunk may hold a point of the chunks described by the bound arrays
    ``g_key``, ``g_ts_from``, ``g_ts_to``, ``g_step_from``, ``g_step_to`` (PostgreSQL only)."""
    active = t.runs.c.lifecycle_stage == sa.literal_column("'active'")
    query = sa.select(t.runs.c.id).where(t.runs.c.run_uuid == sa.bindparam("run_id"), active)
    if guarded:
        query = query.where(_NO_OVERLAPPING_CHUNK)
    return str(query.compile(dialect=dialect))


#: No stored chunk of the run in the enclosing query meets the new chunks' ranges (see :func:`chunks.overlapping`).
_NO_OVERLAPPING_CHUNK = sa.text(
    """NOT EXISTS (SELECT 1 FROM unnest(CAST(:g_key AS TEXT[]), CAST(:g_ts_from AS BIGINT[]),
    CAST(:g_ts_to AS BIGINT[]), CAST(:g_step_from AS BIGINT[]), CAST(:g_step_to AS BIGINT[]))
    AS g(key, ts_from, ts_to, step_from, step_to)
    JOIN metric_chunks AS c ON c.run_pk = runs.id AND c.key = g.key COLLATE "C" AND c.ts_to >= g.ts_from
    AND c.ts_from <= g.ts_to AND c.step_to >= g.step_from AND c.step_from <= g.step_to)"""
)


def _guard_arrays(chunk_rows: Sequence[chunks.ChunkRow]) -> dict[str, str]:
    """The bound arrays of a guarded :func:`_active_run_pk` for ``chunk_rows``."""
    columns = {"key": 1, "ts_to": 2, "ts_from": 4, "step_from": 5, "step_to": 6}
    return {f"g_{name}": array_literal([row[i] for row in chunk_rows]) for name, i in columns.items()}


@lru_cache(maxsize=16)
def _insert_run(dialect: sa.Dialect, columns: tuple[str, ...]) -> str:
    """The INSERT of a ``runs`` row with the bound ``columns``, returning its ``id``, compiled once."""
    insert = sa.insert(t.runs).values({name: sa.bindparam(name) for name in columns}).returning(t.runs.c.id)
    return str(insert.compile(dialect=dialect))


def insert_run(connection: sa.Connection, run: dict[str, Any], tags: Sequence[RunTag]) -> None:
    """Insert a ``runs`` row (``run`` maps columns to values) and its tags; on PostgreSQL in one statement, which
    needs no transaction around it (see :meth:`~mltrail.store.sql.bulk.Batch.execute_keyed`)."""
    latest = {tag.key: tag.value for tag in tags}
    writer = _writers(connection.dialect)["tags"]
    if connection.dialect.name == "postgresql":
        batch = Batch()
        batch.add(writer, _key_value_rows(0, latest))  # the run's id comes from the statement
        batch.execute_keyed(connection, _insert_run(connection.dialect, tuple(run)), run)
        return
    run_pk = connection.execute(sa.insert(t.runs), run).inserted_primary_key[0]
    writer.execute(connection, _key_value_rows(run_pk, latest))


class AlreadyStored(Exception):
    """Some params or history chunks of a :func:`log_new_run_data` call are stored already (a client sent a
    batch again, or logged a param again): nothing was written. Write with :func:`log_run_data` instead."""


def log_new_run_data(
    connection: sa.Connection, run_id: str, metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> bool:
    """PostgreSQL: :func:`log_run_data` for a batch whose params and points are all new, in one statement that
    also finds the active run (:meth:`~mltrail.store.sql.bulk.Batch.execute_keyed`); being atomic, it needs no
    transaction around it. Params and chunks are inserted with plain INSERTs, about half the server's work of
    skipping conflicts (see :class:`~mltrail.store.sql.bulk.BulkInsert`): if any is stored already, the statement
    fails and this raises :class:`AlreadyStored`. Returns False, having written nothing, if the run is not active
    or a stored chunk may hold some of the points (the guard of :func:`_active_run_pk`). A ``mlflow.runName`` tag
    is not for this function, as it renames the run."""
    writers = _writers(connection.dialect)
    batch = Batch()
    wanted = {param.key: param.value for param in params}
    batch.add(writers["new_params"], _key_value_rows(0, wanted))
    key_params: dict[str, str] = {"run_id": run_id}
    if metrics:
        # The first column of each row (the run) comes from the statement: 0 stands in for it.
        series = series_of(_distinct_points(0, metrics))
        chunk_rows = chunks.rows(series)
        key_params.update(_guard_arrays(chunk_rows))
        batch.add(writers["new_chunks"], chunk_rows)
        batch.add(writers["latest"], _summaries(series))
        blocks.record(connection, batch, series, complete=True)
    batch.add(writers["tags"], _key_value_rows(0, {tag.key: tag.value for tag in tags}))
    key = _active_run_pk(connection.dialect, bool(metrics))
    try:
        return batch.execute_keyed(connection, key, key_params) is not None
    except sa.exc.IntegrityError as error:  # only the plain INSERTs can conflict
        raise AlreadyStored from error


def log_run_data(
    connection: sa.Connection,
    run_pk: int,
    run_id: str,
    metrics: Sequence[Metric],
    params: Sequence[Param],
    tags: Sequence[RunTag],
) -> None:
    """Write a batch of run data: params (see :func:`_check_params`), metric points (a point already stored is
    skipped) with their per-key summaries, and tags (the last value of a key wins; ``mlflow.runName`` also
    renames the run). The history goes first, as the block summaries depend on which points were new; the
    other writes form one :class:`~mltrail.store.sql.bulk.Batch`, a single statement on PostgreSQL."""
    writers = _writers(connection.dialect)
    batch = Batch()
    wanted = {param.key: param.value for param in params}
    params_write = batch.add(writers["params"], _key_value_rows(run_pk, wanted))
    if metrics:
        points = _distinct_points(run_pk, metrics)
        series = series_of(points)
        chunk_rows = chunks.rows(series)
        new_points = _unstored(connection, run_pk, points, chunk_rows)
        if len(new_points) < len(points):
            series = series_of(new_points)
            chunk_rows = chunks.rows(series)
        # A chunk stored meanwhile by a concurrent retry of the same batch is skipped: then the blocks are rebuilt.
        complete = writers["chunks"].execute(connection, chunk_rows) == len(chunk_rows)
        batch.add(writers["latest"], _summaries(series))
        blocks.record(connection, batch, series, complete=complete)
    latest = {tag.key: tag.value for tag in tags}
    batch.add(writers["tags"], _key_value_rows(run_pk, latest))
    counts = batch.execute(connection)
    if wanted:
        _check_params(connection, run_pk, run_id, wanted, counts[params_write])
    if RUN_NAME_TAG in latest:
        connection.execute(sa.update(t.runs).where(t.runs.c.id == run_pk).values(name=latest[RUN_NAME_TAG]))


def _unstored(
    connection: sa.Connection, run_pk: int, points: list[Point], chunk_rows: Sequence[chunks.ChunkRow]
) -> list[Point]:
    """``points`` (sorted, distinct; ``chunk_rows`` packs them) less those that a stored chunk holds already. Only
    chunks whose ranges meet the new ones' are read: usually none, as a run logs forward in time."""
    overlapping = chunks.overlapping(connection, run_pk, chunk_rows)
    if not overlapping:
        return points
    stored = {point for key, data in overlapping for point in chunks.write_points(run_pk, key, data)}
    return [point for point in points if point not in stored]


def _distinct_points(run_pk: int, metrics: Sequence[Metric]) -> list[Point]:
    """The history rows of ``metrics``, sorted, without repeats. ``dict.fromkeys`` drops repeated points but keeps
    the caller's order, which is often sorted already (then sorting is linear)."""
    return sorted(dict.fromkeys(_points(run_pk, metrics)))


def _points(run_pk: int, metrics: Sequence[Metric]) -> list[Point]:
    """The history rows of ``metrics``; the values are checked once for being all finite (the common case), else
    the non-finite ones are encoded."""
    points = [(run_pk, m.key, m.timestamp, m.step, t.FINITE, m.value) for m in metrics]
    if all(map(math.isfinite, map(_VALUE, points))):
        return points
    encode = t.encode_value
    return [(*point[:4], *reversed(encode(point[5]))) for point in points]


_VALUE = itemgetter(5)


def _summaries(series: Sequence[Series]) -> list[tuple[Any, ...]]:
    """One ``latest_metrics`` row per series of this batch's points, by the upsert's rules."""
    rows = []
    for one in series:
        i = _latest(one)
        values = one.values
        if one.finite:  # the common case: compare the bare values
            low, high = (t.FINITE, min(values)), (t.FINITE, max(values))
        else:
            low, high = _extremes(one.points())
        latest = (values[i], one.classes[i], one.timestamps[i], one.steps[i])
        rows.append((one.run_pk, one.key, *latest, low[1], low[0], high[1], high[0]))
    return rows


def _latest(series: Series) -> int:
    """The index of the point with the greatest ``(step, timestamp, value_class, value)``; usually the only one at
    the last step."""
    steps = series.steps
    last = max(steps)
    if steps.count(last) == 1:
        return steps.index(last)
    at_last = [i for i, step in enumerate(steps) if step == last]
    return max(at_last, key=lambda i: (series.timestamps[i], series.classes[i], series.values[i]))


_value_order = itemgetter(4, 5)  # (value_class, value) of a point


def _extremes(points: list[Point]) -> tuple[tuple[int, float], tuple[int, float]]:
    """``(value_class, value)`` of the minimum and of the maximum (NaN only if every point is NaN)."""
    low = _value_order(min(points, key=_value_order))
    high = _value_order(max(points, key=_value_order))
    if high[0] == t.NAN:  # NaN sorts above every number: the maximum is the greatest other value, if any
        numbers = [point for point in points if point[4] != t.NAN]
        high = _value_order(max(numbers, key=_value_order)) if numbers else (t.NAN, 0.0)
    return low, high


def _check_params(connection: sa.Connection, run_pk: int, run_id: str, wanted: dict[str, str], inserted: int) -> None:
    """Params are immutable: an existing key with a different value aborts the transaction. They were inserted
    skipping stored keys; on PostgreSQL, the insert's count tells whether any key was stored (MySQL counts a
    skipped row as affected), and only then are the stored values compared.

    Inserting first and comparing afterwards is race-free: whichever transaction stored a key first wins, and
    the other sees that value once its conflicting insert has waited for the first to commit.
    """
    if inserted == len(wanted) and connection.dialect.name == "postgresql":
        return
    stored = connection.execute(
        sa.select(t.params.c.key, t.params.c.value).where(t.params.c.run_pk == run_pk, t.params.c.key.in_(list(wanted)))
    )
    for key, value in stored:
        if value != wanted[key]:
            raise MltrailException.invalid_parameter(
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{value}' for run ID='{run_id}'. Attempted logging new value '{wanted[key]}'."
            )


def set_experiment_tag(connection: sa.Connection, experiment_id: int, key: str, value: str) -> None:
    _writers(connection.dialect)["experiment_tags"].execute(connection, [(experiment_id, key, value)])


def set_tags(connection: sa.Connection, run_pk: int, tags: Sequence[RunTag]) -> None:
    """Insert or overwrite tags (the last value of a key wins) without renaming the run: for callers that set the
    run's name themselves (:func:`log_run_data` renames a run tagged ``mlflow.runName``)."""
    rows = _key_value_rows(run_pk, {tag.key: tag.value for tag in tags})
    _writers(connection.dialect)["tags"].execute(connection, rows)


def _key_value_rows(run_pk: int, values: dict[str, str]) -> list[tuple[int, str, str]]:
    """``(run_pk, key, value)`` rows of params or tags, in key order (the order rows are locked in)."""
    return [(run_pk, key, values[key]) for key in sorted(values)]


def log_dataset_inputs(
    connection: sa.Connection, run_pk: int, experiment_id: int, dataset_inputs: Sequence[DatasetInput]
) -> None:
    """Record datasets (once per experiment, by name and digest) as inputs of the run, with their input tags."""
    if not dataset_inputs:
        return
    writers = _writers(connection.dialect)
    first: dict[tuple[str, str], DatasetInput] = {}
    for item in dataset_inputs:
        first.setdefault((item.dataset.name, item.dataset.digest), item)
    pairs = sorted(first)
    writers["datasets"].execute(
        connection,
        [
            (experiment_id, name, digest, d.source_type, d.source, d.schema, d.profile)
            for name, digest in pairs
            for d in (first[(name, digest)].dataset,)
        ],
    )
    ids = {
        (name, digest): dataset_id
        for dataset_id, name, digest in connection.execute(
            sa.select(t.datasets.c.id, t.datasets.c.name, t.datasets.c.digest).where(
                t.datasets.c.experiment_id == experiment_id,
                sa.tuple_(t.datasets.c.name, t.datasets.c.digest).in_(pairs),
            )
        )
    }
    writers["inputs"].execute(connection, [(run_pk, ids[pair]) for pair in pairs])
    input_tags: dict[tuple[int, str], str] = {}
    for item in dataset_inputs:
        for tag in item.tags:
            input_tags[(ids[(item.dataset.name, item.dataset.digest)], tag.key)] = tag.value
    writers["input_tags"].execute(
        connection, [(run_pk, dataset_id, key, input_tags[(dataset_id, key)]) for dataset_id, key in sorted(input_tags)]
    )
