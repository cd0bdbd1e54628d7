"""8 processes writing into one folder at once: nothing lost, nothing corrupted, params stay immutable."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mltrail.entities import Metric, Param, RunStatus, RunTag
from mltrail.errors import MltrailException
from mltrail.store.file import FileStore

WORKERS = 8
_ctx = multiprocessing.get_context("fork")


def _in_parallel(target: Callable[..., Any], *args: Any) -> list[Any]:
    """Run ``target(index, barrier, *args)`` in WORKERS processes started together; return their results."""
    barrier = _ctx.Barrier(WORKERS)
    results = _ctx.Queue()

    def run(index: int) -> None:
        try:
            results.put((index, "ok", target(index, barrier, *args)))
        except MltrailException as exc:
            results.put((index, "error", (exc.error_code, exc.message)))
        except BaseException as exc:
            results.put((index, "crash", repr(exc)))

    processes = [_ctx.Process(target=run, args=(i,)) for i in range(WORKERS)]
    for p in processes:
        p.start()
    collected = sorted(results.get(timeout=60) for _ in processes)
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [r for r in collected if r[1] == "crash"] == []
    return collected


def _log_a_lot(index: int, barrier: Any, root: str, experiment_id: str, shared_run: str) -> str:
    store = FileStore(root)  # each process has its own store object, as separate programs would
    own = store.create_run(experiment_id, start_time=index, run_name=f"worker-{index}").info.run_id
    barrier.wait()
    for step in range(50):
        store.log_batch(
            own,
            metrics=[Metric("loss", step / 10, step, step), Metric(f"m/{step % 3}", float(step), step, step)],
            params=[Param(f"p{step}", str(step))] if step % 5 == 0 else [],
            tags=[RunTag("progress", str(step))],
        )
        store.log_metric(shared_run, Metric("shared", float(index * 1000 + step), step, index * 1000 + step))
        store.log_param(shared_run, Param(f"from-{index}-{step % 4}", "same value"))
        store.set_tag(shared_run, RunTag(f"worker-{index}", str(step)))
    return own


def test_eight_processes_logging_into_one_experiment(store: FileStore, root: Path, experiment_id: str) -> None:
    shared = store.create_run(experiment_id, start_time=0, run_name="shared").info.run_id
    results = _in_parallel(_log_a_lot, str(root), experiment_id, shared)
    own_runs = [r[2] for r in results if r[1] == "ok"]
    assert len(own_runs) == WORKERS

    for run_id in own_runs:
        run = store.get_run(run_id)
        assert len(store.get_metric_history(run_id, "loss")) == 50
        assert sum(len(store.get_metric_history(run_id, f"m/{k}")) for k in range(3)) == 50
        assert run.data.metrics["loss"] == 4.9
        assert run.data.params == {f"p{s}": str(s) for s in range(0, 50, 5)}
        assert run.data.tags["progress"] == "49"

    shared_run = store.get_run(shared)
    history = store.get_metric_history(shared, "shared")
    assert sorted(m.step for m in history) == sorted(i * 1000 + s for i in range(WORKERS) for s in range(50))
    metric_file = root / experiment_id / shared / "metrics" / "shared"
    lines = metric_file.read_text().split("\n")
    assert lines[-1] == "" and all(len(line.split(" ")) == 3 for line in lines[:-1])
    assert shared_run.data.metrics["shared"] == float((WORKERS - 1) * 1000 + 49)
    assert len(shared_run.data.params) == WORKERS * 4
    assert {shared_run.data.tags[f"worker-{i}"] for i in range(WORKERS)} == {"49"}
    assert len(store.search_runs([experiment_id])) == WORKERS + 1
    assert [p for p in root.rglob("*") if "~tmp" in p.name] == []


def _race_param(index: int, barrier: Any, root: str, run_id: str) -> str:
    store = FileStore(root)
    barrier.wait()
    store.log_param(run_id, Param("contested", f"value-{index}"))
    return f"value-{index}"


def test_only_one_of_racing_different_param_values_wins(store: FileStore, root: Path, run_id: str) -> None:
    for _ in range(3):
        results = _in_parallel(_race_param, str(root), run_id)
        winners = [r[2] for r in results if r[1] == "ok"]
        losers = [r[2] for r in results if r[1] == "error"]
        stored = store.get_run(run_id).data.params["contested"]
        if winners:  # first round: exactly one writer created the param
            assert winners == [stored]
        assert len(losers) == WORKERS - len(winners)
        for code, message in losers:
            assert code == "INVALID_PARAMETER_VALUE"
            assert f"already logged with value='{stored}'" in message


def _create_experiments(index: int, barrier: Any, root: str) -> list[str]:
    store = FileStore(root)
    barrier.wait()
    ids = [store.create_experiment(f"exp-{index}-{i}") for i in range(5)]
    try:
        ids.append(store.create_experiment("contested name"))
    except MltrailException as exc:
        assert exc.error_code == "RESOURCE_ALREADY_EXISTS"
    return ids


def test_concurrent_experiment_creation(store: FileStore, root: Path) -> None:
    results = _in_parallel(_create_experiments, str(root))
    ids = [experiment_id for r in results for experiment_id in r[2]]
    assert len(ids) == len(set(ids)) == WORKERS * 5 + 1
    names = [e.name for e in store.search_experiments()]
    assert names.count("contested name") == 1
    assert len(names) == WORKERS * 5 + 2  # plus Default, created once
    assert len(list(root.glob("*/meta.yaml"))) == WORKERS * 5 + 2


def _update_meta(index: int, barrier: Any, root: str, run_id: str) -> int:
    store = FileStore(root)
    barrier.wait()
    reads = 0
    for i in range(30):
        if index % 2:
            store.update_run_info(run_id, RunStatus.RUNNING if i % 2 else RunStatus.FINISHED, end_time=i)
            store.set_tag(run_id, RunTag("mlflow.runName", f"name-{index}-{i}"))
        else:
            run = store.get_run(run_id)  # never sees a half-written meta.yaml
            assert run.info.run_name.startswith(("the-run", "name-"))
            reads += 1
    return reads


def test_meta_yaml_rewrites_are_atomic(store: FileStore, run_id: str, root: Path) -> None:
    results = _in_parallel(_update_meta, str(root), run_id)
    assert [r[1] for r in results] == ["ok"] * WORKERS
    run = store.get_run(run_id)
    assert run.info.run_name == run.data.tags["mlflow.runName"]
    assert run.info.run_name.startswith("name-")
    assert run.info.end_time == 29
