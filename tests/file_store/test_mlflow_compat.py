"""Compatibility with MLflow's own file store, both ways, against committed fixtures.

- ``tests/fixtures/mlflow_mlruns/``: a folder written by MLflow 3.17.2 (``make_mlflow_mlruns.py``) and
  ``expected.json``, what MLflow itself reads from it. mltrail must read exactly the same.
- ``tests/fixtures/mltrail_mlruns/``: a folder written by mltrail with pinned ids and clock
  (``make_mltrail_mlruns.py``) and ``mlflow_read.json``, what MLflow read from it
  (``read_mltrail_mlruns_with_mlflow.py``). mltrail must still write those bytes, and read what MLflow read.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from mltrail.entities import Metric, Run, ViewType
from mltrail.store.file import FileStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MLFLOW_WRITTEN = FIXTURES / "mlflow_mlruns"
MLTRAIL_WRITTEN = FIXTURES / "mltrail_mlruns"


def _float(value: float) -> float | str:
    return repr(value) if math.isnan(value) or math.isinf(value) else value


def _metric(m: Metric) -> dict:
    return {"key": m.key, "value": _float(m.value), "timestamp": m.timestamp, "step": m.step}


def _run(store: FileStore, run: Run) -> dict:
    info = run.info
    return {
        "info": {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "user_id": info.user_id,
            "status": info.status.value,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": info.artifact_uri,
            "lifecycle_stage": info.lifecycle_stage,
        },
        "latest_metrics": {k: _float(v) for k, v in run.data.metrics.items()},
        "params": run.data.params,
        "tags": run.data.tags,
        "dataset_inputs": [
            {
                "dataset": {
                    "name": d.dataset.name,
                    "digest": d.dataset.digest,
                    "source_type": d.dataset.source_type,
                    "source": d.dataset.source,
                    "schema": d.dataset.schema,
                    "profile": d.dataset.profile,
                },
                "tags": {t.key: t.value for t in d.tags},
            }
            for d in run.inputs.dataset_inputs
        ],
        "metric_history": {
            key: [_metric(m) for m in store.get_metric_history(info.run_id, key)] for key in run.data.metrics
        },
    }


def snapshot(store: FileStore) -> dict:
    """The same document the fixture scripts build with MLflow's FileStore, built with ours."""
    experiments = {}
    for exp in store.search_experiments(view_type=ViewType.ALL):
        runs = store.search_runs([exp.experiment_id], run_view_type=ViewType.ALL)
        experiments[exp.name] = {
            "experiment_id": exp.experiment_id,
            "artifact_location": exp.artifact_location,
            "lifecycle_stage": exp.lifecycle_stage,
            "creation_time": exp.creation_time,
            "last_update_time": exp.last_update_time,
            "tags": exp.tags,
            "runs": {run.info.run_name: _run(store, run) for run in runs},
        }
    return {"experiments": experiments}


def _expected(path: Path) -> dict:
    document = json.loads(path.read_text())
    document.pop("mlflow_version", None)
    return document


def _copy(folder: Path, tmp_path: Path) -> FileStore:
    """A store over a private copy, so that reading can never modify a committed fixture."""
    shutil.copytree(folder, tmp_path / "mlruns")
    return FileStore(str(tmp_path / "mlruns"))


def test_reads_mlflow_written_folder_as_mlflow_does(tmp_path: Path) -> None:
    store = _copy(MLFLOW_WRITTEN / "mlruns", tmp_path)
    assert snapshot(store) == _expected(MLFLOW_WRITTEN / "expected.json")


