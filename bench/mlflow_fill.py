"""Completing MLflow's full-size SQLite databases (``sql`` and ``ui`` suites) with the rows its client would write.

MLflow's client writes the suite's data set at 0.5–3 runs/s on this machine (several hours for 10,000 runs), so
its cache database is built in two steps: ``workloads/sql_populate.py`` writes the first runs and the first part
of the long history through MLflow's own client (timed, kept as the one-time population figures), then
:func:`complete` inserts the remaining runs and points with SQL, row for row what that client writes for them
(the same tables, columns and values: ``runs``, ``tags`` with ``mlflow.runName``, ``params``, ``metrics``,
``latest_metrics``). Only the generated run ids and names differ. The query workload then checks every result
count against the generator, as for any cache.
"""

from __future__ import annotations

import sqlite3
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "workloads"))
import _common as c  # the workloads' data generator

PARAMS, TAGS, METRICS, STEPS = 20, 5, 20, 100


def complete(database: Path, runs: int, history_points: int) -> None:
    """Give experiment ``bench`` its runs ``0..runs-1`` and the ``bench-history`` run ``history_points`` points,
    writing only what the client did not (an unfinished run of an interrupted population is removed first)."""
    with closing(sqlite3.connect(database)) as connection, connection:
        _remove_unfinished(connection)
        _complete_runs(connection, runs)
        _complete_history(connection, history_points)


def _experiment(connection: sqlite3.Connection, name: str) -> tuple[int, str]:
    return connection.execute(
        "SELECT experiment_id, artifact_location FROM experiments WHERE name = ?", (name,)
    ).fetchone()


def _remove_unfinished(connection: sqlite3.Connection) -> None:
    experiment_id, _ = _experiment(connection, "bench")
    query = (
        "SELECT run_uuid FROM runs WHERE experiment_id = ? AND (status != 'FINISHED' OR lifecycle_stage != 'active')"
    )
    unfinished = [row[0] for row in connection.execute(query, (experiment_id,))]
    for table in ("metrics", "latest_metrics", "params", "tags", "runs"):
        connection.executemany(f"DELETE FROM {table} WHERE run_uuid = ?", [(run_id,) for run_id in unfinished])


def _write_run(
    connection: sqlite3.Connection,
    experiment: tuple[int, str],
    index: int,
    params: list[tuple[str, str]],
    tags: list[tuple[str, str]],
    metrics: list[tuple[str, float, int, int]],
) -> None:
    """One finished run as MLflow's client leaves it: ``create_run(start_time=BASE + index)``, one or more
    ``log_batch`` calls with these params, tags and metrics ``(key, value, timestamp, step)``, ``set_terminated``."""
    experiment_id, artifact_location = experiment
    run_id, name = uuid.uuid4().hex, f"bench-{index}"
    connection.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,"
        " end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time)"
        " VALUES (?, ?, 'UNKNOWN', '', '', 'unknown', 'FINISHED', ?, ?, '', 'active', ?, ?, NULL)",
        (
            run_id,
            name,
            c.BASE_TIMESTAMP + index,
            int(time.time() * 1000),
            f"{artifact_location}/{run_id}/artifacts",
            experiment_id,
        ),
    )
    rows = [(key, value, run_id) for key, value in (("mlflow.runName", name), *tags)]
    connection.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", rows)
    connection.executemany(
        "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", [(key, value, run_id) for key, value in params]
    )
    connection.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
        [(key, value, ts, run_id, step) for key, value, ts, step in metrics],
    )
    latest: dict[str, tuple[int, int, float]] = {}  # key -> greatest (step, timestamp, value)
    for key, value, ts, step in metrics:
        latest[key] = max(latest.get(key, (step, ts, value)), (step, ts, value))
    connection.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
        [(key, value, ts, step, run_id) for key, (step, ts, value) in latest.items()],
    )


def _missing_indices(connection: sqlite3.Connection, experiment_id: int, runs: int) -> list[int]:
    query = "SELECT start_time FROM runs WHERE experiment_id = ?"
    present = {row[0] - c.BASE_TIMESTAMP for row in connection.execute(query, (experiment_id,))}
    return [i for i in range(runs) if i not in present]


def _complete_runs(connection: sqlite3.Connection, runs: int) -> None:
    experiment = _experiment(connection, "bench")
    for i in _missing_indices(connection, experiment[0], runs):
        _write_run(
            connection,
            experiment,
            i,
            [(f"p{k}", c.param_value(i, k)) for k in range(PARAMS)],
            [(f"t{k}", c.tag_value(i, k)) for k in range(TAGS)],
            [(f"m{k}", c.metric_value(i, k, s), c.BASE_TIMESTAMP + s, s) for k in range(METRICS) for s in range(STEPS)],
        )


def complete_ui_runs(database: Path, experiment_name: str, runs: int) -> None:
    """Give the ``ui`` suite's runs experiment its runs ``0..runs-1`` (20 params, 20 metrics at step 0, as
    ``workloads/ui_browser.py populate`` logs them)."""
    with closing(sqlite3.connect(database)) as connection, connection:
        experiment = _experiment(connection, experiment_name)
        for i in _missing_indices(connection, experiment[0], runs):
            params = [(f"p{k}", c.param_value(i, k)) for k in range(PARAMS)]
            metrics = [(f"m{k}", c.metric_value(i, k, 0), c.BASE_TIMESTAMP + i, 0) for k in range(METRICS)]
            _write_run(connection, experiment, i, params, [], metrics)


def _complete_history(connection: sqlite3.Connection, points: int) -> None:
    (run_id,) = connection.execute(
        "SELECT run_uuid FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'active'",
        (_experiment(connection, "bench-history")[0],),
    ).fetchone()
    (stored,) = connection.execute("SELECT count(*) FROM metrics WHERE run_uuid = ?", (run_id,)).fetchone()
    connection.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES ('h', ?, ?, ?, ?, 0)",
        [((s % 977) / 977, c.BASE_TIMESTAMP + s, run_id, s) for s in range(stored, points)],
    )
    last = points - 1
    connection.execute(
        "UPDATE latest_metrics SET value = ?, timestamp = ?, step = ? WHERE run_uuid = ? AND key = 'h'",
        ((last % 977) / 977, c.BASE_TIMESTAMP + last, last, run_id),
    )
