"""Runs: create, get, update, delete/restore, lifecycle rules."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from mltrail.entities import (
    Dataset,
    DatasetInput,
    LifecycleStage,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import ErrorCode
from mltrail.store.base import TrackingStore

from .helpers import metric, new_experiment, raises, unique_name

RUN_NAME_TAG = "mlflow.runName"
MISSING_RUN = "0123456789abcdef0123456789abcdef"


def test_create_run_fields(store: TrackingStore, experiment_id: str) -> None:
    run = store.create_run(experiment_id, user_id="alice", start_time=1234, tags=[RunTag("k", "v")], run_name="my-run")
    info = run.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert (info.experiment_id, info.run_name, info.user_id) == (experiment_id, "my-run", "alice")
    assert (info.status, info.start_time, info.end_time) == (RunStatus.RUNNING, 1234, None)
    assert info.lifecycle_stage == LifecycleStage.ACTIVE.value
    artifact_location = store.get_experiment(experiment_id).artifact_location
    assert info.artifact_uri == f"{artifact_location}/{info.run_id}/artifacts"
    assert run.data.tags == {"k": "v", RUN_NAME_TAG: "my-run"}
    assert run.data.params == {} and run.data.latest_metrics == []

    fetched = store.get_run(info.run_id)
    assert fetched.info == info
    assert fetched.data.tags == run.data.tags


def test_create_run_defaults(store: TrackingStore, experiment_id: str) -> None:
    before = int(time.time() * 1000)
    run = store.create_run(experiment_id)
    after = int(time.time() * 1000)
    assert run.info.run_name
    assert run.data.tags[RUN_NAME_TAG] == run.info.run_name
    assert before <= run.info.start_time <= after
    assert store.get_run(run.info.run_id).info.run_name == run.info.run_name


def test_run_name_from_tag(store: TrackingStore, experiment_id: str) -> None:
    run = store.create_run(experiment_id, tags=[RunTag(RUN_NAME_TAG, "from-tag")])
    assert run.info.run_name == "from-tag"
    assert store.get_run(run.info.run_id).data.tags[RUN_NAME_TAG] == "from-tag"
    same = store.create_run(experiment_id, tags=[RunTag(RUN_NAME_TAG, "same")], run_name="same")
    assert same.info.run_name == "same"
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "mlflow.runName"):
        store.create_run(experiment_id, tags=[RunTag(RUN_NAME_TAG, "a")], run_name="b")


def test_get_missing_run(store: TrackingStore) -> None:
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST, f"Run with id={MISSING_RUN} not found"):
        store.get_run(MISSING_RUN)
    for action in (store.delete_run, store.restore_run):
        with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST):
            action(MISSING_RUN)


def test_create_run_in_missing_or_deleted_experiment(store: TrackingStore) -> None:
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST):
        store.create_run("987654321")
    experiment_id = new_experiment(store)
    store.delete_experiment(experiment_id)
    with raises(
        ErrorCode.INVALID_PARAMETER_VALUE,
        f"The experiment {experiment_id} must be in the 'active' state. Current state is deleted.",
    ):
        store.create_run(experiment_id)
    assert store.search_runs([experiment_id], run_view_type=ViewType.ALL) == []


def test_update_run_info_changes_only_given_fields(store: TrackingStore, run_id: str) -> None:
    info = store.update_run_info(run_id, run_status=RunStatus.FINISHED, end_time=5000)
    assert (info.status, info.end_time, info.run_name, info.start_time) == (RunStatus.FINISHED, 5000, "the-run", 1000)
    assert store.get_run(run_id).info == info

    renamed = store.update_run_info(run_id, run_name="renamed")
    assert (renamed.status, renamed.end_time, renamed.run_name) == (RunStatus.FINISHED, 5000, "renamed")
    run = store.get_run(run_id)
    assert run.info.run_name == "renamed" and run.data.tags[RUN_NAME_TAG] == "renamed"

    failed = store.update_run_info(run_id, run_status=RunStatus.FAILED)
    assert (failed.status, failed.end_time, failed.run_name) == (RunStatus.FAILED, 5000, "renamed")


def test_renamed_runs_are_found_by_their_new_name(store: TrackingStore, experiment_id: str, run_id: str) -> None:
    def found(name: str) -> list[str]:
        return [r.info.run_id for r in store.search_runs([experiment_id], f"attributes.run_name = '{name}'")]

    store.set_tag(run_id, RunTag(RUN_NAME_TAG, "via-tag"))
    assert store.get_run(run_id).info.run_name == "via-tag"
    assert (found("via-tag"), found("the-run")) == ([run_id], [])
    store.update_run_info(run_id, run_name="via-update")
    assert store.get_run(run_id).data.tags[RUN_NAME_TAG] == "via-update"
    assert (found("via-update"), found("via-tag")) == ([run_id], [])


def test_run_artifact_uri_follows_an_explicit_experiment_location(store: TrackingStore) -> None:
    experiment_id = store.create_experiment(unique_name(), artifact_location="s3://bucket/prefix")
    run_id = store.create_run(experiment_id).info.run_id
    assert store.get_run(run_id).info.artifact_uri == f"s3://bucket/prefix/{run_id}/artifacts"


def test_delete_and_restore_run(store: TrackingStore, experiment_id: str, run_id: str) -> None:
    store.log_param(run_id, Param("p", "v"))
    store.delete_run(run_id)
    store.delete_run(run_id)  # deleting twice is fine
    deleted = store.get_run(run_id)
    assert deleted.info.lifecycle_stage == LifecycleStage.DELETED.value
    assert deleted.data.params == {"p": "v"}

    def found(view: ViewType) -> list[str]:
        return [r.info.run_id for r in store.search_runs([experiment_id], run_view_type=view)]

    assert (found(ViewType.ACTIVE_ONLY), found(ViewType.DELETED_ONLY), found(ViewType.ALL)) == ([], [run_id], [run_id])
    store.restore_run(run_id)
    assert store.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE.value
    assert (found(ViewType.ACTIVE_ONLY), found(ViewType.DELETED_ONLY)) == ([run_id], [])
    store.log_param(run_id, Param("q", "w"))  # writable again
    assert store.get_run(run_id).data.params == {"p": "v", "q": "w"}


WRITES: dict[str, Callable[[TrackingStore, str], object]] = {
    "log_metric": lambda store, run_id: store.log_metric(run_id, metric("m", 1.0)),
    "log_param": lambda store, run_id: store.log_param(run_id, Param("p", "v")),
    "set_tag": lambda store, run_id: store.set_tag(run_id, RunTag("t", "v")),
    "delete_tag": lambda store, run_id: store.delete_tag(run_id, "existing"),
    "log_batch": lambda store, run_id: store.log_batch(run_id, metrics=[metric("m", 1.0)], params=[Param("p", "v")]),
    "log_inputs": lambda store, run_id: store.log_inputs(
        run_id, [DatasetInput(Dataset("d", "digest", "local", "/data"))]
    ),
    "update_run_info": lambda store, run_id: store.update_run_info(run_id, run_status=RunStatus.FINISHED),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_writes_to_deleted_runs_are_rejected(
    store: TrackingStore, run_id: str, write: Callable[[TrackingStore, str], object]
) -> None:
    store.set_tag(run_id, RunTag("existing", "x"))
    store.delete_run(run_id)
    before = store.get_run(run_id)
    with raises(
        ErrorCode.INVALID_PARAMETER_VALUE, f"The run {run_id} must be in the 'active' state. Current state is deleted."
    ):
        write(store, run_id)
    after = store.get_run(run_id)
    assert after.info == before.info
    assert (after.data, after.inputs) == (before.data, before.inputs)


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_writes_to_missing_runs_are_rejected(
    store: TrackingStore, write: Callable[[TrackingStore, str], object]
) -> None:
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST, MISSING_RUN):
        write(store, MISSING_RUN)
