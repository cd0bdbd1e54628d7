"""The fluent API end to end on a real directory store and a real SQLite database."""

from __future__ import annotations

import math
import threading

import pytest

import mltrail
from mltrail.client.client import DIRECT_BATCH_ENTITIES
from mltrail.entities import Dataset, LifecycleStage, Metric, Param, RunStatus, RunTag
from mltrail.errors import MltrailException


def test_log_and_read_back(tracking_uri: str) -> None:
    with mltrail.start_run(run_name="first", description="a note", tags={"team": "vision"}) as run:
        mltrail.log_param("lr", 0.01)
        mltrail.log_params({"layers": 3, "act": "relu"})
        mltrail.set_tag("stage", "dev")
        mltrail.set_tags({"a": 1})
        for step in range(300):
            mltrail.log_metric("loss", 1.0 / (step + 1), step=step)
        mltrail.log_metrics({"acc": 0.5, "f1": math.nan}, step=7)
        mltrail.log_input(Dataset("train", "abc123", "local", '{"uri": "data.csv"}'), context="training")
        assert mltrail.active_run() is run
    run_id = run.info.run_id
    stored = mltrail.get_run(run_id)
    assert stored.info.status == RunStatus.FINISHED and stored.info.end_time is not None
    assert stored.info.run_name == "first"
    assert stored.data.params == {"lr": "0.01", "layers": "3", "act": "relu"}
    assert stored.data.metrics["loss"] == pytest.approx(1 / 300)
    assert stored.data.metrics["acc"] == 0.5 and math.isnan(stored.data.metrics["f1"])
    tags = stored.data.tags
    assert tags["team"] == "vision" and tags["stage"] == "dev" and tags["a"] == "1"
    assert tags["mlflow.note.content"] == "a note"
    assert tags["mlflow.runName"] == "first"
    assert tags["mlflow.source.type"] == "LOCAL" and tags["mlflow.user"] and tags["mlflow.source.name"]
    history = mltrail.MlflowClient().get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(300))
    assert [d.dataset.name for d in stored.inputs.dataset_inputs] == ["train"]
    assert ("mlflow.data.context", "training") in [(t.key, t.value) for t in stored.inputs.dataset_inputs[0].tags]
    assert mltrail.active_run() is None
    assert mltrail.last_active_run().info.run_id == run_id


