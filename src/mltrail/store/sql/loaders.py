"""Turning rows into entities, loading the data of many runs or experiments with one query per table.

The per-table queries that load the params, tags, latest metrics and inputs of a list of runs are compiled to SQL
text once per dialect, with the run ids written inline as integers (they come from our own tables): a page of
50,000 runs is still one statement per table and never hits a driver's bind-parameter limit (SQLite allows 32,766
parameters, PostgreSQL 65,535). The text runs on the DBAPI cursor of the store's connection, inside its
transaction, and its rows are read as plain tuples: SQLAlchemy's per-execute work (cache lookup, expanding the id
list, execution context, result metadata, events) cost more than SQLite running the query for one run, and more
than the rows of a 100-run page. A DBAPI error is wrapped, and a dead connection invalidated, as SQLAlchemy does
for every other statement. (These statements do not show in SQLAlchemy's echo log.) The run lookup and the metric
history (:mod:`mltrail.store.sql.history`) run the same way (:class:`Baked`), with bound parameters.

Besides entities, a run can be loaded as :class:`RunRows`, its data as plain tuples, which the server encodes to
JSON without building the entities in between.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from itertools import starmap
from typing import Any, NamedTuple

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
    return column.op("IN")(sa.literal_column(f"({id_list(ids)})"))


def database_error(connection: sa.Connection, sql: str, error: Exception, cursor: Any) -> Exception:
    """``error`` from the DBAPI as SQLAlchemy raises it (``sa.exc.DBAPIError``), after invalidating the
    connection if the error says it is gone, so the pool never hands it out again."""
    dialect = connection.dialect
    gone = dialect.is_disconnect(error, connection.connection, cursor)
    if gone:
        connection.invalidate(error)
    return sa.exc.DBAPIError.instance(
        sql, None, error, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
    )


class Baked:
    """A statement compiled to SQL text once per dialect and run on the DBAPI cursor, its rows read as plain
    tuples. Parameters are given by the names of the statement's bind parameters (those with a value in the
    statement, such as literals, keep it); ``ids`` (an :func:`id_list`, when the statement was built with
    :func:`in_given_ids`) replaces that marker.

    ``binary_rows``: on psycopg, rows come in PostgreSQL's binary format, so numbers are copied rather than parsed
    from text (a 100,000-point history is fetched in ~40% less time)."""

    def __init__(self, statement: sa.Executable, *, binary_rows: bool = False) -> None:
        self._statement = statement
        self._binary_rows = binary_rows
        #: (dialect, driver) -> (SQL text, parameters with the statement's values, names in order for a
        #: positional paramstyle else None)
        self._sql: dict[tuple[str, str], tuple[str, dict[str, Any], tuple[str, ...] | None]] = {}

    def _compiled(self, dialect: sa.Dialect) -> tuple[str, dict[str, Any], tuple[str, ...] | None]:
        found = self._sql.get((dialect.name, dialect.driver))
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            names = tuple(compiled.positiontup or ()) if compiled.positional else None
            found = self._sql[(dialect.name, dialect.driver)] = (str(compiled), compiled.params, names)
        return found

    def fetch(
        self, connection: sa.Connection, parameters: dict[str, Any] | None = None, ids: str | None = None
    ) -> list[tuple[Any, ...]]:
        sql, defaults, names = self._compiled(connection.dialect)
        if ids is not None:
            sql = sql.replace(_IDS_MARKER, ids)
        # Always some (maybe empty) parameters, as SQLAlchemy passes them: drivers with a ``%`` paramstyle then
        # read the ``%%`` the compiler wrote for a literal ``%``.
        values = {**defaults, **parameters} if parameters else defaults
        arguments = values if names is None else tuple(values[name] for name in names)
        binary = self._binary_rows and connection.dialect.driver == "psycopg"
        cursor = connection.connection.cursor(binary=True) if binary else connection.connection.cursor()
        return cursor_rows(connection, cursor, sql, arguments)


def cursor_rows(connection: sa.Connection, cursor: Any, sql: str, arguments: Any) -> list[tuple[Any, ...]]:
    """All rows of ``sql`` run on ``cursor`` (a DBAPI cursor of ``connection``'s), which is closed after; DBAPI
    errors are raised as SQLAlchemy raises them (:func:`database_error`)."""
    try:
        cursor.execute(sql, arguments)
        rows = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        raise database_error(connection, sql, error, cursor) from error
    finally:
        cursor.close()
    return rows if type(rows) is list else list(rows)  # PyMySQL's are a tuple


_IDS_MARKER = "__mltrail_ids__"


def in_given_ids(column: Any) -> sa.ColumnElement[bool]:
    """``column IN (...)`` in a :class:`Baked` statement, the list being the ``ids`` given to its ``fetch``."""
    return column.op("IN")(sa.literal_column(f"({_IDS_MARKER})"))


def id_list(ids: Iterable[int]) -> str:
    """Integers of our own tables (such as run or experiment ids) as the SQL text of a list's items."""
    return ",".join(map(str, map(int, ids)))


class _ByRuns:
    """A query over the rows of a list of runs, built by ``build(where)`` from the condition selecting them."""

    def __init__(self, build: Callable[[Callable[[Any], sa.ColumnElement[bool]]], sa.Select[Any]]) -> None:
        self._baked = Baked(build(in_given_ids))

    def fetch(self, connection: sa.Connection, ids: str) -> list[tuple[Any, ...]]:
        """The rows of the runs ``ids`` (an :func:`id_list`)."""
        return self._baked.fetch(connection, ids=ids)


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


#: The run with the bound ``run_uuid``.
_RUN_BY_UUID = Baked(sa.select(*RUN_COLUMNS).where(t.runs.c.run_uuid == sa.bindparam("run_uuid")))


def find_run_row(connection: sa.Connection, run_id: str) -> tuple[Any, ...] | None:
    """The ``runs`` row (:data:`RUN_COLUMNS`) of the run ``run_id``, None if there is none."""
    rows = _RUN_BY_UUID.fetch(connection, {"run_uuid": str(run_id)})
    return rows[0] if rows else None


class RunRows(NamedTuple):
    """A run's data as plain values, for callers that turn it into something else than entities (the server's
    JSON): building the entities first would cost as much as reading the rows."""

    info: RunInfo
    #: latest metrics, by key, as made by ``load_run_rows``'s ``point``: ``(key, value, timestamp, step)`` tuples
    #: unless it was asked for entities
    metrics: list[Any]
    params: dict[str, str]
    tags: dict[str, str]
    dataset_inputs: list[DatasetInput]


def _tuple_of(*fields: Any) -> tuple[Any, ...]:
    return fields


def run_of(rows: RunRows) -> Run:
    """The entity of a run's :class:`RunRows`."""
    return _run(rows._replace(metrics=list(starmap(Metric, rows.metrics))))


def _run(rows: RunRows) -> Run:
    """The entity of :class:`RunRows` whose metrics are :class:`Metric` entities already."""
    data = RunData(rows.metrics, rows.params, rows.tags)
    return Run(rows.info, data, RunInputs(rows.dataset_inputs, []), RunOutputs([]))


def load_runs(connection: sa.Connection, rows: Sequence[Any], *, info_only: bool = False) -> list[Run]:
    """Runs for ``runs`` rows (selected with :data:`RUN_COLUMNS`), in the same order."""
    return [_run(run) for run in load_run_rows(connection, rows, info_only=info_only, point=Metric)]


def load_run_rows(
    connection: sa.Connection, rows: Sequence[Any], *, info_only: bool = False, point: Callable[..., Any] = _tuple_of
) -> list[RunRows]:
    """:class:`RunRows` for ``runs`` rows (selected with :data:`RUN_COLUMNS`), in the same order; with
    ``info_only``, all their lists are empty. Each latest metric is ``point(key, value, timestamp, step)``: a
    tuple, or directly the entity for callers that want entities (making both would cost twice)."""
    runs = {row[0]: RunRows(run_info(row), [], {}, {}, []) for row in rows}
    if not runs or info_only:
        return list(runs.values())
    ids = id_list(runs)
    _collect({pk: run.params for pk, run in runs.items()}, _PARAMS.fetch(connection, ids))
    _collect({pk: run.tags for pk, run in runs.items()}, _TAGS.fetch(connection, ids))
    metrics = {pk: run.metrics for pk, run in runs.items()}
    decode, finite = t.decode_value, t.FINITE
    for run_pk, key, value, value_class, timestamp, step in _LATEST_METRICS.fetch(connection, ids):
        value = value if value_class == finite else decode(value, value_class)
        metrics[run_pk].append(point(key, value, timestamp, step))
    _load_inputs(connection, runs, ids)
    return list(runs.values())


def _collect(values: dict[int, dict[str, str]], rows: list[tuple[Any, ...]]) -> None:
    """Put the ``key: value`` of each ``(run_pk, key, value)`` row in its run's dict."""
    for run_pk, key, value in rows:
        values[run_pk][key] = value


def _load_inputs(connection: sa.Connection, runs: dict[int, RunRows], ids: str) -> None:
    inputs = _INPUTS.fetch(connection, ids)
    if not inputs:
        return
    input_tags: dict[tuple[int, int], list[InputTag]] = defaultdict(list)
    for run_pk, dataset_id, key, value in _INPUT_TAGS.fetch(connection, ids):
        input_tags[(run_pk, dataset_id)].append(InputTag(key, value))
    for run_pk, dataset_id, name, digest, source_type, source, schema, profile in inputs:
        dataset = Dataset(name, digest, source_type, source, schema, profile)
        runs[run_pk].dataset_inputs.append(DatasetInput(dataset, tuple(input_tags.get((run_pk, dataset_id), ()))))


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
