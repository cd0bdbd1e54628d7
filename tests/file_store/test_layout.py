"""The folder layout the directory store writes: MLflow's ``mlruns`` format, file by file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from mltrail.entities import Dataset, DatasetInput, ExperimentTag, InputTag, Metric, Param, RunStatus, RunTag
from mltrail.store.file import FileStore

from .conftest import run_dir

EXPERIMENT_META_KEYS = {
    "artifact_location",
    "creation_time",
    "effective_trace_archival_retention",
    "experiment_id",
    "last_update_time",
    "lifecycle_stage",
    "name",
    "trace_location",
    "workspace",
}
RUN_META_KEYS = {
    "artifact_uri",
    "end_time",
    "entry_point_name",
    "experiment_id",
    "lifecycle_stage",
    "run_id",
    "run_name",
    "source_name",
    "source_type",
    "source_version",
    "start_time",
    "status",
    "tags",
    "user_id",
}


def _meta(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_constructing_touches_nothing_and_first_use_creates_default_experiment(root: Path) -> None:
    store = FileStore(str(root))
    assert not root.exists()
    default = store.get_experiment("0")
    assert default.name == "Default"
    assert (root / ".trash").is_dir()
    meta = _meta(root / "0" / "meta.yaml")
    assert set(meta) == EXPERIMENT_META_KEYS
    assert meta["experiment_id"] == "0"
    assert meta["artifact_location"] == root.resolve().as_uri() + "/0"
    assert meta["lifecycle_stage"] == "active"


def test_root_may_be_a_file_uri(tmp_path: Path) -> None:
    root = tmp_path / "with space" / "mlruns"
    store = FileStore(root.as_uri())
    experiment_id = store.create_experiment("e")
    assert (root / experiment_id / "meta.yaml").is_file()
    assert store.get_experiment(experiment_id).artifact_location == f"{root.as_uri()}/{experiment_id}"


def test_experiment_folder(store: FileStore, root: Path) -> None:
    experiment_id = store.create_experiment("vision", tags=[ExperimentTag("team", "cv"), ExperimentTag("a/b", "c")])
    assert len(experiment_id) == 18 and experiment_id.isdigit()
    meta = _meta(root / experiment_id / "meta.yaml")
    assert set(meta) == EXPERIMENT_META_KEYS
    assert meta["name"] == "vision"
    assert meta["experiment_id"] == experiment_id  # a string, quoted in YAML
    assert f"experiment_id: '{experiment_id}'\n" in (root / experiment_id / "meta.yaml").read_text()
    assert meta["creation_time"] == meta["last_update_time"] > 0
    assert meta["artifact_location"] == f"{root.resolve().as_uri()}/{experiment_id}"
    assert (root / experiment_id / "tags" / "team").read_bytes() == b"cv"
    assert (root / experiment_id / "tags" / "a" / "b").read_bytes() == b"c"


def test_explicit_artifact_locations(store: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.get_experiment(store.create_experiment("s3", artifact_location="s3://bucket/x")).artifact_location == (
        "s3://bucket/x"
    )
    monkeypatch.chdir(tmp_path)
    relative = store.get_experiment(store.create_experiment("rel", artifact_location="arts")).artifact_location
    assert relative == (tmp_path / "arts").as_posix()


def test_artifact_root_applies_to_new_experiments(tmp_path: Path) -> None:
    store = FileStore(str(tmp_path / "mlruns"), artifact_root="s3://bucket/prefix")
    experiment_id = store.create_experiment("e")
    assert store.get_experiment(experiment_id).artifact_location == f"s3://bucket/prefix/{experiment_id}"
    run = store.create_run(experiment_id, start_time=1)
    assert run.info.artifact_uri == f"s3://bucket/prefix/{experiment_id}/{run.info.run_id}/artifacts"
    # MLflow refuses run folders without these, wherever the artifacts really go.
    folder = tmp_path / "mlruns" / experiment_id / run.info.run_id
    assert {p.name for p in folder.iterdir()} >= {"metrics", "params", "artifacts", "tags", "meta.yaml"}


def test_run_folder(store: FileStore, root: Path, experiment_id: str) -> None:
    run = store.create_run(experiment_id, user_id="ann", start_time=123, tags=[RunTag("k", "v")], run_name="r")
    folder = run_dir(root, experiment_id, run.info.run_id)
    meta = _meta(folder / "meta.yaml")
    assert set(meta) == RUN_META_KEYS  # deleted_time only appears once the run is deleted
    assert meta == {
        "artifact_uri": f"{root.resolve().as_uri()}/{experiment_id}/{run.info.run_id}/artifacts",
        "end_time": None,
        "entry_point_name": "",
        "experiment_id": experiment_id,
        "lifecycle_stage": "active",
        "run_id": run.info.run_id,
        "run_name": "r",
        "source_name": "",
        "source_type": 4,
        "source_version": "",
        "start_time": 123,
        "status": 1,
        "tags": [],
        "user_id": "ann",
    }
    assert (folder / "tags" / "mlflow.runName").read_bytes() == b"r"
    assert (folder / "tags" / "k").read_bytes() == b"v"
    for sub in ("metrics", "params", "artifacts"):
        assert (folder / sub).is_dir()


def test_status_is_stored_as_mlflow_enum_number(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    for status, number in ((RunStatus.FINISHED, 3), (RunStatus.FAILED, 4), (RunStatus.KILLED, 5)):
        store.update_run_info(run_id, status, end_time=2_000)
        meta = _meta(run_dir(root, experiment_id, run_id) / "meta.yaml")
        assert (meta["status"], meta["end_time"]) == (number, 2_000)
        assert store.get_run(run_id).info.status == status


def test_run_name_tag_and_meta_stay_in_step(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    meta_path = run_dir(root, experiment_id, run_id) / "meta.yaml"
    tag_path = run_dir(root, experiment_id, run_id) / "tags" / "mlflow.runName"
    for rename, expected in (
        (lambda: store.set_tag(run_id, RunTag("mlflow.runName", "by-tag")), "by-tag"),
        (lambda: store.log_batch(run_id, tags=[RunTag("mlflow.runName", "by-batch")]), "by-batch"),
        (lambda: store.update_run_info(run_id, run_name="by-update"), "by-update"),
        (lambda: store.update_run_info(run_id, RunStatus.FINISHED), "by-update"),  # name not given: unchanged
    ):
        rename()
        assert _meta(meta_path)["run_name"] == expected
        assert tag_path.read_text() == expected
        assert store.get_run(run_id).info.run_name == expected
    created = store.create_run(experiment_id, tags=[RunTag("mlflow.runName", "from-tag")])
    assert created.info.run_name == "from-tag"
    generated = store.create_run(experiment_id).info
    assert generated.run_name and store.get_run(generated.run_id).data.tags["mlflow.runName"] == generated.run_name


def test_metric_lines(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    store.log_batch(
        run_id,
        metrics=[
            Metric("m", 1.5, 10, 0),
            Metric("m", math.nan, 11, 1),
            Metric("m", math.inf, 12, 2),
            Metric("m", -math.inf, 13, -3),
            Metric("m", 7, 14, 4),
            Metric("m", 1e-300, 15, 5),
        ],
    )
    store.log_metric(run_id, Metric("ds", 0.5, 20, 1, dataset_name="train", dataset_digest="abc"))
    folder = run_dir(root, experiment_id, run_id) / "metrics"
    assert (folder / "m").read_text() == "10 1.5 0\n11 nan 1\n12 inf 2\n13 -inf -3\n14 7.0 4\n15 1e-300 5\n"
    assert (folder / "ds").read_text() == "20 0.5 1 train abc\n"


def test_params_and_tags_are_plain_files_without_newline(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    store.log_param(run_id, Param("lr", "0.1"))
    store.log_param(run_id, Param("empty", ""))
    store.set_tag(run_id, RunTag("note", "two\nlines\r\n"))
    folder = run_dir(root, experiment_id, run_id)
    assert (folder / "params" / "lr").read_bytes() == b"0.1"
    assert (folder / "params" / "empty").read_bytes() == b""
    assert (folder / "tags" / "note").read_bytes() == b"two\nlines\r\n"
    run = store.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "empty": ""}
    assert run.data.tags["note"] == "two\nlines\r\n"


def test_keys_with_slashes_are_sub_folders(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    store.log_batch(
        run_id,
        metrics=[Metric("train/loss", 0.5, 1, 0), Metric("a/b/c", 1.0, 1, 0)],
        params=[Param("opt/lr", "0.1")],
        tags=[RunTag("x/y", "z")],
    )
    folder = run_dir(root, experiment_id, run_id)
    assert (folder / "metrics" / "train" / "loss").is_file()
    assert (folder / "metrics" / "a" / "b" / "c").is_file()
    assert (folder / "params" / "opt" / "lr").read_bytes() == b"0.1"
    assert (folder / "tags" / "x" / "y").read_bytes() == b"z"
    run = store.get_run(run_id)
    assert run.data.metrics == {"train/loss": 0.5, "a/b/c": 1.0}
    assert run.data.params == {"opt/lr": "0.1"}
    assert run.data.tags["x/y"] == "z"
    assert [m.value for m in store.get_metric_history(run_id, "a/b/c")] == [1.0]
    found = store.search_runs([experiment_id], "params.`opt/lr` = '0.1' and metrics.`train/loss` < 1")
    assert [r.info.run_id for r in found] == [run_id]


def test_unicode_keys_and_values(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    store.log_batch(
        run_id,
        metrics=[Metric("größe", 2.0, 1, 0)],
        params=[Param("schlüssel", "wért ✓ 日本")],
        tags=[RunTag("タグ", "値 🚀")],
    )
    store.set_experiment_tag(experiment_id, ExperimentTag("ключ", "значение"))
    store.rename_experiment(experiment_id, "эксперимент ✓")
    folder = run_dir(root, experiment_id, run_id)
    assert (folder / "params" / "schlüssel").read_bytes() == "wért ✓ 日本".encode()
    assert (folder / "tags" / "タグ").read_bytes() == "値 🚀".encode()
    # MLflow writes unicode as is (allow_unicode=True), not as escapes.
    assert "name: эксперимент ✓\n" in (root / experiment_id / "meta.yaml").read_text(encoding="utf-8")
    run = store.get_run(run_id)
    assert run.data.metrics == {"größe": 2.0}
    assert run.data.params == {"schlüssel": "wért ✓ 日本"}
    assert run.data.tags["タグ"] == "値 🚀"
    assert store.get_experiment(experiment_id).tags == {"ключ": "значение"}
    assert store.get_experiment_by_name("эксперимент ✓").experiment_id == experiment_id
    assert [r.info.run_id for r in store.search_runs([experiment_id], "tags.`タグ` LIKE '値%'")] == [run_id]


def test_dataset_inputs_as_mlflow_stores_them(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    dataset = Dataset("iris", "abc123", "local", "/data/iris.csv", '{"a": 1}', None)
    store.log_inputs(run_id, [DatasetInput(dataset, (InputTag("mlflow.data.context", "train"),))])
    store.log_inputs(run_id, [DatasetInput(dataset, (InputTag("mlflow.data.context", "train"),))])  # idempotent
    datasets = list((root / experiment_id / "datasets").iterdir())
    assert len(datasets) == 1
    assert _meta(datasets[0] / "meta.yaml") == {
        "name": "iris",
        "digest": "abc123",
        "source_type": "local",
        "source": "/data/iris.csv",
        "schema": '{"a": 1}',
        "profile": None,
    }
    inputs = list((run_dir(root, experiment_id, run_id) / "inputs").iterdir())
    assert len(inputs) == 1
    assert _meta(inputs[0] / "meta.yaml") == {
        "source_type": "DATASET",
        "source_id": datasets[0].name,
        "destination_type": "RUN",
        "destination_id": datasets[0].name,
        "tags": {"mlflow.data.context": "train"},
    }
    (loaded,) = store.get_run(run_id).inputs.dataset_inputs
    assert loaded.dataset == dataset
    assert loaded.tags == (InputTag("mlflow.data.context", "train"),)
    assert [r.info.run_id for r in store.search_runs([experiment_id], "datasets.context = 'train'")] == [run_id]
    # The datasets folder is not a run.
    assert len(store.search_runs([experiment_id])) == 1


def test_deleted_run_records_deleted_time_and_restore_removes_it(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    meta_path = run_dir(root, experiment_id, run_id) / "meta.yaml"
    store.delete_run(run_id)
    meta = _meta(meta_path)
    assert meta["lifecycle_stage"] == "deleted"
    assert meta["deleted_time"] > 0
    store.restore_run(run_id)
    meta = _meta(meta_path)
    assert meta["lifecycle_stage"] == "active"
    assert "deleted_time" not in meta


def test_no_temporary_files_are_left(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    store.log_batch(run_id, [Metric("m", 1.0, 1, 0)], [Param("p", "v")], [RunTag("t", "v")])
    store.log_param(run_id, Param("p", "v"))
    store.update_run_info(run_id, RunStatus.FINISHED, 5)
    store.set_experiment_tag(experiment_id, ExperimentTag("e", "v"))
    assert [p for p in root.rglob("*") if "~tmp" in p.name] == []
