"""16 writer processes logging into one experiment at once: nothing lost, nothing doubled, no deadlock errors.

The writers share runs on purpose: they upsert the same ``latest_metrics`` rows and insert the same params, which
is where MySQL/MariaDB and PostgreSQL deadlock or serialize without care (MLflow issue #4353).
"""

from __future__ import annotations

import multiprocessing
import traceback

import sqlalchemy as sa

from mltrail.entities import Metric, Param, RunTag
from mltrail.store.sql import SqlStore
from mltrail.store.sql import schema as t

WRITERS = 16
SHARED_RUNS = 3
KEYS = 8
BATCHES = 4
STEPS_PER_BATCH = 5


def _writer(uri: str, experiment_id: str, shared: list[str], index: int, barrier: object, errors: object) -> None:
    try:
        store = SqlStore(uri)
        barrier.wait(timeout=60)  # type: ignore[attr-defined]
        own = store.create_run(experiment_id, run_name=f"own-{index}").info.run_id
        keys = [f"k{k}" for k in range(KEYS)]
        if index % 2:
            keys.reverse()  # different key orders in different writers
        for batch in range(BATCHES):
            steps = range(index * 1000 + batch * STEPS_PER_BATCH, index * 1000 + (batch + 1) * STEPS_PER_BATCH)
            points = [Metric(key, float(step), step, step) for step in steps for key in keys]
            for run_id in [own, *shared]:
                store.log_batch(
                    run_id, metrics=points, params=[Param("shared", "same")], tags=[RunTag("writer", str(index))]
                )
            store.log_metric(own, Metric("single", float(batch), batch, batch))
    except BaseException:
        errors.put(traceback.format_exc())  # type: ignore[attr-defined]


def test_sixteen_concurrent_writers(store: SqlStore, new_experiment: str, db_uri: str) -> None:
    shared = [store.create_run(new_experiment, run_name=f"shared-{i}").info.run_id for i in range(SHARED_RUNS)]
    store.close()  # no pooled connection crosses the fork
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(WRITERS), context.Queue()
    writers = [
        context.Process(target=_writer, args=(db_uri, new_experiment, shared, i, barrier, errors))
        for i in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=240)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == [] and all(w.exitcode == 0 for w in writers), failures[:3]

    runs = store.search_runs([new_experiment], max_results=100)
    assert len(runs) == WRITERS + SHARED_RUNS
    points_per_writer = BATCHES * STEPS_PER_BATCH
    last_step = (WRITERS - 1) * 1000 + points_per_writer - 1
    for run in runs:
        is_shared = run.info.run_name.startswith("shared")
        assert run.data.params == {"shared": "same"}
        history = store.get_metric_history(run.info.run_id, "k3")
        expected = points_per_writer * (WRITERS if is_shared else 1)
        assert len(history) == expected, (run.info.run_name, len(history))
        assert len({m.step for m in history}) == expected  # no point stored twice
        if is_shared:
            assert run.data.metrics["k3"] == float(last_step)
        else:
            writer = int(run.info.run_name.split("-")[1])
            assert run.data.metrics["k3"] == float(writer * 1000 + points_per_writer - 1)
            assert run.data.metrics["single"] == float(BATCHES - 1)
    c, r = t.metric_chunks, t.runs
    with store.engine.connect() as connection:
        total = connection.execute(
            sa.select(sa.func.sum(c.c.points))
            .select_from(c.join(r, r.c.id == c.c.run_pk))
            .where(r.c.experiment_id == int(new_experiment))
        ).scalar()
    assert total == (SHARED_RUNS + 1) * WRITERS * points_per_writer * KEYS + WRITERS * BATCHES
