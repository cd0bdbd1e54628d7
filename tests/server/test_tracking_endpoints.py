"""Every tracking endpoint, on both API prefixes and both local backends, with MLflow's response shapes."""

from __future__ import annotations

import math

from .conftest import Api, error_of, unique


def test_experiment_lifecycle(api: Api) -> None:
    name = unique()
    experiment_id = api.ok_post("experiments/create", {"name": name, "tags": [{"key": "team", "value": "ml"}]})[
        "experiment_id"
    ]
    experiment = api.ok_get("experiments/get", {"experiment_id": experiment_id})["experiment"]
    assert experiment["name"] == name
    assert experiment["lifecycle_stage"] == "active"
    assert experiment["tags"] == [{"key": "team", "value": "ml"}]
    assert isinstance(experiment["creation_time"], int) and isinstance(experiment["last_update_time"], int)
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"

    by_name = api.ok_get("experiments/get-by-name", {"experiment_name": name})["experiment"]
    assert by_name["experiment_id"] == experiment_id

    api.ok_post("experiments/set-experiment-tag", {"experiment_id": experiment_id, "key": "k", "value": "v"})
    api.ok_post("experiments/delete-experiment-tag", {"experiment_id": experiment_id, "key": "team"})
    tags = api.ok_get("experiments/get", {"experiment_id": experiment_id})["experiment"]["tags"]
    assert tags == [{"key": "k", "value": "v"}]

    new_name = unique("renamed")
    assert api.ok_post("experiments/update", {"experiment_id": experiment_id, "new_name": new_name}) == {}
    assert api.ok_get("experiments/get", {"experiment_id": experiment_id})["experiment"]["name"] == new_name

    assert api.ok_post("experiments/delete", {"experiment_id": experiment_id}) == {}
    assert api.ok_get("experiments/get", {"experiment_id": experiment_id})["experiment"]["lifecycle_stage"] == "deleted"
    assert api.ok_post("experiments/restore", {"experiment_id": experiment_id}) == {}
    assert api.ok_get("experiments/get", {"experiment_id": experiment_id})["experiment"]["lifecycle_stage"] == "active"


