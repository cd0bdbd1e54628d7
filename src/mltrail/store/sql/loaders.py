"""Turning rows into entities, loading the data of many runs or experiments with one query per table.

The per-table queries that load the params, tags, latest metrics and inputs of a list of runs are compiled to SQL
text once per dialect, with the run ids written inline as integers (they come from our own tables): a page of
50,000 runs is still one statement per table and never hits a driver's bind-parameter limit (SQLite allows 32,766
parameters, PostgreSQL 65,535). The text runs on the DBAPI cursor of the store's connection, inside its
transaction, and its rows are read as plain tuples: SQLAlchemy's per-execute work (cache lookup, expanding the id
list, execution context, result metadata, events) cost more than SQLite running the query for one run, and more
than the rows of a 100-run page. A DBAPI error is wrapped, and a dead connection invalidated, as SQLAlchemy does
for every other statement. (These statements do not show in SQLAlchemy's echo log.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from mltrail.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
)
from mltrail.store.sql import schema as t

RUN_COLUMNS = (
    t.runs.c.id,
    t.runs.c.run_uuid,
    t.runs.c.experiment_id,
    t.runs.c.name,
    t.runs.c.user_id,
    t.runs.c.status,
    t.runs.c.start_time,
    t.runs.c.end_time,
    t.runs.c.artifact_uri,
    t.runs.c.lifecycle_stage,
)
EXPERIMENT_COLUMNS = tuple(t.experiments.c)
#: The run with the bound ``run_uuid``.
RUN_BY_UUID = sa.select(*RUN_COLUMNS).where(t.runs.c.run_uuid == sa.bindparam("run_uuid"))

_STATUSES = {status.value: status for status in RunStatus}


def fetch_tuples(
    connection: sa.Connection, query: sa.Executable, parameters: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """All rows of ``query`` as plain DBAPI tuples: no per-row Row objects, which cost more than the query for
    the tens of thousands of params, tags and metrics of a page of runs or a long metric history."""
    result = connection.execute(query, parameters)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _ids_in(column: Any, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """``column IN (1, 2, ...)`` with the ids written inline (they are integers from our own tables)."""
    return column.op("IN")(sa.literal_column("(" + ",".join(str(int(i)) for i in ids) + ")"))


def _database_error(connection: sa.Connection, sql: str, error: Exception, cursor: Any) -> Exception:
    """``error`` from the DBAPI as SQLAlchemy raises it (``sa.exc.DBAPIError``), after invalidating the
    connection if the error says it is gone, so the pool never hands it out again."""
    dialect = connection.dialect
    gone = dialect.is_disconnect(error, connection.connection, cursor)
    if gone:
        connection.invalidate(error)
    return sa.exc.DBAPIError.instance(
        sql, None, error, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
    )


class _ByRuns:
    """A query over the rows of a list of runs, built by ``build(where)`` from the condition selecting them."""

    _IDS = "__mltrail_run_ids__"

    def __init__(self, build: Callable[[Callable[[Any], sa.ColumnElement[bool]]], sa.Select[Any]]) -> None:
        self._statement = build(lambda column: column.op("IN")(sa.literal_column(f"({self._IDS})")))
        self._sql: dict[str, str] = {}  # dialect name -> SQL text with the id-list marker

    def _text(self, dialect: sa.Dialect) -> str:
        sql = self._sql.get(dialect.name)
        if sql is None:
            compiled = self._statement.compile(dialect=dialect)
            assert not compiled.params, "run-list queries take no bound parameters"
            sql = self._sql[dialect.name] = str(compiled)
        return sql

    def fetch(self, connection: sa.Connection, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        if not ids:
            return []
        sql = self._text(connection.dialect).replace(self._IDS, ",".join(map(str, map(int, ids))))
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql)
            return cursor.fetchall()
        except connection.dialect.loaded_dbapi.Error as error:
            raise _database_error(connection, sql, error, cursor) from error
        finally:
            cursor.close()


def _key_values(table: sa.Table) -> _ByRuns:
    return _ByRuns(lambda where: sa.select(table.c.run_pk, table.c.key, table.c.value).where(where(table.c.run_pk)))


_PARAMS = _key_values(t.params)
_TAGS = _key_values(t.tags)
_lm = t.latest_metrics
_LATEST_METRICS = _ByRuns(
    lambda where: (
        sa.select(_lm.c.run_pk, _lm.c.key, _lm.c.value, _lm.c.value_class, _lm.c.timestamp, _lm.c.step)
        .where(where(_lm.c.run_pk))
        .order_by(_lm.c.run_pk, _lm.c.key)
    )
)
_d = t.datasets
_INPUTS = _ByRuns(
    lambda where: (
        sa.select(
            t.inputs.c.run_pk, _d.c.id, _d.c.name, _d.c.digest, _d.c.source_type, _d.c.source, _d.c.schema, _d.c.profile
        )
        .select_from(t.inputs.join(_d, _d.c.id == t.inputs.c.dataset_id))
        .where(where(t.inputs.c.run_pk))
        .order_by(t.inputs.c.run_pk, _d.c.name, _d.c.digest)
    )
)
_it = t.input_tags
_INPUT_TAGS = _ByRuns(
    lambda where: (
        sa.select(_it.c.run_pk, _it.c.dataset_id, _it.c.key, _it.c.value).where(where(_it.c.run_pk)).order_by(_it.c.key)
    )
)


def run_info(row: Sequence[Any]) -> RunInfo:
    """The info of a ``runs`` row selected with :data:`RUN_COLUMNS` (unpacked by position: a page has many)."""
    _, run_uuid, experiment_id, name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage = row
    return RunInfo(
        run_uuid,
        str(experiment_id),
        name,
        user_id,
        _STATUSES.get(status) or RunStatus(status),
        start_time,
        end_time,
        artifact_uri,
        lifecycle_stage,
    )


def _empty_run(row: Sequence[Any]) -> Run:
    return Run(run_info(row), RunData([], {}, {}), RunInputs([], []), RunOutputs([]))


def load_runs(connection: sa.Connection, rows: Sequence[Any], *, info_only: bool = False) -> list[Run]:
    """Runs for ``runs`` rows (selected with :data:`RUN_COLUMNS`), in the same order."""
    runs = {row[0]: _empty_run(row) for row in rows}
    if not runs or info_only:
        return list(runs.values())
    ids = list(runs)
    params = {pk: run.data.params for pk, run in runs.items()}
    for run_pk, key, value in _PARAMS.fetch(connection, ids):
        params[run_pk][key] = value
    tags = {pk: run.data.tags for pk, run in runs.items()}
    for run_pk, key, value in _TAGS.fetch(connection, ids):
        tags[run_pk][key] = value
    metrics = {pk: run.data.latest_metrics for pk, run in runs.items()}
    decode, finite = t.decode_value, t.FINITE
    for run_pk, key, value, value_class, timestamp, step in _LATEST_METRICS.fetch(connection, ids):
        metrics[run_pk].append(
            Metric(key, value if value_class == finite else decode(value, value_class), timestamp, step)
        )
    _load_inputs(connection, runs, ids)
    return list(runs.values())


def _load_inputs(connection: sa.Connection, runs: dict[int, Run], ids: list[int]) -> None:
    inputs = _INPUTS.fetch(connection, ids)
    if not inputs:
        return
    input_tags: dict[tuple[int, int], list[InputTag]] = defaultdict(list)
    for run_pk, dataset_id, key, value in _INPUT_TAGS.fetch(connection, ids):
        input_tags[(run_pk, dataset_id)].append(InputTag(key, value))
    for run_pk, dataset_id, name, digest, source_type, source, schema, profile in inputs:
        dataset = Dataset(name, digest, source_type, source, schema, profile)
        runs[run_pk].inputs.dataset_inputs.append(
            DatasetInput(dataset, tuple(input_tags.get((run_pk, dataset_id), ())))
        )


def experiment(row: Any, tags: dict[str, str], default_location: str) -> Experiment:
    return Experiment(
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location or default_location,
        lifecycle_stage=row.lifecycle_stage,
        tags=tags,
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
    )


def load_experiment_tags(connection: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    if ids:
        et = t.experiment_tags
        for experiment_id, key, value in connection.execute(
            sa.select(et.c.experiment_id, et.c.key, et.c.value).where(_ids_in(et.c.experiment_id, ids))
        ):
            tags[experiment_id][key] = value
    return tags
