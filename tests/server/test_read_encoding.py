"""The read handlers encode the SQL store's plain rows byte for byte as they encode the entities of any store."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from mltrail.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mltrail.server import tracking, wire
from mltrail.store.sql import SqlStore


class _Context:
    def __init__(self, store: Any) -> None:
        self.store = store


class _EntitiesOnly:
    """The store's entity reads only, as a store without row reads offers them."""

    def __init__(self, store: SqlStore) -> None:
        self.get_run = store.get_run
        self.search_runs = store.search_runs
        self.get_metric_history = store.get_metric_history


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "artifacts"))
    experiment_id = store.create_experiment("e")
    for i in range(3):
        run_id = store.create_run(experiment_id, user_id="u", start_time=i, tags=[], run_name=f"r{i}").info.run_id
        metrics = [Metric("m", 0.5 * i, 1, 0), Metric("nan", math.nan, 1, 0), Metric("up", math.inf, 1, 0)]
        metrics += [Metric("h", v, 10 + step, step) for step, v in enumerate([1.5, -math.inf, math.nan, 2.0])]
        store.log_batch(run_id, metrics, [Param("p", f"v{i}")], [RunTag("t", "x")] if i else [])
        if i == 2:
            dataset = Dataset("ds", "d", "local", "/data", '{"s": 1}', None)
            store.log_inputs(run_id, [DatasetInput(dataset, (InputTag("mlflow.data.context", "train"),))])
    store.update_run_info(run_id, end_time=99)
    return store


@pytest.mark.parametrize(
    ("handler", "request_of"),
    [
        (tracking.search_runs, lambda run_id: {"experiment_ids": ["1"], "max_results": 2}),
        (tracking.search_runs, lambda run_id: {"experiment_ids": ["1"], "filter": "params.p != 'v0'"}),
        (tracking.get_run, lambda run_id: {"run_id": run_id}),
        (tracking.get_metric_history, lambda run_id: {"run_id": run_id, "metric_key": "h"}),
        (tracking.get_metric_history, lambda run_id: {"run_id": run_id, "metric_key": "h", "max_results": 2}),
    ],
)
def test_rows_encode_like_entities(store: SqlStore, handler: Any, request_of: Any) -> None:
    run_id = store.search_runs(["1"])[0].info.run_id
    request = request_of(run_id)

    from_rows = wire.dumps(handler(_Context(store), request))

    assert from_rows == wire.dumps(handler(_Context(_EntitiesOnly(store)), request))
    assert b'Infinity"' in from_rows and (b"next_page_token" in from_rows) == ("max_results" in request)


def test_encoded_run_shape(store: SqlStore) -> None:
    run_id = store.search_runs(["1"])[0].info.run_id
    run = tracking.get_run(_Context(store), {"run_id": run_id})["run"]
    assert run["info"]["end_time"] == 99
    assert run["data"]["metrics"][1:] == [
        {"key": "m", "value": 1.0, "timestamp": 1, "step": 0},
        {"key": "nan", "value": "NaN", "timestamp": 1, "step": 0},
        {"key": "up", "value": "Infinity", "timestamp": 1, "step": 0},
    ]
    assert run["inputs"]["dataset_inputs"][0]["dataset"]["schema"] == '{"s": 1}'
    assert run["outputs"] == {}
    first = store.search_runs(["1"])[-1].info.run_id
    assert tracking.get_run(_Context(store), {"run_id": first})["run"]["inputs"] == {}