def test_reads_mlflow_written_folder_exact_values(tmp_path: Path) -> None:
    store = _copy(MLFLOW_WRITTEN / "mlruns", tmp_path)
    experiment = store.get_experiment_by_name("fixture experiment")
    assert experiment.tags == {"team": "vision", "nested/tag": "ünïcode ✓"}
    runs = {r.info.run_name: r for r in store.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)}
    assert set(runs) == {"parent", "child", "deleted run"}
    parent = runs["parent"]
    assert parent.info.status.value == "FINISHED"
    assert parent.info.end_time == 1_700_000_000_100
    assert parent.data.metrics == {"loss": 0.25, "acc": -math.inf, "train/accuracy": 0.75, "eval/sub/f1": 0.1}
    assert parent.data.params == {"lr": "0.01", "optimizer/name": "adam", "note": "héllo wörld"}
    assert parent.data.tags["multi"] == "line one\nline two"
    loss = store.get_metric_history(parent.info.run_id, "loss")
    assert [m.step for m in loss] == [0, 1, 2, 3]
    assert math.isnan(loss[2].value)
    (dataset_input,) = parent.inputs.dataset_inputs
    assert (dataset_input.dataset.name, dataset_input.dataset.digest) == ("iris", "d1g3st")
    assert runs["child"].data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert runs["deleted run"].info.lifecycle_stage == "deleted"
    relative_artifacts = parent.info.artifact_uri.split("/mlruns/", 1)[1]
    assert (tmp_path / "mlruns" / relative_artifacts / "notes" / "hello.txt").read_text() == "hello artifact\n"

    gone = store.get_experiment_by_name("deleted experiment")
    assert gone.lifecycle_stage == "deleted"
    (gone_run,) = store.search_runs([gone.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert gone_run.data.metrics == {"m": 2.0}
    assert store.search_runs([gone.experiment_id]) == []


def test_continues_an_mlflow_written_folder(tmp_path: Path) -> None:
    store = _copy(MLFLOW_WRITTEN / "mlruns", tmp_path)
    experiment = store.get_experiment_by_name("fixture experiment")
    (parent,) = store.search_runs([experiment.experiment_id], "attributes.run_name = 'parent'")
    run_id = parent.info.run_id
    store.log_metric(run_id, Metric("loss", 0.2, 1_700_000_000_500, 4))
    assert store.get_run(run_id).data.metrics["loss"] == 0.2
    assert len(store.get_metric_history(run_id, "loss")) == 5
    new = store.create_run(experiment.experiment_id, start_time=1)
    assert new.info.artifact_uri == f"{experiment.artifact_location}/{new.info.run_id}/artifacts"
    gone = store.get_experiment_by_name("deleted experiment")
    store.restore_experiment(gone.experiment_id)
    (restored,) = store.search_runs([gone.experiment_id])
    assert restored.info.lifecycle_stage == "active"


def _load_writer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_mltrail_mlruns", FIXTURES / "make_mltrail_mlruns.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_writes_the_bytes_mlflow_was_shown(tmp_path: Path) -> None:
    _load_writer().populate(tmp_path / "mlruns")
    written = _files(tmp_path / "mlruns")
    committed = _files(MLTRAIL_WRITTEN / "mlruns")
    assert sorted(written) == sorted(committed)
    for name, data in committed.items():
        assert written[name] == data, name
    # The empty folders MLflow requires in each run (git cannot keep them in the committed copy).
    metas = (tmp_path / "mlruns").glob("**/meta.yaml")
    run_dirs = [
        m.parent for m in metas if len(m.parent.name) == 32 and m.parent.parent.name not in ("inputs", "datasets")
    ]
    assert len(run_dirs) == 5
    for run_dir in run_dirs:
        for sub in ("metrics", "params", "artifacts", "tags"):
            assert (run_dir / sub).is_dir(), run_dir


@pytest.mark.parametrize("where", ["committed", "fresh"])
def test_reads_back_what_mlflow_read_from_our_folder(tmp_path: Path, where: str) -> None:
    if where == "committed":
        store = _copy(MLTRAIL_WRITTEN / "mlruns", tmp_path)
    else:
        _load_writer().populate(tmp_path / "mlruns")
        store = FileStore(str(tmp_path / "mlruns"))
    assert snapshot(store) == _expected(MLTRAIL_WRITTEN / "mlflow_read.json")
