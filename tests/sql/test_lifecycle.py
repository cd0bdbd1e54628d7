"""Lifecycle rules, MLflow's error codes and all-or-nothing writes on every SQL dialect."""

from __future__ import annotations

import pytest

from mltrail.entities import ExperimentTag, LifecycleStage, Metric, Param, RunStatus, RunTag, ViewType
from mltrail.errors import MltrailException
from mltrail.store.sql import SqlStore

from .helpers import unique


def _error(call: object, *args: object, **kwargs: object) -> MltrailException:
    with pytest.raises(MltrailException) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value


def test_experiment_lifecycle(store: SqlStore, tmp_path: object) -> None:
    name = unique("life")
    experiment_id = store.create_experiment(name, tags=[ExperimentTag("k", "v")])
    experiment = store.get_experiment(experiment_id)
    assert experiment.name == name and experiment.tags == {"k": "v"}
    assert experiment.artifact_location == f"{store.artifact_root_uri}/{experiment_id}"
    assert _error(store.create_experiment, name).error_code == "RESOURCE_ALREADY_EXISTS"
    kept = store.create_run(experiment_id).info.run_id
    deleted_before = store.create_run(experiment_id).info.run_id
    store.delete_run(deleted_before)
    store.delete_experiment(experiment_id)
    assert store.get_run(kept).info.lifecycle_stage == LifecycleStage.DELETED
    assert _error(store.create_experiment, name).error_code == "RESOURCE_ALREADY_EXISTS"  # name stays reserved
    assert _error(store.rename_experiment, experiment_id, unique("x")).error_code == "INVALID_STATE"
    assert _error(store.delete_experiment, experiment_id).error_code == "RESOURCE_DOES_NOT_EXIST"
    error = _error(store.create_run, experiment_id)
    assert error.error_code == "INVALID_PARAMETER_VALUE" and "must be in the 'active' state" in error.message
    assert store.get_experiment_by_name(name).lifecycle_stage == LifecycleStage.DELETED
    store.restore_experiment(experiment_id)
    assert store.get_run(kept).info.lifecycle_stage == LifecycleStage.ACTIVE
    assert store.get_run(deleted_before).info.lifecycle_stage == LifecycleStage.DELETED  # deleted on its own
    assert _error(store.restore_experiment, experiment_id).error_code == "RESOURCE_DOES_NOT_EXIST"
    new_name = unique("renamed")
    store.rename_experiment(experiment_id, new_name)
    assert store.get_experiment(experiment_id).name == new_name
    assert store.get_experiment_by_name(name) is None
    assert _error(store.rename_experiment, experiment_id, store.get_experiment("0").name).error_code == (
        "RESOURCE_ALREADY_EXISTS"
    )
    store.delete_experiment_tag(experiment_id, "k")
    assert store.get_experiment(experiment_id).tags == {}
    assert _error(store.get_experiment, "123456789012").error_code == "RESOURCE_DOES_NOT_EXIST"
    assert _error(store.get_experiment, "abc").error_code == "INVALID_PARAMETER_VALUE"


def test_default_experiment_exists_with_id_0(store: SqlStore) -> None:
    default = store.get_experiment("0")
    assert default.name == "Default"
    assert default.artifact_location.endswith("/0")
    assert any(e.experiment_id == "0" for e in store.search_experiments(ViewType.ALL, max_results=50000))


