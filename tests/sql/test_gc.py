"""``mltrail gc`` on the SQL store: deleted runs and experiments go for good, with their artifacts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from mltrail.cli import cli
from mltrail.entities import Dataset, DatasetInput, ExperimentTag, InputTag, Metric, Param, RunTag
from mltrail.errors import MltrailException
from mltrail.store.sql import SqlStore
from mltrail.store.sql import schema as t

from .helpers import unique


def _run_with_artifact(store: SqlStore, experiment_id: str) -> tuple[str, Path]:
    run = store.create_run(experiment_id)
    store.log_batch(run.info.run_id, metrics=[Metric("m", 1.0, 1, s) for s in range(5)], params=[Param("p", "v")])
    artifacts = Path(run.info.artifact_uri)
    artifacts.mkdir(parents=True)
    (artifacts / "model.bin").write_bytes(b"weights")
    return run.info.run_id, artifacts


def _gc(uri: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["gc", "--backend-store-uri", uri, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_gc_deletes_deleted_runs_and_experiments_with_artifacts(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'gc.db'}"
    store = SqlStore(uri, default_artifact_root=str(tmp_path / "artifacts"))
    keep_experiment = store.create_experiment(unique("keep"))
    kept_run, kept_artifacts = _run_with_artifact(store, keep_experiment)
    gone_run, gone_artifacts = _run_with_artifact(store, keep_experiment)
    doomed_name = unique("doomed")
    doomed_experiment = store.create_experiment(doomed_name)
    doomed_run, doomed_artifacts = _run_with_artifact(store, doomed_experiment)
    store.delete_run(gone_run)
    store.delete_experiment(doomed_experiment)
    assert sorted(store.get_deleted_runs()) == sorted([gone_run, doomed_run])

    assert "permanently deleted" not in _gc(uri, "--older-than", "1d")  # nothing is a day old: nothing goes
    store.get_run(gone_run)
    output = _gc(uri)
    assert f"Run with ID {gone_run} has been permanently deleted." in output
    assert f"Experiment with ID {doomed_experiment} has been permanently deleted." in output

    for run_id in (gone_run, doomed_run):
        with pytest.raises(MltrailException) as info:
            store.get_run(run_id)
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert not gone_artifacts.exists() and not doomed_artifacts.exists()
    assert kept_artifacts.exists() and store.get_run(kept_run).data.params == {"p": "v"}
    assert store.get_experiment_by_name(doomed_name) is None
    store.create_experiment(doomed_name)  # the name is free again
    assert store.get_deleted_runs() == []


def test_gc_with_ids_and_age(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'gc.db'}"
    store = SqlStore(uri, default_artifact_root=str(tmp_path / "artifacts"))
    experiment = store.create_experiment(unique("ids"))
    active_run, _ = _run_with_artifact(store, experiment)
    first, _ = _run_with_artifact(store, experiment)
    second, _ = _run_with_artifact(store, experiment)
    store.delete_run(first)
    store.delete_run(second)
    refused = CliRunner().invoke(cli, ["gc", "--backend-store-uri", uri, "--run-ids", active_run])
    assert refused.exit_code != 0 and "is not in the deleted state" in refused.output
    time.sleep(1.1)
    assert store.get_deleted_runs(older_than_ms=1000) == [first, second]
    assert store.get_deleted_runs(older_than_ms=3_600_000) == []
    _gc(uri, "--run-ids", first, "--older-than", "1s")
    assert store.get_deleted_runs() == [second]
    store.get_run(active_run)
    refused = CliRunner().invoke(cli, ["gc", "--backend-store-uri", uri, "--experiment-ids", experiment])
    assert refused.exit_code != 0 and "is not deleted" in refused.output


def _rows_of_experiment(store: SqlStore, experiment_id: str) -> dict[str, int]:
    eid = int(experiment_id)
    run_pks = sa.select(t.runs.c.id).where(t.runs.c.experiment_id == eid)
    counts = {}
    with store.engine.connect() as connection:
        for table in (t.metric_chunks, t.latest_metrics, t.metric_blocks, t.params, t.tags, t.inputs, t.input_tags):
            query = sa.select(sa.func.count()).select_from(table).where(table.c.run_pk.in_(run_pks))
            counts[table.name] = connection.execute(query).scalar()
        for table in (t.runs, t.datasets, t.experiment_tags):
            query = sa.select(sa.func.count()).select_from(table).where(table.c.experiment_id == eid)
            counts[table.name] = connection.execute(query).scalar()
    return counts


def test_hard_deletes_remove_every_row(store: SqlStore) -> None:
    experiment = store.create_experiment(unique("hard"), tags=[ExperimentTag("k", "v")])
    run_ids = []
    for _ in range(2):
        run_id = store.create_run(experiment).info.run_id
        store.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)], params=[Param("p", "v")], tags=[RunTag("t", "v")])
        store.log_inputs(run_id, [DatasetInput(Dataset("d", "1", "local", "s"), (InputTag("k", "v"),))])
        run_ids.append(run_id)
    assert all(count > 0 for count in _rows_of_experiment(store, experiment).values())
    store.delete_run(run_ids[0])
    store.hard_delete_run(run_ids[0])
    counts = _rows_of_experiment(store, experiment)
    assert counts["runs"] == 1 and counts["metric_chunks"] == 1 and counts["input_tags"] == 1
    store.delete_experiment(experiment)
    store.hard_delete_experiment(experiment)
    assert set(_rows_of_experiment(store, experiment).values()) == {0}
    with pytest.raises(MltrailException) as info:
        store.get_experiment(experiment)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
