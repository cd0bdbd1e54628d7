"""``mltrail sync``: an ``mlruns`` folder (MLflow's fixture, or one written here) pushed into SQLite, a directory
and a tracking server; re-runs send nothing twice, an interrupted sync resumes, a changed run is sent
incrementally."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mltrail.artifacts.registry import get_artifact_repository
from mltrail.cli.sync import sync as sync_command
from mltrail.entities import Metric, Param, RunStatus, RunTag, ViewType
from mltrail.errors import ErrorCode, MltrailException
from mltrail.server.app import create_app
from mltrail.store.base import TrackingStore
from mltrail.store.file import FileStore
from mltrail.store.rest import RestStore
from mltrail.store.sql import SqlStore
from mltrail.sync import ProgressRecord, sync_directory
from server.live import free_port, thread_server

FIXTURE = Path(__file__).parents[1] / "fixtures" / "mlflow_mlruns"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())


def value_text(value: Any) -> str:
    """Comparable text of a metric value (NaN equals NaN)."""
    return repr(float(value))


def expected_runs() -> dict[str, dict[str, Any]]:
    """What the target must hold after syncing the fixture: the active runs of its active experiments."""
    runs = {}
    for name, experiment in EXPECTED["experiments"].items():
        if experiment["lifecycle_stage"] != "active":
            continue
        for run in experiment["runs"].values():
            info = run["info"]
            if info["lifecycle_stage"] != "active":
                continue
            runs[info["run_id"]] = {
                "experiment": name,
                "info": {k: info[k] for k in ("run_name", "user_id", "status", "start_time", "end_time")},
                "params": run["params"],
                "tags": run["tags"],
                "history": {
                    key: [(p["timestamp"], p["step"], value_text(p["value"])) for p in points]
                    for key, points in run["metric_history"].items()
                },
                "inputs": run["dataset_inputs"],
            }
    return runs


def snapshot(store: TrackingStore, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    runs = {}
    for run_id in run_ids:
        run = store.get_run(run_id)
        info = run.info
        runs[run_id] = {
            "experiment": store.get_experiment(info.experiment_id).name,
            "info": {
                "run_name": info.run_name,
                "user_id": info.user_id,
                "status": info.status.value,
                "start_time": info.start_time,
                "end_time": info.end_time,
            },
            "params": run.data.params,
            "tags": run.data.tags,
            "history": {
                m.key: [(p.timestamp, p.step, value_text(p.value)) for p in store.get_metric_history(run_id, m.key)]
                for m in run.data.latest_metrics
            },
            "inputs": [
                {
                    "dataset": {
                        k: getattr(i.dataset, k)
                        for k in ("digest", "name", "profile", "schema", "source", "source_type")
                    },
                    "tags": {t.key: t.value for t in i.tags},
                }
                for i in run.inputs.dataset_inputs
            ],
        }
    return runs


def artifact_text(store: TrackingStore, run_id: str, path: str, tracking_uri: str) -> str:
    repository = get_artifact_repository(store.get_run(run_id).info.artifact_uri, tracking_uri)
    with repository.open_read(path) as stream:
        return stream.read().decode()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of MLflow's fixture (the original must not change; sync only reads, but be safe)."""
    copy = tmp_path / "source"
    shutil.copytree(FIXTURE / "mlruns", copy)
    return copy


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def run_cli(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(sync_command, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_mlflow_folder_into_sqlite_twice(source: Path, state: Path, tmp_path: Path) -> None:
    target_uri = f"sqlite:///{tmp_path / 'target.db'}"
    args = (str(source), "--to", target_uri, "--state-dir", str(state), "--default-artifact-root", str(tmp_path / "a"))
    first = run_cli(*args)
    expected = expected_runs()
    assert (first["runs_pushed"], first["runs_skipped"], first["failures"]) == (len(expected), 0, [])
    assert first["experiments_created"] == ["fixture experiment"]
    assert first["metrics"] == sum(len(points) for run in expected.values() for points in run["history"].values())

    store = SqlStore(target_uri)
    try:
        assert snapshot(store, list(expected)) == expected
        parent = next(i for i, r in expected.items() if r["info"]["run_name"] == "parent")
        assert artifact_text(store, parent, "notes/hello.txt", target_uri) == "hello artifact\n"
        experiment = store.get_experiment_by_name("fixture experiment")
        assert experiment is not None
        assert experiment.tags == EXPECTED["experiments"]["fixture experiment"]["tags"]
        assert sorted(
            r.info.run_id for r in store.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
        ) == sorted(expected)

        second = run_cli(*args)  # nothing changed: every run skipped
        assert (second["runs_pushed"], second["runs_skipped"], second["metrics"]) == (0, len(expected), 0)
        full = run_cli(*args, "--full")  # everything sent again: the target still holds each thing once
        assert full["runs_pushed"] == len(expected)
        assert snapshot(store, list(expected)) == expected
        assert len(store.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)) == len(expected)
    finally:
        store.close()


def test_mlflow_folder_into_a_server(source: Path, state: Path, tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 'server.db'}", None, str(tmp_path / "artifacts"))  # proxied artifacts
    with thread_server(app) as server:
        result = run_cli(str(source), "--to", server.url, "--state-dir", str(state))
        expected = expected_runs()
        assert result["runs_pushed"] == len(expected)
        store = RestStore(server.url)
        assert snapshot(store, list(expected)) == expected
        parent = next(i for i, r in expected.items() if r["info"]["run_name"] == "parent")
        assert store.get_run(parent).info.artifact_uri.startswith("mlflow-artifacts:")
        assert artifact_text(store, parent, "notes/hello.txt", server.url) == "hello artifact\n"
        assert run_cli(str(source), "--to", server.url, "--state-dir", str(state))["runs_skipped"] == len(expected)


def test_into_a_directory_store(source: Path, state: Path, tmp_path: Path) -> None:
    target = tmp_path / "home-mlruns"
    run_cli(str(source), "--to", str(target), "--state-dir", str(state))
    run_cli(str(source), "--to", str(target), "--state-dir", str(state), "--full")
    expected = expected_runs()
    store = FileStore(str(target))
    assert snapshot(store, list(expected)) == expected  # the directory store shows replayed points once too


# --- interruption and incremental sync -------------------------------------------------------------------


class Interrupted(Exception):
    """The 'crash' injected into a sync."""


class FlakyTarget:
    """A real store that dies after ``fail_after`` batches (like a killed sync process), and counts batches."""

    def __init__(self, store: TrackingStore, fail_after: int | None = None) -> None:
        self.store = store
        self.fail_after = fail_after
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def log_batch(
        self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = ()
    ) -> None:
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise Interrupted
        self.store.log_batch(run_id, metrics, params, tags)
        self.batches.append(len(metrics))


def write_source(root: Path, points: int, finished: bool = True) -> tuple[str, list[str]]:
    """A source folder with a big run (``points`` points of 3 keys, 150 params, tags, artifacts) and a small one."""
    store = FileStore(str(root))
    experiment_id = store.create_experiment("big", tags=[])
    big = store.create_run(experiment_id, user_id="ana", start_time=10, run_name="big").info.run_id
    for i, key in enumerate(("a", "b", "c/d")):
        for start in range(0, points, 1000):
            steps = range(start, min(points, start + 1000))
            store.log_batch(big, [Metric(key, s * 0.5 + i, 1000 + s, s) for s in steps])
    params = [Param(f"p{i}", str(i)) for i in range(150)]
    store.log_batch(big, params=params[:100], tags=[RunTag(f"t{i}", "x") for i in range(30)])
    store.log_batch(big, params=params[100:])
    artifacts = root / "files"
    (artifacts / "sub").mkdir(parents=True)
    (artifacts / "model.bin").write_bytes(bytes(range(256)) * 100)
    (artifacts / "sub" / "notes.txt").write_text("notes")
    run = store.get_run(big)
    repository = get_artifact_repository(run.info.artifact_uri)
    repository.log_artifacts(str(artifacts))
    small = store.create_run(experiment_id, start_time=20, run_name="small").info.run_id
    store.log_metric(small, Metric("x", 1.0, 5, 0))
    if finished:
        store.update_run_info(big, RunStatus.FINISHED, 99)
        store.update_run_info(small, RunStatus.KILLED, 98)
    return experiment_id, [big, small]


def full_snapshot(store: TrackingStore, run_ids: Sequence[str], tracking_uri: str | None = None) -> dict[str, Any]:
    result = snapshot(store, run_ids)
    for run_id in run_ids:
        repository = get_artifact_repository(store.get_run(run_id).info.artifact_uri, tracking_uri)
        files = {}
        pending = [None]
        while pending:
            for info in repository.list_artifacts(pending.pop()):
                if info.is_dir:
                    pending.append(info.path)
                else:
                    with repository.open_read(info.path) as stream:
                        files[info.path] = stream.read()
        result[run_id]["artifacts"] = files
    return result


@pytest.fixture
def sqlite_target(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'target.db'}", default_artifact_root=str(tmp_path / "target-artifacts"))
    yield store
    store.close()


def test_interrupted_sync_resumes_without_duplicates(tmp_path: Path, sqlite_target: SqlStore) -> None:
    source = tmp_path / "source"
    _, run_ids = write_source(source, points=2500)
    progress_path = tmp_path / "progress.json"
    flaky = FlakyTarget(sqlite_target, fail_after=4)
    with pytest.raises(Interrupted):
        sync_directory(str(source), flaky, "unused", ProgressRecord(progress_path))  # type: ignore[arg-type]
    sent_before = sum(flaky.batches)
    assert 0 < sent_before < 7500
    assert progress_path.is_file()  # saved on the way out

    resumed = FlakyTarget(sqlite_target)
    result = sync_directory(str(source), resumed, "unused", ProgressRecord(progress_path))  # type: ignore[arg-type]
    assert result.failures == []
    # only what was not stored yet is sent again (the batch in flight at the crash at most)
    assert sum(resumed.batches) <= 7500 + 1 - sent_before + 1000
    assert sum(resumed.batches) + sent_before >= 7501

    source_store = FileStore(str(source))
    assert full_snapshot(sqlite_target, run_ids) == full_snapshot(source_store, run_ids)
    histories = [sqlite_target.get_metric_history(run_ids[0], key) for key in ("a", "b", "c/d")]
    assert [len(h) for h in histories] == [2500, 2500, 2500]


def test_running_run_is_synced_incrementally(tmp_path: Path, sqlite_target: SqlStore) -> None:
    source = tmp_path / "source"
    _, (big, small) = write_source(source, points=1200, finished=False)
    progress_path = tmp_path / "progress.json"
    first = FlakyTarget(sqlite_target)
    sync_directory(str(source), first, "unused", ProgressRecord(progress_path))  # type: ignore[arg-type]
    assert sqlite_target.get_run(big).info.status == RunStatus.RUNNING
    assert sum(first.batches) == 3601

    source_store = FileStore(str(source))  # the job goes on: more points, a new artifact, then it ends
    source_store.log_batch(big, [Metric("a", -1.0, 5000 + s, 2000 + s) for s in range(10)], tags=[RunTag("t0", "y")])
    (tmp_path / "late.txt").write_text("late")
    get_artifact_repository(source_store.get_run(big).info.artifact_uri).log_artifact(str(tmp_path / "late.txt"))
    source_store.update_run_info(big, RunStatus.FINISHED, 12345)

    second = FlakyTarget(sqlite_target)
    result = sync_directory(str(source), second, "unused", ProgressRecord(progress_path))  # type: ignore[arg-type]
    assert (result.runs_pushed, result.runs_skipped, result.metrics, result.artifacts) == (1, 1, 10, 1)
    assert sum(second.batches) == 10  # only the new points
    assert full_snapshot(sqlite_target, [big, small]) == full_snapshot(source_store, [big, small])
    assert sqlite_target.get_run(big).info.end_time == 12345


def test_conflicting_run_is_reported_and_others_go_on(tmp_path: Path, sqlite_target: SqlStore, state: Path) -> None:
    source = tmp_path / "source"
    _, (big, small) = write_source(source, points=10)
    target_experiment = sqlite_target.create_experiment("big")
    sqlite_target.create_run(target_experiment, run_id=big)
    sqlite_target.log_param(big, Param("p1", "another value"))
    result = sync_directory(str(source), sqlite_target, "unused", ProgressRecord(None))
    assert [run_id for run_id, _ in result.failures] == [big]
    assert "Changing param values is not allowed" in result.failures[0][1]
    assert result.runs_pushed == 1
    assert sqlite_target.get_run(small).info.status == RunStatus.KILLED


def test_unreachable_target_stops_the_sync(tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_MAX_RETRIES", "0")
    source = tmp_path / "source"
    write_source(source, points=10)
    target = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    result = CliRunner().invoke(sync_command, [str(source), "--to", target, "--state-dir", str(state)])
    assert result.exit_code == 1
    assert "TEMPORARILY_UNAVAILABLE" in result.output


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MltrailException) as info:
        sync_directory(str(tmp_path / "nope"), FileStore(str(tmp_path / "t")), "unused", ProgressRecord(None))
    assert info.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
