"""Deleting and restoring through ``.trash``, and the gc hooks, as seen on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mltrail.entities import ExperimentTag, Metric, Param, RunTag, ViewType
from mltrail.errors import MltrailException
from mltrail.store.file import FileStore, _ids


def _meta(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_delete_experiment_moves_it_to_trash(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    store.delete_experiment(experiment_id)
    assert not (root / experiment_id).exists()
    trashed = root / ".trash" / experiment_id
    meta = _meta(trashed / "meta.yaml")
    assert meta["lifecycle_stage"] == "deleted"
    run_meta = _meta(trashed / run_id / "meta.yaml")
    assert run_meta["lifecycle_stage"] == "deleted"
    assert run_meta["deleted_time"] == meta["last_update_time"]
    assert store.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert store.get_run(run_id).info.lifecycle_stage == "deleted"
    assert store.search_runs([experiment_id]) == []
    assert [r.info.run_id for r in store.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)] == [run_id]


def test_runs_of_a_trashed_experiment_count_as_deleted_whatever_their_meta_says(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    # An experiment moved to .trash by hand (or by a crash before its runs were marked).
    (root / experiment_id).rename(root / ".trash" / experiment_id)
    assert store.get_experiment(experiment_id).lifecycle_stage == "deleted"
    assert store.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MltrailException) as err:
        store.log_metric(run_id, Metric("m", 1.0, 1, 0))
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert err.value.message == f"The run {run_id} must be in the 'active' state. Current state is deleted."


def test_restore_experiment_moves_it_back_with_the_runs_it_deleted(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    earlier = store.create_run(experiment_id, start_time=1).info.run_id
    store.delete_run(earlier)
    store.delete_experiment(experiment_id)
    store.restore_experiment(experiment_id)
    assert (root / experiment_id / "meta.yaml").is_file()
    assert not (root / ".trash" / experiment_id).exists()
    assert store.get_experiment(experiment_id).lifecycle_stage == "active"
    assert store.get_run(run_id).info.lifecycle_stage == "active"
    assert "deleted_time" not in _meta(root / experiment_id / run_id / "meta.yaml")
    # A run deleted before the experiment stays deleted.
    assert store.get_run(earlier).info.lifecycle_stage == "deleted"
    store.log_metric(run_id, Metric("m", 1.0, 1, 0))


def test_errors_of_experiment_lifecycle(store: FileStore, experiment_id: str) -> None:
    store.delete_experiment(experiment_id)
    for action, code in (
        (lambda: store.delete_experiment(experiment_id), "RESOURCE_DOES_NOT_EXIST"),
        (lambda: store.rename_experiment(experiment_id, "new"), "INVALID_STATE"),
        (lambda: store.create_run(experiment_id), "INVALID_PARAMETER_VALUE"),
        (lambda: store.set_experiment_tag(experiment_id, ExperimentTag("k", "v")), "INVALID_PARAMETER_VALUE"),
        (lambda: store.create_experiment("exp"), "RESOURCE_ALREADY_EXISTS"),
        (lambda: store.delete_experiment("0"), "INVALID_PARAMETER_VALUE"),
    ):
        with pytest.raises(MltrailException) as err:
            action()
        assert err.value.error_code == code
    with pytest.raises(MltrailException, match=r"Cannot rename a non-active experiment\."):
        store.rename_experiment(experiment_id, "new")
    with pytest.raises(MltrailException, match=rf"The experiment {experiment_id} must be in the 'active' state"):
        store.create_run(experiment_id)
    store.restore_experiment(experiment_id)
    with pytest.raises(MltrailException) as err:
        store.restore_experiment(experiment_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_deleted_name_is_reserved_until_hard_delete(store: FileStore, root: Path, experiment_id: str) -> None:
    store.delete_experiment(experiment_id)
    with pytest.raises(MltrailException, match=r"Experiment\(name=exp\) already exists."):
        store.create_experiment("exp")
    assert store.get_experiment_by_name("exp").lifecycle_stage == "deleted"
    store.hard_delete_experiment(experiment_id)
    assert not (root / ".trash" / experiment_id).exists()
    assert store.get_experiment_by_name("exp") is None
    new_id = store.create_experiment("exp")
    assert new_id != experiment_id


def test_get_experiment_by_name_prefers_the_active_one(store: FileStore, root: Path) -> None:
    first = store.create_experiment("same")
    store.delete_experiment(first)
    # Two folders with one name can only come from outside (e.g. copied mlruns); the active one wins.
    second = store.create_experiment("other")
    meta_path = root / second / "meta.yaml"
    meta_path.write_text(meta_path.read_text().replace("name: other", "name: same"))
    assert store.get_experiment_by_name("same").experiment_id == second


def test_hard_delete_experiment_refuses_active_ones(store: FileStore, experiment_id: str) -> None:
    with pytest.raises(MltrailException) as err:
        store.hard_delete_experiment(experiment_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert store.get_experiment(experiment_id).lifecycle_stage == "active"


def test_get_deleted_runs_and_hard_delete_run(
    store: FileStore, root: Path, experiment_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1_000_000]
    monkeypatch.setattr(_ids, "now_ms", lambda: clock[0])
    old = store.create_run(experiment_id, start_time=1).info.run_id
    store.delete_run(old)
    clock[0] += 10_000
    recent = store.create_run(experiment_id, start_time=2).info.run_id
    store.delete_run(recent)
    alive = store.create_run(experiment_id, start_time=3).info.run_id
    other = store.create_experiment("other")
    in_trashed = store.create_run(other, start_time=4).info.run_id
    store.delete_experiment(other)
    clock[0] += 1_000

    assert sorted(store.get_deleted_runs(None)) == sorted([old, recent, in_trashed])
    assert sorted(store.get_deleted_runs(5_000)) == [old]
    assert store.get_deleted_runs(100_000) == []

    store.hard_delete_run(old)
    assert not (root / experiment_id / old).exists()
    with pytest.raises(MltrailException) as err:
        store.get_run(old)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert store.get_run(alive).info.lifecycle_stage == "active"


def test_writes_to_a_deleted_run_change_nothing(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    store.delete_run(run_id)
    before = sorted((p, p.read_bytes()) for p in (root / experiment_id / run_id).rglob("*") if p.is_file())
    for action in (
        lambda: store.log_metric(run_id, Metric("m", 1.0, 1, 0)),
        lambda: store.log_param(run_id, Param("p", "v")),
        lambda: store.set_tag(run_id, RunTag("t", "v")),
        lambda: store.set_tag(run_id, RunTag("mlflow.runName", "new")),
        lambda: store.log_batch(run_id, [Metric("m", 1.0, 1, 0)], [Param("p", "v")], [RunTag("t", "v")]),
        lambda: store.delete_tag(run_id, "mlflow.runName"),
        lambda: store.update_run_info(run_id, run_name="x"),
    ):
        with pytest.raises(MltrailException) as err:
            action()
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    after = sorted((p, p.read_bytes()) for p in (root / experiment_id / run_id).rglob("*") if p.is_file())
    assert after == before
