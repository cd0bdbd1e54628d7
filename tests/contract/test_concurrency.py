"""Threads sharing one store instance: nothing lost, nothing duplicated."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from mltrail.entities import Metric, Param, RunTag
from mltrail.store.base import TrackingStore

THREADS = 8
POINTS = 25


def test_threads_logging_into_runs_of_one_experiment(store: TrackingStore, experiment_id: str) -> None:
    shared = store.create_run(experiment_id, run_name="shared").info.run_id

    def work(worker: int) -> str:
        own = store.create_run(experiment_id, run_name=f"worker-{worker}").info.run_id
        for step in range(POINTS):
            store.log_metric(own, Metric("m", float(step), 1000 + step, step))
            store.log_metric(shared, Metric("shared", float(worker), 1000 + step, worker * 1000 + step))
        store.log_batch(
            own,
            metrics=[Metric("batched", float(i), 5000 + i, i) for i in range(50)],
            params=[Param(f"p{i}", str(i)) for i in range(10)],
            tags=[RunTag("worker", str(worker))],
        )
        store.log_param(shared, Param(f"from-{worker}", str(worker)))
        store.set_tag(shared, RunTag(f"tag-{worker}", str(worker)))
        store.log_batch(shared, metrics=[Metric(f"own-{worker}", 1.0, 1, 0)], params=[Param("common", "same")])
        return own

    with ThreadPoolExecutor(THREADS) as pool:
        own_runs = list(pool.map(work, range(THREADS)))

    assert len(set(own_runs)) == THREADS
    for worker, run_id in enumerate(own_runs):
        run = store.get_run(run_id)
        assert run.data.params == {f"p{i}": str(i) for i in range(10)}
        assert run.data.tags["worker"] == str(worker)
        assert run.data.metrics == {"m": float(POINTS - 1), "batched": 49.0}
        assert [m.step for m in store.get_metric_history(run_id, "m")] == list(range(POINTS))
        assert len(store.get_metric_history(run_id, "batched")) == 50

    data = store.get_run(shared).data
    assert data.params == {"common": "same"} | {f"from-{w}": str(w) for w in range(THREADS)}
    assert {k: v for k, v in data.tags.items() if k.startswith("tag-")} == {f"tag-{w}": str(w) for w in range(THREADS)}
    history = store.get_metric_history(shared, "shared")
    assert sorted(m.step for m in history) == sorted(w * 1000 + s for w in range(THREADS) for s in range(POINTS))
    assert data.metrics["shared"] == float(THREADS - 1)  # highest step wins
    assert {f"own-{w}" for w in range(THREADS)} <= data.metrics.keys()
    assert len(store.search_runs([experiment_id])) == THREADS + 1
