"""Turning rows into entities, loading the data of many runs or experiments with one query per table.

Run ids of a page are written inline as integers, so a page of 50,000 runs is still one statement per table and
never hits a driver's bind-parameter limit (SQLite allows 32,766 parameters, PostgreSQL 65,535).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from mltrail.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    InputTag,
    Metric,
    Run,
    RunInfo,
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


def fetch_tuples(connection: sa.Connection, query: sa.Executable) -> list[tuple[Any, ...]]:
    """All rows of ``query`` as plain DBAPI tuples: no per-row Row objects, which cost more than the query for
    the tens of thousands of params, tags and metrics of a page of runs or a long metric history."""
    result = connection.execute(query)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _ids_in(column: Any, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """``column IN (1, 2, ...)`` with the ids written inline (they are integers from our own tables)."""
    return column.op("IN")(sa.literal_column("(" + ",".join(str(int(i)) for i in ids) + ")"))


def run_info(row: Any) -> RunInfo:
    return RunInfo(
        run_id=row.run_uuid,
        experiment_id=str(row.experiment_id),
        run_name=row.name,
        user_id=row.user_id,
        status=RunStatus(row.status),
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=row.lifecycle_stage,
    )


def load_runs(connection: sa.Connection, rows: Sequence[Any], *, info_only: bool = False) -> list[Run]:
    """Runs for ``runs`` rows (selected with :data:`RUN_COLUMNS`), in the same order."""
    runs = {row.id: Run(info=run_info(row)) for row in rows}
    if not runs or info_only:
        return list(runs.values())
    ids = list(runs)
    for table in (t.params, t.tags):
        target = "params" if table is t.params else "tags"
        query = sa.select(table.c.run_pk, table.c.key, table.c.value).where(_ids_in(table.c.run_pk, ids))
        for run_pk, key, value in fetch_tuples(connection, query):
            getattr(runs[run_pk].data, target)[key] = value
    lm = t.latest_metrics
    query = (
        sa.select(lm.c.run_pk, lm.c.key, lm.c.value, lm.c.value_class, lm.c.timestamp, lm.c.step)
        .where(_ids_in(lm.c.run_pk, ids))
        .order_by(lm.c.run_pk, lm.c.key)
    )
    for run_pk, key, value, value_class, timestamp, step in fetch_tuples(connection, query):
        runs[run_pk].data.latest_metrics.append(Metric(key, t.decode_value(value, value_class), timestamp, step))
    _load_inputs(connection, runs, ids)
    return list(runs.values())


def _load_inputs(connection: sa.Connection, runs: dict[int, Run], ids: list[int]) -> None:
    d = t.datasets
    inputs = connection.execute(
        sa.select(t.inputs.c.run_pk, d.c.id, d.c.name, d.c.digest, d.c.source_type, d.c.source, d.c.schema, d.c.profile)
        .select_from(t.inputs.join(d, d.c.id == t.inputs.c.dataset_id))
        .where(_ids_in(t.inputs.c.run_pk, ids))
        .order_by(t.inputs.c.run_pk, d.c.name, d.c.digest)
    ).all()
    if not inputs:
        return
    input_tags: dict[tuple[int, int], list[InputTag]] = defaultdict(list)
    it = t.input_tags
    for run_pk, dataset_id, key, value in connection.execute(
        sa.select(it.c.run_pk, it.c.dataset_id, it.c.key, it.c.value)
        .where(_ids_in(it.c.run_pk, ids))
        .order_by(it.c.key)
    ):
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
