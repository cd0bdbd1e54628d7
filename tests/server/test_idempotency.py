"""Clients retry POSTs after timeouts and 5xx: replaying a log/write request must neither fail nor duplicate."""

from __future__ import annotations

from .conftest import Api, Live


def test_replayed_writes_are_harmless(live: Live) -> None:
    api = Api(live.url)
    run_id = api.new_run()["info"]["run_id"]
    requests_to_replay = [
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.5, "timestamp": 7, "step": 1}),
        ("runs/log-parameter", {"run_id": run_id, "key": "p", "value": "v"}),
        ("runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"}),
        (
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [{"key": "b", "value": s, "timestamp": 9, "step": s} for s in range(3)],
                "params": [{"key": "bp", "value": "1"}],
                "tags": [{"key": "bt", "value": "1"}],
            },
        ),
        (
            "runs/log-inputs",
            {
                "run_id": run_id,
                "datasets": [{"dataset": {"name": "d", "digest": "1", "source_type": "local", "source": "/d"}}],
            },
        ),
        ("runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": 10}),
        ("runs/delete", {"run_id": run_id}),
        ("runs/restore", {"run_id": run_id}),
    ]
    for endpoint, body in requests_to_replay:
        first = api.ok_post(endpoint, body)
        assert api.ok_post(endpoint, body) == first, endpoint

    assert [
        m["value"] for m in api.ok_get("metrics/get-history", {"run_id": run_id, "metric_key": "m"})["metrics"]
    ] == [1.5]
    assert [m["step"] for m in api.ok_get("metrics/get-history", {"run_id": run_id, "metric_key": "b"})["metrics"]] == [
        0,
        1,
        2,
    ]
    run = api.ok_get("runs/get", {"run_id": run_id})["run"]
    assert sorted(p["key"] for p in run["data"]["params"]) == ["bp", "p"]
    assert len(run["inputs"]["dataset_inputs"]) == 1
    assert run["info"]["status"] == "FINISHED" and run["info"]["lifecycle_stage"] == "active"


def test_replayed_experiment_tag_writes(live: Live) -> None:
    api = Api(live.url)
    experiment_id = api.new_experiment()
    body = {"experiment_id": experiment_id, "key": "k", "value": "v"}
    api.ok_post("experiments/set-experiment-tag", body)
    api.ok_post("experiments/set-experiment-tag", body)
    assert api.ok_get("experiments/get", {"experiment_id": experiment_id})["experiment"]["tags"] == [
        {"key": "k", "value": "v"}
    ]
