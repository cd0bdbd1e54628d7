"""The official ``mlflow`` Python client (3.17.2) against mltrail's server: what users do every day."""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


def name(prefix: str = "compat") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_fluent_logging_with_nested_runs(client: mlflow.MlflowClient) -> None:
    experiment = mlflow.set_experiment(name("fluent"))
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"layers": 3, "act": "relu"})
        mlflow.log_metric("loss", 1.0, step=0)
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"acc": 0.7, "f1": float("nan")}, step=1)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "ann"})
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("child_metric", 2)
    finished = client.get_run(parent.info.run_id)
    assert finished.info.status == "FINISHED" and finished.info.end_time is not None
    assert finished.info.run_name == "parent" and finished.info.experiment_id == experiment.experiment_id
    assert finished.data.params == {"lr": "0.01", "layers": "3", "act": "relu"}
    assert finished.data.metrics["loss"] == 0.5 and math.isnan(finished.data.metrics["f1"])
    assert finished.data.tags["stage"] == "dev" and finished.data.tags["owner"] == "ann"
    nested = client.get_run(child.info.run_id)
    assert nested.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert nested.data.metrics == {"child_metric": 2.0}


def test_client_experiment_crud_and_errors(client: mlflow.MlflowClient, tmp_path: Path) -> None:
    experiment_name = name()
    experiment_id = client.create_experiment(experiment_name, tags={"team": "a"})
    experiment = client.get_experiment(experiment_id)
    assert experiment.name == experiment_name and experiment.tags == {"team": "a"}
    assert client.get_experiment_by_name(experiment_name).experiment_id == experiment_id
    assert client.get_experiment_by_name(name("absent")) is None
    client.set_experiment_tag(experiment_id, "k", "v")
    client.delete_experiment_tag(experiment_id, "team")
    client.rename_experiment(experiment_id, experiment_name + "-2")
    assert client.get_experiment(experiment_id).name == experiment_name + "-2"
    assert client.get_experiment(experiment_id).tags == {"k": "v"}
    local = client.create_experiment(name("local"), artifact_location=(tmp_path / "arts").as_uri())
    assert client.get_experiment(local).artifact_location == (tmp_path / "arts").as_uri()

    with pytest.raises(MlflowException) as duplicate:
        client.create_experiment(experiment_name + "-2")
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as missing:
        client.get_experiment("123456789")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as ssrf:
        client.create_experiment(name(), artifact_location="http://169.254.169.254/latest")
    assert ssrf.value.error_code == "INVALID_PARAMETER_VALUE"

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_search_experiments_filter_order_and_pages(client: mlflow.MlflowClient) -> None:
    marker = name("searchexp")
    ids = [client.create_experiment(f"{marker}-{i}") for i in range(5)]
    page = client.search_experiments(filter_string=f"name LIKE '{marker}-%'", order_by=["name DESC"], max_results=2)
    assert [e.experiment_id for e in page] == ids[::-1][:2] and page.token
    seen = list(page)
    while page.token:
        page = client.search_experiments(
            filter_string=f"name LIKE '{marker}-%'", order_by=["name DESC"], max_results=2, page_token=page.token
        )
        seen.extend(page)
    assert [e.experiment_id for e in seen] == ids[::-1]
    client.delete_experiment(ids[0])
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=f"name LIKE '{marker}-%'")
    assert [e.experiment_id for e in deleted] == [ids[0]]


