"""``create_run(run_id=...)``: creating a run under a given id, and replaying that creation (offline spool,
``mltrail sync``)."""

from __future__ import annotations

import uuid

import pytest

from concurrency import run_side_by_side
from mltrail.entities import LifecycleStage, Param, RunStatus, RunTag, ViewType
from mltrail.errors import ErrorCode
from mltrail.store.base import TrackingStore

from .helpers import metric, new_experiment, raises


def test_create_run_with_given_id(store: TrackingStore, experiment_id: str) -> None:
    run_id = uuid.uuid4().hex
    run = store.create_run(
        experiment_id, user_id="ana", start_time=1234, tags=[RunTag("k", "v")], run_name="imported", run_id=run_id
    )
    info = run.info
    assert (info.run_id, info.experiment_id, info.run_name, info.user_id) == (run_id, experiment_id, "imported", "ana")
    assert (info.status, info.start_time, info.end_time) == (RunStatus.RUNNING, 1234, None)
    location = store.get_experiment(experiment_id).artifact_location
    assert info.artifact_uri == f"{location}/{run_id}/artifacts"
    fetched = store.get_run(run_id)
    assert fetched.info == info
    assert fetched.data.tags == {"k": "v", "mlflow.runName": "imported"}


def test_replay_returns_the_existing_run_unchanged(store: TrackingStore, experiment_id: str) -> None:
    run_id = uuid.uuid4().hex
    first = store.create_run(experiment_id, user_id="ana", start_time=1000, run_name="original", run_id=run_id)
    store.log_batch(run_id, metrics=[metric("loss", 0.5)], params=[Param("lr", "0.1")], tags=[RunTag("t", "1")])
    store.update_run_info(run_id, RunStatus.FINISHED, end_time=2000)

    replayed = store.create_run(
        experiment_id, user_id="bob", start_time=5000, tags=[RunTag("t", "2")], run_name="other", run_id=run_id
    )
    assert replayed.info.run_id == run_id
    assert (replayed.info.run_name, replayed.info.user_id, replayed.info.start_time) == ("original", "ana", 1000)
    assert (replayed.info.status, replayed.info.end_time) == (RunStatus.FINISHED, 2000)
    assert replayed.info.artifact_uri == first.info.artifact_uri
    assert replayed.data.params == {"lr": "0.1"}
    assert replayed.data.tags["t"] == "1"
    assert replayed.data.metrics == {"loss": 0.5}
    assert [r.info.run_id for r in store.search_runs([experiment_id], run_view_type=ViewType.ALL)] == [run_id]


def test_replay_of_a_deleted_run_returns_it(store: TrackingStore, experiment_id: str) -> None:
    run_id = uuid.uuid4().hex
    store.create_run(experiment_id, run_id=run_id)
    store.delete_run(run_id)
    replayed = store.create_run(experiment_id, run_id=run_id)
    assert replayed.info.lifecycle_stage == LifecycleStage.DELETED.value


def test_same_id_in_another_experiment_is_refused(store: TrackingStore, experiment_id: str) -> None:
    run_id = uuid.uuid4().hex
    store.create_run(experiment_id, run_id=run_id)
    other = new_experiment(store)
    with raises(ErrorCode.RESOURCE_ALREADY_EXISTS, run_id):
        store.create_run(other, run_id=run_id)
    assert store.search_runs([other]) == []
    assert store.get_run(run_id).info.experiment_id == experiment_id


@pytest.mark.parametrize(
    "bad", ["abc", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdef0", "../x"]
)
def test_malformed_ids_are_refused(store: TrackingStore, experiment_id: str, bad: str) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "Invalid run ID"):
        store.create_run(experiment_id, run_id=bad)
    assert store.search_runs([experiment_id]) == []


def test_given_id_in_a_deleted_experiment_is_refused(store: TrackingStore, experiment_id: str) -> None:
    store.delete_experiment(experiment_id)
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "active"):
        store.create_run(experiment_id, run_id=uuid.uuid4().hex)


def test_concurrent_replays_create_one_run(store: TrackingStore, experiment_id: str) -> None:
    run_id = uuid.uuid4().hex

    def create() -> str:
        return store.create_run(experiment_id, start_time=7, run_name="racing", run_id=run_id).info.run_id

    assert run_side_by_side(*[create] * 4) == [run_id] * 4
    runs = store.search_runs([experiment_id], run_view_type=ViewType.ALL)
    assert [(r.info.run_id, r.info.run_name) for r in runs] == [(run_id, "racing")]