def test_logging_without_a_run_starts_one_in_the_default_experiment(tracking_uri: str) -> None:
    mltrail.log_metric("m", 1.0)
    run = mltrail.active_run()
    assert run is not None and run.info.experiment_id == "0"
    mltrail.end_run()
    assert mltrail.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_bad_input_raises_at_the_call(tracking_uri: str) -> None:
    with mltrail.start_run():
        with pytest.raises(MltrailException) as caught:
            mltrail.log_metric("../escape", 1.0)
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
        with pytest.raises(MltrailException):
            mltrail.log_metric("loss", "not a number")  # type: ignore[arg-type]
        with pytest.raises(MltrailException):
            mltrail.log_metric("loss", 1.0, step=1.5)  # type: ignore[arg-type]
        mltrail.log_param("p", "1")
        with pytest.raises(MltrailException, match="Changing param values is not allowed"):
            mltrail.log_param("p", "2")
    with pytest.raises(MltrailException) as caught:
        mltrail.MlflowClient().log_metric("0" * 32, "m", 1.0)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_synchronous_logging_surfaces_store_errors_at_the_call(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = mltrail.MlflowClient()
    run = client.create_run("0")
    client.log_param(run.info.run_id, "p", "1", synchronous=True)
    other = mltrail.MlflowClient()  # a second client does not know what the first enqueued
    with pytest.raises(MltrailException, match="Changing param values"):
        other.log_param(run.info.run_id, "p", "2", synchronous=True)
    monkeypatch.setenv("MLTRAIL_SYNCHRONOUS_LOGGING", "true")
    with mltrail.start_run() as active:
        mltrail.log_metric("m", 3.0)
        # read the store directly (no waiting for a queue): the value is already there
        assert mltrail.MlflowClient().store.get_run(active.info.run_id).data.metrics == {"m": 3.0}


def test_a_store_sized_log_batch_is_written_at_the_call(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = mltrail.MlflowClient()
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "p", "1", synchronous=True)
    other = mltrail.MlflowClient()  # knows nothing of "p": only the store can refuse the new value
    writers = []  # the thread of each store write
    store_log_batch = other.store.log_batch

    def log_batch(*args: object, **kwargs: object) -> None:
        writers.append(threading.current_thread().name)
        store_log_batch(*args, **kwargs)

    monkeypatch.setattr(other.store, "log_batch", log_batch)
    big = [Metric("m", float(i), 1, i) for i in range(DIRECT_BATCH_ENTITIES)]
    with pytest.raises(MltrailException, match="Changing param values"):
        other.log_batch(run_id, metrics=big, params=[Param("p", "2")])
    other.log_batch(run_id, metrics=big[:10], params=[Param("q", "1")])  # small: queued, stored by the worker
    other.flush()
    assert set(writers) == {"mltrail-logger"}  # the big batch was refused before any write; the small one queued
    assert other.store.get_run(run_id).data.params == {"p": "1", "q": "1"}


def test_nested_runs_and_second_run_refused(tracking_uri: str) -> None:
    with mltrail.start_run() as parent:
        with pytest.raises(MltrailException, match="already active"):
            mltrail.start_run()
        with mltrail.start_run(nested=True) as child:
            assert mltrail.active_run() is child
            with mltrail.start_run(nested=True) as grandchild:
                pass
        assert mltrail.active_run() is parent
    tags = mltrail.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert mltrail.get_run(grandchild.info.run_id).data.tags["mlflow.parentRunId"] == child.info.run_id
    assert "mlflow.parentRunId" not in mltrail.get_run(parent.info.run_id).data.tags


def test_context_manager_statuses(tracking_uri: str) -> None:
    with mltrail.start_run() as ok:
        pass
    with pytest.raises(ValueError), mltrail.start_run() as failed:
        raise ValueError("boom")
    with pytest.raises(KeyboardInterrupt), mltrail.start_run() as killed:
        raise KeyboardInterrupt
    with pytest.raises(RuntimeError), mltrail.start_run() as outer:
        mltrail.start_run(nested=True)  # left open: ended with its parent
        raise RuntimeError
    statuses = {r.info.run_id: r.info.status for r in mltrail.search_runs(output_format="list")}
    assert statuses[ok.info.run_id] == RunStatus.FINISHED
    assert statuses[failed.info.run_id] == RunStatus.FAILED
    assert statuses[killed.info.run_id] == RunStatus.KILLED
    assert statuses[outer.info.run_id] == RunStatus.FAILED
    assert list(statuses.values()).count(RunStatus.FAILED) == 3
    assert mltrail.active_run() is None


def test_resume_a_finished_run(tracking_uri: str) -> None:
    with mltrail.start_run() as run:
        mltrail.log_metric("m", 1.0, step=0)
    with mltrail.start_run(run_id=run.info.run_id, tags={"resumed": "yes"}) as resumed:
        assert resumed.info.run_id == run.info.run_id
        assert mltrail.get_run(run.info.run_id).info.status == RunStatus.RUNNING
        mltrail.log_metric("m", 2.0, step=1)
    stored = mltrail.get_run(run.info.run_id)
    assert stored.info.status == RunStatus.FINISHED and stored.data.tags["resumed"] == "yes"
    assert [m.value for m in mltrail.MlflowClient().get_metric_history(run.info.run_id, "m")] == [1.0, 2.0]


def test_resume_from_environment(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = mltrail.MlflowClient().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    with mltrail.start_run() as active:
        assert active.info.run_id == run.info.run_id


def test_set_experiment(tracking_uri: str) -> None:
    experiment = mltrail.set_experiment("vision")
    assert mltrail.set_experiment("vision").experiment_id == experiment.experiment_id  # not created twice
    with mltrail.start_run() as run:
        pass
    assert run.info.experiment_id == experiment.experiment_id
    assert mltrail.set_experiment(experiment_id=experiment.experiment_id).name == "vision"
    mltrail.delete_experiment(experiment.experiment_id)
    with pytest.raises(MltrailException, match="Cannot set a deleted experiment"):
        mltrail.set_experiment("vision")
    with pytest.raises(MltrailException):
        mltrail.set_experiment("a", experiment_id="1")
    with pytest.raises(MltrailException) as caught:
        mltrail.set_experiment(experiment_id="424242")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_experiment_from_environment(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    with mltrail.start_run() as run:
        pass
    assert mltrail.get_experiment_by_name("from-env").experiment_id == run.info.experiment_id


def test_search_runs_as_dataframe_and_list(tracking_uri: str) -> None:
    mltrail.set_experiment("search")
    for lr in (0.1, 0.2, 0.3):
        with mltrail.start_run():
            mltrail.log_param("lr", lr)
            mltrail.log_metric("loss", lr * 10)
    frame = mltrail.search_runs(filter_string="metrics.loss > 1.5", order_by=["metrics.loss ASC"])
    assert list(frame.columns[:6]) == ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    assert list(frame["params.lr"]) == ["0.2", "0.3"]
    assert list(frame["metrics.loss"]) == [2.0, 3.0]
    assert str(frame["start_time"].dt.tz) == "UTC"
    runs = mltrail.search_runs(output_format="list", max_results=2)
    assert len(runs) == 2 and all(r.info.status == RunStatus.FINISHED for r in runs)
    assert len(mltrail.search_runs(search_all_experiments=True, output_format="list")) == 3
    assert mltrail.search_runs(experiment_names=["search"]).shape[0] == 3


def test_delete_run_and_experiments(tracking_uri: str) -> None:
    experiment_id = mltrail.create_experiment("to-delete", tags={"k": "v"})
    assert mltrail.get_experiment(experiment_id).tags == {"k": "v"}
    with mltrail.start_run(experiment_id=experiment_id) as run:
        pass
    mltrail.delete_run(run.info.run_id)
    assert mltrail.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    with pytest.raises(MltrailException, match="deleted"):
        mltrail.start_run(run_id=run.info.run_id)
    names = [e.name for e in mltrail.search_experiments()]
    assert "to-delete" in names


def test_active_run_stack_is_per_thread(tracking_uri: str) -> None:
    seen: list[object] = []
    with mltrail.start_run() as run:
        thread = threading.Thread(target=lambda: seen.append(mltrail.active_run()))
        thread.start()
        thread.join()
        assert mltrail.active_run() is run
    assert seen == [None]


def test_tracking_uri_change_uses_the_new_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    first, second = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    for root in (first, second):
        mltrail.set_tracking_uri(str(root / "mlruns"))
        mltrail.set_experiment(f"exp-{root.name}")
        with mltrail.start_run():
            mltrail.log_metric("m", 1.0)
    mltrail.set_tracking_uri(str(first / "mlruns"))
    assert [e.name for e in mltrail.search_experiments() if e.name.startswith("exp-")] == [f"exp-{first.name}"]


@pytest.mark.parametrize("synchronous", [True, False])
def test_client_log_batch_of_any_size(tracking_uri: str, synchronous: bool) -> None:
    client = mltrail.MlflowClient()
    run_id = client.create_run("0").info.run_id
    metrics = [Metric("m", float(i), 1000 + i, i) for i in range(2500)]
    params = [Param(f"p{i}", str(i)) for i in range(150)]
    tags = [RunTag(f"t{i}", "v") for i in range(120)] + [RunTag("mlflow.runName", "renamed")]
    client.log_batch(run_id, metrics, params, tags, synchronous=synchronous)
    run = client.get_run(run_id)
    assert len(run.data.params) == 150 and run.info.run_name == "renamed"
    assert sum(k.startswith("t") for k in run.data.tags) == 120
    assert [m.step for m in client.get_metric_history(run_id, "m")] == list(range(2500))


def test_numpy_scalars_are_stored_as_plain_numbers(tracking_uri: str) -> None:
    import numpy as np

    with mltrail.start_run() as run:
        mltrail.log_metric("m", np.float32(0.5), step=np.int64(3))
        mltrail.log_metric("m", np.int16(2), step=np.int32(4), timestamp=np.int64(1_700_000_000_000))
    history = mltrail.MlflowClient().get_metric_history(run.info.run_id, "m")
    points = sorted((m.step, m.value, m.timestamp == 1_700_000_000_000) for m in history)
    assert points == [(3, 0.5, False), (4, 2.0, True)]
    assert all(type(m.value) is float and type(m.step) is int for m in history)