def test_client_run_crud(client: mlflow.MlflowClient) -> None:
    experiment_id = client.create_experiment(name())
    run = client.create_run(experiment_id, tags={"a": "1"}, run_name="crud")
    run_id = run.info.run_id
    assert run.info.status == "RUNNING" and run.info.run_name == "crud"
    client.log_param(run_id, "p", "v")
    client.log_param(run_id, "p", "v")  # same value again: fine
    with pytest.raises(MlflowException) as changed:
        client.log_param(run_id, "p", "other")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    client.set_tag(run_id, "t", "x")
    client.delete_tag(run_id, "a")
    client.update_run(run_id, name="renamed")
    client.set_terminated(run_id, status="KILLED")
    fetched = client.get_run(run_id)
    assert fetched.info.status == "KILLED" and fetched.info.run_name == "renamed"
    assert "a" not in fetched.data.tags and fetched.data.tags["t"] == "x"
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    with pytest.raises(MlflowException) as deleted_write:
        client.log_metric(run_id, "m", 1)
    assert deleted_write.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    with pytest.raises(MlflowException) as missing:
        client.get_run(uuid.uuid4().hex)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_runs_with_filters_order_and_pagination(client: mlflow.MlflowClient) -> None:
    experiment_id = client.create_experiment(name("searchruns"))
    ids = []
    for i in range(6):
        run = client.create_run(experiment_id, run_name=f"r{i}")
        client.log_metric(run.info.run_id, "score", i)
        client.log_param(run.info.run_id, "parity", "even" if i % 2 == 0 else "odd")
        client.set_terminated(run.info.run_id)
        ids.append(run.info.run_id)
    even = client.search_runs(
        [experiment_id], "params.parity = 'even' and metrics.score > 0", order_by=["metrics.score DESC"]
    )
    assert [r.info.run_id for r in even] == [ids[4], ids[2]]
    collected, token = [], None
    while True:
        page = client.search_runs([experiment_id], order_by=["metrics.score ASC"], max_results=4, page_token=token)
        collected.extend(r.info.run_id for r in page)
        token = page.token
        if not token:
            break
    assert collected == ids
    by_name = mlflow.search_runs([experiment_id], filter_string="attributes.run_name = 'r3'", output_format="list")
    assert [r.info.run_id for r in by_name] == [ids[3]]
    with pytest.raises(MlflowException) as bad:
        client.search_runs([experiment_id], "metrics.score >")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"


def test_metric_history_and_log_batch(client: mlflow.MlflowClient) -> None:
    run_id = client.create_run(client.create_experiment(name())).info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric("series", float(i), now + i, i) for i in range(2500)]  # client splits into 1000-metric batches
    client.log_batch(run_id, metrics=metrics, params=[Param("b", "1")], tags=[RunTag("bt", "x")])
    history = client.get_metric_history(run_id, "series")
    assert len(history) == 2500 and [m.step for m in history[:3]] == [0, 1, 2]
    client.log_metric(run_id, "weird", float("inf"), step=1)
    client.log_metric(run_id, "weird", float("nan"), step=2)
    weird = client.get_metric_history(run_id, "weird")
    assert weird[0].value > 1e308 and math.isnan(weird[1].value)
    with pytest.raises(MlflowException) as duplicated:
        client.log_batch(run_id, params=[Param("dup", "1"), Param("dup", "2")])
    assert duplicated.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as bad_key:
        client.log_batch(run_id, metrics=[Metric("../bad", 1.0, now, 0)])
    assert bad_key.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {"b": "1"}


def test_asynchronous_logging(client: mlflow.MlflowClient) -> None:
    mlflow.set_experiment(name("async"))
    with mlflow.start_run() as run:
        operations = [mlflow.log_metric("async_m", float(i), step=i, synchronous=False) for i in range(20)]
        operations.append(mlflow.log_param("async_p", "1", synchronous=False))
        operations.append(mlflow.set_tag("async_t", "y", synchronous=False))
        for operation in operations:
            operation.wait()
    logged = client.get_run(run.info.run_id)
    assert logged.data.params["async_p"] == "1" and logged.data.tags["async_t"] == "y"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "async_m")) == list(range(20))


def test_artifacts_through_the_proxy(client: mlflow.MlflowClient, tmp_path: Path) -> None:
    mlflow.set_experiment(name("artifacts"))
    source = tmp_path / "src"
    (source / "nested").mkdir(parents=True)
    (source / "one.txt").write_text("one")
    (source / "nested" / "two.bin").write_bytes(b"\x01\x02" * 4096)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source / "one.txt"))
        mlflow.log_artifacts(str(source), artifact_path="tree")
        mlflow.log_text("hello", "texts/hello.txt")
        mlflow.log_dict({"a": 1}, "config.json")
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert sorted(f.path for f in client.list_artifacts(run_id)) == ["config.json", "one.txt", "texts", "tree"]
    tree = {f.path: f for f in client.list_artifacts(run_id, "tree")}
    assert tree["tree/nested"].is_dir and tree["tree/one.txt"].file_size == 3
    local = Path(client.download_artifacts(run_id, "tree", str(tmp_path / "dl")))
    assert (local / "nested" / "two.bin").read_bytes() == b"\x01\x02" * 4096
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/hello.txt") == "hello"
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config.json") == {"a": 1}
    everything = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "all")))
    assert (everything / "one.txt").read_text() == "one"