def test_experiment_errors(api: Api) -> None:
    message = error_of(api.get("experiments/get", {"experiment_id": "987654321"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "987654321" in message
    name = unique("missing")
    message = error_of(api.get("experiments/get-by-name", {"experiment_name": name}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert message == f"Could not find experiment with name '{name}'"
    existing = unique()
    api.ok_post("experiments/create", {"name": existing})
    error_of(api.post("experiments/create", {"name": existing}), 400, "RESOURCE_ALREADY_EXISTS")
    deleted = api.new_experiment()
    api.ok_post("experiments/delete", {"experiment_id": deleted})
    error_of(api.post("experiments/update", {"experiment_id": deleted, "new_name": unique()}), 500, "INVALID_STATE")


def test_search_experiments_get_and_post_with_paging(api: Api) -> None:
    marker = unique("paging")
    ids = [api.ok_post("experiments/create", {"name": f"{marker}-{i}"})["experiment_id"] for i in range(3)]
    body = {"filter": f"name LIKE '{marker}-%'", "max_results": 2, "order_by": ["name ASC"]}
    first = api.ok_post("experiments/search", body)
    assert [e["experiment_id"] for e in first["experiments"]] == ids[:2]
    second = api.ok_post("experiments/search", {**body, "page_token": first["next_page_token"]})
    assert [e["experiment_id"] for e in second["experiments"]] == ids[2:]
    assert "next_page_token" not in second
    via_get = api.ok_get("experiments/search", {**body, "order_by": "name DESC"})
    assert [e["experiment_id"] for e in via_get["experiments"]] == ids[::-1][:2]
    api.ok_post("experiments/delete", {"experiment_id": ids[0]})
    deleted = api.ok_post("experiments/search", {**body, "view_type": "DELETED_ONLY"})
    assert [e["experiment_id"] for e in deleted["experiments"]] == ids[:1]
    assert api.ok_post("experiments/search", {**body, "view_type": 2}) == deleted  # enum by number
    assert api.ok_post("experiments/search", {"filter": f"name = '{unique()}'", "max_results": 5}) == {}


def test_run_lifecycle_and_shapes(api: Api) -> None:
    experiment_id = api.new_experiment()
    run = api.new_run(experiment_id, run_name="r1", tags=[{"key": "mlflow.user", "value": "bob"}])
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert info["experiment_id"] == experiment_id
    assert info["run_name"] == "r1"
    assert info["user_id"] == ""
    assert info["status"] == "RUNNING"
    assert info["start_time"] == 1700000000000
    assert "end_time" not in info
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{info['run_id']}/artifacts"
    assert run["inputs"] == {} and run["outputs"] == {}
    assert {"key": "mlflow.runName", "value": "r1"} in run["data"]["tags"]
    run_id = info["run_id"]

    updated = api.ok_post("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 1700000005000})
    assert updated["run_info"]["status"] == "FINISHED"
    assert updated["run_info"]["end_time"] == 1700000005000
    renamed = api.ok_post("runs/update", {"run_uuid": run_id, "run_name": "r2"})["run_info"]
    assert renamed["run_name"] == "r2" and renamed["status"] == "FINISHED"

    fetched = api.ok_get("runs/get", {"run_id": run_id})["run"]
    assert fetched["info"]["run_name"] == "r2"
    assert api.ok_get("runs/get", {"run_uuid": run_id})["run"]["info"]["run_id"] == run_id

    assert api.ok_post("runs/delete", {"run_id": run_id}) == {}
    assert api.ok_get("runs/get", {"run_id": run_id})["run"]["info"]["lifecycle_stage"] == "deleted"
    assert api.ok_post("runs/restore", {"run_id": run_id}) == {}
    assert api.ok_get("runs/get", {"run_id": run_id})["run"]["info"]["lifecycle_stage"] == "active"
    message = error_of(api.get("runs/get", {"run_id": "f" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "f" * 32 in message


def test_run_data_endpoints(api: Api) -> None:
    run_id = api.new_run()["info"]["run_id"]
    api.ok_post("runs/log-metric", {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 10, "step": 1})
    api.ok_post("runs/log-metric", {"run_uuid": run_id, "key": "loss", "value": "NaN", "timestamp": 11, "step": 2})
    api.ok_post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"})
    api.ok_post("runs/set-tag", {"run_id": run_id, "key": "stage", "value": "dev"})
    api.ok_post("runs/set-tag", {"run_id": run_id, "key": "gone", "value": "x"})
    api.ok_post("runs/delete-tag", {"run_id": run_id, "key": "gone"})
    api.ok_post(
        "runs/log-batch",
        {
            "run_id": run_id,
            "metrics": [{"key": "acc", "value": 0.9, "timestamp": 12, "step": 0}],
            "params": [{"key": "bs", "value": "32"}],
            "tags": [{"key": "batch", "value": "yes"}],
        },
    )
    data = api.ok_get("runs/get", {"run_id": run_id})["run"]["data"]
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["loss"] == {"key": "loss", "value": "NaN", "timestamp": 11, "step": 2}
    assert metrics["acc"]["value"] == 0.9
    assert {"key": "lr", "value": "0.1"} in data["params"] and {"key": "bs", "value": "32"} in data["params"]
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["stage"] == "dev" and tags["batch"] == "yes" and "gone" not in tags
    message = error_of(api.post("runs/delete-tag", {"run_id": run_id, "key": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert "nope" in message
    message = error_of(
        api.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.2"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "Changing param values is not allowed" in message


def test_log_inputs_and_unsupported_model_io(api: Api) -> None:
    run_id = api.new_run()["info"]["run_id"]
    dataset = {"name": "train", "digest": "abc123", "source_type": "local", "source": "/data/train.csv"}
    tags = [{"key": "mlflow.data.context", "value": "training"}]
    api.ok_post("runs/log-inputs", {"run_id": run_id, "datasets": [{"tags": tags, "dataset": dataset}]})
    inputs = api.ok_get("runs/get", {"run_id": run_id})["run"]["inputs"]
    assert inputs["dataset_inputs"] == [{"tags": tags, "dataset": dataset}]
    models = [{"model_id": "m-123"}]
    error_of(api.post("runs/log-inputs", {"run_id": run_id, "models": models}), 501, "NOT_IMPLEMENTED")
    error_of(api.post("runs/outputs", {"run_id": run_id, "models": models}), 501, "NOT_IMPLEMENTED")
    assert api.ok_post("logged-models/search", {"experiment_ids": ["0"]}) == {}


def test_search_runs_filter_order_and_pages(api: Api) -> None:
    experiment_id = api.new_experiment()
    ids = []
    for i in range(3):
        run_id = api.new_run(experiment_id, run_name=f"run{i}")["info"]["run_id"]
        api.ok_post("runs/log-metric", {"run_id": run_id, "key": "m", "value": i, "timestamp": 1})
        ids.append(run_id)
    body = {"experiment_ids": [experiment_id], "filter": "metrics.m >= 1", "order_by": ["metrics.m DESC"]}
    page = api.ok_post("runs/search", {**body, "max_results": 1})
    assert [r["info"]["run_id"] for r in page["runs"]] == [ids[2]]
    rest = api.ok_post("runs/search", {**body, "max_results": 1, "page_token": page["next_page_token"]})
    assert [r["info"]["run_id"] for r in rest["runs"]] == [ids[1]]
    assert "next_page_token" not in api.ok_post("runs/search", {**body, "page_token": page["next_page_token"]})
    api.ok_post("runs/delete", {"run_id": ids[2]})
    deleted = api.ok_post("runs/search", {**body, "run_view_type": "DELETED_ONLY"})
    assert [r["info"]["run_id"] for r in deleted["runs"]] == [ids[2]]
    message = error_of(
        api.post("runs/search", {"experiment_ids": [experiment_id], "filter": "metrics.m >"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert message


def test_metric_history_with_paging(api: Api) -> None:
    run_id = api.new_run()["info"]["run_id"]
    for step in range(5):
        api.ok_post(
            "runs/log-metric", {"run_id": run_id, "key": "h", "value": step / 2, "timestamp": 100 + step, "step": step}
        )
    first = api.ok_get("metrics/get-history", {"run_id": run_id, "metric_key": "h", "max_results": 2})
    assert [m["step"] for m in first["metrics"]] == [0, 1]
    second = api.ok_get(
        "metrics/get-history",
        {"run_id": run_id, "metric_key": "h", "max_results": 10, "page_token": first["next_page_token"]},
    )
    assert [m["step"] for m in second["metrics"]] == [2, 3, 4]
    full = api.ok_get("metrics/get-history", {"run_uuid": run_id, "metric_key": "h"})["metrics"]
    assert full[-1] == {"key": "h", "value": 2.0, "timestamp": 104, "step": 4}
    assert api.ok_get("metrics/get-history", {"run_id": run_id, "metric_key": "unknown"}) == {}
    error_of(
        api.get("metrics/get-history", {"run_id": run_id, "metric_key": "h", "max_results": 0}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_metric_history_bulk_interval_samples_steps(api: Api) -> None:
    runs = [api.new_run()["info"]["run_id"] for _ in range(2)]
    for run_id in runs:
        api.ok_post(
            "runs/log-batch",
            {"run_id": run_id, "metrics": [{"key": "s", "value": s, "timestamp": 5, "step": s} for s in range(100)]},
        )
    params = {"run_ids": runs, "metric_key": "s", "max_results": 10}
    metrics = api.ok_get("metrics/get-history-bulk-interval", params)["metrics"]
    for run_id in runs:
        steps = [m["step"] for m in metrics if m["run_id"] == run_id]
        assert 2 <= len(steps) <= 10
        assert steps[0] == 0 and steps[-1] == 99 and steps == sorted(steps)
    ranged = api.ok_get("metrics/get-history-bulk-interval", {**params, "start_step": 10, "end_step": 20})["metrics"]
    assert {m["step"] for m in ranged} <= set(range(10, 21)) and {10, 20} <= {m["step"] for m in ranged}
    error_of(api.get("metrics/get-history-bulk-interval", {**params, "start_step": 5}), 400, "INVALID_PARAMETER_VALUE")
    error_of(
        api.get("metrics/get-history-bulk-interval", {**params, "start_step": 9, "end_step": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    error_of(
        api.get("metrics/get-history-bulk-interval", {**params, "max_results": 2501}), 400, "INVALID_PARAMETER_VALUE"
    )
    error_of(
        api.get("metrics/get-history-bulk-interval", {**params, "run_ids": ["a"] * 101}), 400, "INVALID_PARAMETER_VALUE"
    )


def test_metric_history_bulk_is_ajax_only(live) -> None:
    api = Api(live.url, "/ajax-api/2.0")
    run_id = api.new_run()["info"]["run_id"]
    api.ok_post("runs/log-metric", {"run_id": run_id, "key": "b", "value": math.pi, "timestamp": 1, "step": 3})
    metrics = api.ok_get("metrics/get-history-bulk", {"run_id": [run_id], "metric_key": "b"})["metrics"]
    assert metrics == [{"key": "b", "value": math.pi, "timestamp": 1, "step": 3, "run_id": run_id}]
    assert Api(live.url).get("metrics/get-history-bulk", {"run_id": [run_id], "metric_key": "b"}).status_code == 404