def test_run_lifecycle_and_writes_to_deleted_runs(store: SqlStore, new_experiment: str) -> None:
    run = store.create_run(new_experiment, user_id="alice", start_time=42, tags=[RunTag("t", "1")])
    run_id = run.info.run_id
    assert len(run_id) == 32 and run.info.status == RunStatus.RUNNING and run.info.start_time == 42
    assert run.info.artifact_uri.endswith(f"/{new_experiment}/{run_id}/artifacts")
    assert run.data.tags["mlflow.runName"] == run.info.run_name
    store.delete_run(run_id)
    store.delete_run(run_id)  # twice is fine
    for write in (
        lambda: store.log_metric(run_id, Metric("m", 1.0, 1, 0)),
        lambda: store.log_param(run_id, Param("p", "v")),
        lambda: store.set_tag(run_id, RunTag("t", "v")),
        lambda: store.log_batch(run_id, params=[Param("p", "v")]),
        lambda: store.update_run_info(run_id, RunStatus.FINISHED),
    ):
        error = _error(write)
        assert error.error_code == "INVALID_PARAMETER_VALUE"
        assert error.message == f"The run {run_id} must be in the 'active' state. Current state is deleted."
    store.restore_run(run_id)
    store.log_param(run_id, Param("p", "v"))
    assert _error(store.get_run, "0" * 32).message == f"Run with id={'0' * 32} not found"


def test_run_name_and_tag_stay_in_sync(store: SqlStore, new_experiment: str) -> None:
    run = store.create_run(new_experiment, tags=[RunTag("mlflow.runName", "from-tag")])
    assert run.info.run_name == "from-tag"
    run_id = run.info.run_id
    store.set_tag(run_id, RunTag("mlflow.runName", "by-tag"))
    assert store.get_run(run_id).info.run_name == "by-tag"
    info = store.update_run_info(run_id, run_name="by-update", run_status="FINISHED", end_time=99)
    assert (info.run_name, info.status, info.end_time) == ("by-update", RunStatus.FINISHED, 99)
    assert store.get_run(run_id).data.tags["mlflow.runName"] == "by-update"
    error = _error(store.create_run, new_experiment, run_name="a", tags=[RunTag("mlflow.runName", "b")])
    assert error.error_code == "INVALID_PARAMETER_VALUE"


def test_params_are_immutable_and_batches_are_all_or_nothing(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    store.log_param(run_id, Param("p", "v1"))
    store.log_param(run_id, Param("p", "v1"))  # same value again is fine
    error = _error(store.log_param, run_id, Param("p", "v2"))
    assert error.message == (
        "Changing param values is not allowed. Param with key='p' was already logged with value='v1' "
        f"for run ID='{run_id}'. Attempted logging new value 'v2'."
    )
    # A batch whose param conflicts writes none of its metrics or tags.
    _error(
        store.log_batch,
        run_id,
        metrics=[Metric("m", 1.0, 1, 0)],
        params=[Param("new", "x"), Param("p", "v2")],
        tags=[RunTag("t", "x")],
    )
    # An invalid batch is refused before anything is written.
    _error(store.log_batch, run_id, metrics=[Metric("m", 1.0, 1, 0), Metric("bad/../key", 1.0, 1, 0)])
    run = store.get_run(run_id)
    assert run.data.params == {"p": "v1"} and run.data.metrics == {} and "t" not in run.data.tags
    assert store.get_metric_history(run_id, "m") == []
    store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)] * 3, params=[Param("p", "v1")])
    assert len(store.get_metric_history(run_id, "m")) == 1


def test_delete_tag(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    store.set_tag(run_id, RunTag("t", "v"))
    store.delete_tag(run_id, "t")
    assert "t" not in store.get_run(run_id).data.tags
    error = _error(store.delete_tag, run_id, "t")
    assert error.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert error.message == f"No tag with name: t in run with id {run_id}"


def test_metric_history_pages(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    store.log_batch(run_id, metrics=[Metric("m", float(s), 1000 - s, s) for s in range(10)])
    first = store.get_metric_history(run_id, "m", max_results=4)
    assert [m.step for m in first] == [9, 8, 7, 6]  # ordered by timestamp, then step
    second = store.get_metric_history(run_id, "m", max_results=4, page_token=first.token)
    third = store.get_metric_history(run_id, "m", max_results=4, page_token=second.token)
    assert [m.step for m in [*second, *third]] == [5, 4, 3, 2, 1, 0] and third.token is None
    assert store.get_metric_history(run_id, "missing") == []
    assert _error(store.get_metric_history, run_id, "m", max_results=0).error_code == "INVALID_PARAMETER_VALUE"
