"""Schema creation and upgrades: Alembic revisions, concurrent first opens, out-of-date databases, the db CLI."""

from __future__ import annotations

import math
import multiprocessing
import random
import traceback
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from mltrail.cli import cli
from mltrail.errors import MltrailException
from mltrail.store.sql import SqlStore, chunks
from mltrail.store.sql import schema as t
from mltrail.store.sql.migrate import HEAD_REVISION, MIGRATIONS_DIR, VERSION_TABLE, upgrade
from mltrail.store.sql.points import series_of

from .helpers import engine_for


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def test_head_revision_constant_matches_the_scripts() -> None:
    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD_REVISION


def test_migrated_schema_matches_the_tables_the_queries_use(db_uri: str) -> None:
    SqlStore(db_uri)  # the session database is migrated on first open
    with engine_for(db_uri) as engine, engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, t.metadata) if VERSION_TABLE not in repr(d)]
    assert differences == []


def _open_store(uri: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    try:
        barrier.wait(timeout=60)
        SqlStore(uri).get_experiment("0")
    except BaseException:
        errors.put(traceback.format_exc())


def test_concurrent_first_opens_migrate_exactly_once(fresh_db_uri: str) -> None:
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(8), context.Queue()
    processes = [context.Process(target=_open_store, args=(fresh_db_uri, barrier, errors)) for _ in range(8)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == [] and all(p.exitcode == 0 for p in processes), failures
    with engine_for(fresh_db_uri) as engine, engine.connect() as connection:
        # A second migration would have failed (tables exist, Default inserted twice): one version row, one Default.
        assert connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [
            HEAD_REVISION
        ]
        assert connection.execute(sa.select(t.experiments.c.name)).scalars().all() == ["Default"]


def test_out_of_date_database_is_refused_until_db_upgrade(fresh_db_uri: str) -> None:
    with engine_for(fresh_db_uri) as engine:
        upgrade(engine, "0001")
    with pytest.raises(MltrailException) as info:
        SqlStore(fresh_db_uri)
    assert info.value.error_code == "INVALID_STATE"
    assert "found version 0001" in info.value.message
    assert "mltrail db upgrade" in info.value.message
    runner = CliRunner()
    current = runner.invoke(cli, ["db", "current", fresh_db_uri])
    assert current.exit_code == 0 and current.output.startswith("0001 ")
    upgraded = runner.invoke(cli, ["db", "upgrade", fresh_db_uri])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"from 0001 to revision {HEAD_REVISION}" in upgraded.output
    store = SqlStore(fresh_db_uri)
    assert store.get_experiment("0").name == "Default"
    assert runner.invoke(cli, ["db", "current", fresh_db_uri]).output.startswith(f"{HEAD_REVISION} (newest)")
    again = runner.invoke(cli, ["db", "upgrade", fresh_db_uri])
    assert again.exit_code == 0 and "already at the newest revision" in again.output


def test_database_with_foreign_tables_is_refused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with engine_for(uri) as engine, engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)"))
    with pytest.raises(MltrailException) as info:
        SqlStore(uri)
    assert info.value.error_code == "INVALID_STATE" and "did not create" in info.value.message


#: ``metrics`` as revisions 0001 to 0003 have it (a row per point); 0004 packs it into ``metric_chunks``.
_metrics = sa.table("metrics", *(sa.column(c) for c in ("run_pk", "key", "timestamp", "step", "value_class", "value")))
#: A stored point as ``(run_pk, key, timestamp, step, value_class, value.hex())``: the hex tells -0.0 from 0.0.
Point = tuple[int, str, int, int, int, str]
Series = tuple[int, str]


def _histories() -> dict[str, dict[str, list[tuple[int, int, float]]]]:
    """Per run and key, the ``(timestamp, step, value)`` points of a history, in no particular order."""
    odd = [(5, 0, math.nan), (5, 0, math.inf), (5, 0, -math.inf), (5, 0, -0.0), (5, 0, 1.5), (5, 1, -2.0)]
    odd += [(4, 9, 3.0), (6, 0, -1e308), (6, 0, 5e-324)]
    # Two points per timestamp, steps out of order: chunks of 1,000, 1,000 and 500 points.
    long = [(1_000 + i // 2, i * 7_919 % 2_500, i / 7) for i in range(2_500)]
    return {
        "run-a": {"loss": odd, "Loss": [(1, 1, 0.0)], "acc": long, "é/ü": [(3, 2, math.inf), (3, 2, 1.0)]},
        "run-b": {"loss": [(7, 0, math.nan), (8, -3, 2.5)]},
    }


def _create_run(connection: sa.Connection, run_uuid: str) -> int:
    values = {"run_uuid": run_uuid, "experiment_id": 0, "name": run_uuid, "user_id": "u", "status": "RUNNING"}
    values |= {"start_time": 0, "lifecycle_stage": "active", "artifact_uri": "file:///a"}
    runs = sa.table("runs", sa.column("id"), *(sa.column(c) for c in values))
    connection.execute(sa.insert(runs).values(values))
    return connection.execute(sa.select(runs.c.id).where(runs.c.run_uuid == run_uuid)).scalar_one()


def _metric_row(run_pk: int, key: str, timestamp: int, step: int, value: float) -> dict[str, object]:
    stored, value_class = t.encode_value(value)
    return {
        "run_pk": run_pk,
        "key": key,
        "timestamp": timestamp,
        "step": step,
        "value_class": value_class,
        "value": stored,
    }


def _database_at_0003_with_metrics(uri: str) -> list[Point]:
    """Migrate ``uri`` to 0003 and store :func:`_histories` in ``metrics`` (shuffled); return the rows as the
    database holds them (SQLite reads -0.0 back as 0.0)."""
    with engine_for(uri) as engine:
        upgrade(engine, "0003")
        with engine.begin() as connection:
            rows = []
            for run_uuid, keys in _histories().items():
                run_pk = _create_run(connection, run_uuid)
                rows += [_metric_row(run_pk, key, *point) for key, points in keys.items() for point in points]
            random.Random(4).shuffle(rows)
            connection.execute(sa.insert(_metrics), rows)
        return _stored_metrics(engine)


def _stored_metrics(engine: sa.Engine) -> list[Point]:
    """The rows of ``metrics`` in history order."""
    with engine.connect() as connection:
        rows = sorted(tuple(row) for row in connection.execute(sa.select(_metrics)))
    return [(*row[:5], row[5].hex()) for row in rows]


def _chunked_histories(engine: sa.Engine) -> tuple[dict[Series, list[Point]], dict[Series, list[int]]]:
    """Check every chunk's ranges against its points; return per history the points of its chunks in ``ts_to``
    order, and the chunks' sizes."""
    c = t.metric_chunks.c
    with engine.connect() as connection:
        rows = connection.execute(sa.select(t.metric_chunks).order_by(c.run_pk, c.key, c.ts_to)).all()
    points: dict[Series, list[Point]] = defaultdict(list)
    sizes: dict[Series, list[int]] = defaultdict(list)
    for row in rows:
        timestamps, steps, values = chunks.unpack(row.data)
        assert (row.points, row.ts_from, row.ts_to) == (len(values), timestamps[0], timestamps[-1])
        assert (row.step_from, row.step_to) == (min(steps), max(steps))
        for timestamp, step, value in zip(timestamps, steps, values, strict=True):
            stored, value_class = t.encode_value(value)
            points[row.run_pk, row.key].append((row.run_pk, row.key, timestamp, step, value_class, stored.hex()))
        sizes[row.run_pk, row.key].append(row.points)
    return points, sizes


def test_upgrade_to_0004_packs_each_history_into_chunks(fresh_db_uri: str) -> None:
    stored = _database_at_0003_with_metrics(fresh_db_uri)
    with engine_for(fresh_db_uri) as engine:
        upgrade(engine)
        points, sizes = _chunked_histories(engine)
        assert not sa.inspect(engine).has_table("metrics")
    expected: dict[Series, list[Point]] = defaultdict(list)
    for point in stored:
        expected[point[:2]].append(point)
    assert points == expected
    assert sorted(sizes.values()) == [[1], [2], [2], [9], [1_000, 1_000, 500]]


def test_downgrade_to_0003_restores_the_metrics_rows(fresh_db_uri: str) -> None:
    stored = _database_at_0003_with_metrics(fresh_db_uri)
    with engine_for(fresh_db_uri) as engine:
        upgrade(engine)
        chunked = _chunked_histories(engine)
        # A point held by two chunks: readers merge such chunks, and so must the downgrade.
        *series, value = stored[-1]
        duplicate = chunks.rows(series_of([(*series, float.fromhex(value))]))
        with engine.begin() as connection:
            connection.execute(sa.insert(t.metric_chunks), [dict(zip(chunks.COLUMNS, duplicate[0], strict=True))])
        with engine.connect() as connection:
            config = _alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
            connection.commit()
        assert _stored_metrics(engine) == stored
        assert not sa.inspect(engine).has_table("metric_chunks")
        with engine.connect() as connection:
            assert connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == "0003"
        upgrade(engine)  # again (the fixture's teardown opens a store, which needs the newest revision)
        assert _chunked_histories(engine) == chunked
