"""The UI endpoints on a SQL store (the store's fast aggregates) answer exactly what the generic computation over
MLflow's REST API answers (a RestStore, which has no fast path, talking to the same server)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import requests

from analytics_cases import SPIKE, Seeded, seed
from mltrail.server import ui_api
from mltrail.store.rest import RestStore
from mltrail.store.sql import SqlStore

from .conftest import running_server


@pytest.fixture(scope="module")
def sql_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded]]:
    folder = tmp_path_factory.mktemp("ui-fast")
    uri = f"sqlite:///{folder / 'ui.db'}"
    store = SqlStore(uri)
    seeded = seed(store, store.create_experiment("fast"), random.Random(1), points=2500)
    store.close()
    with running_server(uri, str(folder / "artifacts")) as url:
        yield url, seeded


def post(url: str, path: str, body: dict) -> dict:
    response = requests.post(f"{url}/ajax-api/2.0/mltrail/{path}", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_endpoint_matches_the_generic_answer(sql_server: tuple[str, Seeded]) -> None:
    url, seeded = sql_server
    generic = RestStore(url)
    assert not hasattr(generic, "count_runs")  # so ui_api takes its generic path for it
    search = {"experiment_ids": [seeded.experiment_id], "run_view_type": "ALL"}
    series = {"run_ids": seeded.run_ids, "metric_keys": ["loss", "flat"]}
    requests_ = [
        ("runs/count", ui_api.count_runs, {**search, "filter": "params.lr = '0.1'"}),
        ("experiments/keys", ui_api.experiment_keys, search),
        ("runs/groups", ui_api.run_groups, {**search, "group_by": "params.lr", "metric_keys": ["loss", "flat"]}),
        ("metrics/summary", ui_api.metric_summary, series),
        ("metrics/bucketed", ui_api.bucketed_metrics, {**series, "buckets": 100}),
        ("metrics/bucketed", ui_api.bucketed_metrics, {**series, "x_axis": "relative", "x_min": 500, "x_max": 9000}),
    ]
    for path, handler, body in requests_:
        assert post(url, path, body) == handler(generic, body), path


def test_bucketed_keeps_every_spike(sql_server: tuple[str, Seeded]) -> None:
    url, seeded = sql_server
    body = {"run_ids": list(seeded.spikes), "metric_keys": ["loss"], "buckets": 50}
    for item in post(url, "metrics/bucketed", body)["series"]:
        assert item["sampled"] and len(item["x"]) <= 102
        assert max(item["y"]) == SPIKE


def test_non_finite_range_is_rejected(sql_server: tuple[str, Seeded]) -> None:
    url, seeded = sql_server
    body = {"run_ids": seeded.run_ids[:1], "metric_keys": ["loss"], "x_min": "-Infinity"}
    response = requests.post(f"{url}/ajax-api/2.0/mltrail/metrics/bucketed", json=body, timeout=30)
    assert response.status_code == 400
    assert "x_min must be a finite number" in response.json()["message"]
