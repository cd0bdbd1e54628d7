"""The UI's endpoints under /ajax-api/2.0/mltrail/ (and /api/2.0/mltrail/), against a real server process."""

from __future__ import annotations

import math

import pytest
import requests

from mltrail.errors import MltrailException
from mltrail.server.ui_api import MAX_SERIES_PER_REQUEST, bucket_min_max, describe, group_key

from .seed import LONG_STEPS, MANY_RUNS, SPIKE_STEP, SPIKE_VALUE, Seed


def post(server: str, path: str, body: dict, api: str = "ajax-api") -> requests.Response:
    return requests.post(f"{server}/{api}/2.0/mltrail/{path}", json=body, timeout=30)


# --- pure helpers -----------------------------------------------------------------------------------


def test_bucket_min_max_keeps_all_points_when_few() -> None:
    points = [(float(i), float(i * i)) for i in range(10)]
    s = bucket_min_max(points, buckets=5)
    assert (s.x, s.y, s.sampled, s.points_in_range) == ([p[0] for p in points], [p[1] for p in points], False, 10)


def test_bucket_min_max_keeps_spikes_and_extremes() -> None:
    points = [(float(i), 1.0) for i in range(10_000)]
    points[4321] = (4321.0, 99.0)
    points[777] = (777.0, -5.0)
    s = bucket_min_max(points, buckets=100)
    assert s.sampled
    assert len(s.x) <= 202
    assert (4321.0, 99.0) in zip(s.x, s.y, strict=True)
    assert (777.0, -5.0) in zip(s.x, s.y, strict=True)
    assert s.x == sorted(s.x)
    assert s.x[0] == 0.0 and s.x[-1] == 9999.0


def test_bucket_min_max_range_adds_neighbours_and_counts_non_finite() -> None:
    points = [(float(i), float(i)) for i in range(100)]
    points[50] = (50.0, math.nan)
    s = bucket_min_max(points, buckets=1000, x_min=40, x_max=60)
    assert s.x[0] == 39.0 and s.x[-1] == 61.0  # one point either side so the line reaches the edges
    assert 50.0 not in s.x
    assert s.non_finite == 1
    assert s.points_in_range == 20


def test_describe_and_group_key() -> None:
    stats = describe([1.0, 2.0, 3.0, math.nan])
    assert stats is not None
    assert (stats.count, stats.mean, stats.min, stats.max) == (3, 2.0, 1.0, 3.0)
    assert stats.std == pytest.approx(1.0)
    single = describe([5.0])
    assert single is not None and single.std is None
    assert describe([]) is None
    with pytest.raises(MltrailException, match=r"Cannot group by 'metrics\.loss'"):
        group_key("metrics.loss")


# --- endpoints --------------------------------------------------------------------------------------


def test_bucketed_history_keeps_the_spike(server: str, seeded: Seed) -> None:
    run_id = seeded.runs["long-spiky"]
    r = post(server, "metrics/bucketed", {"run_ids": [run_id], "metric_keys": ["loss"], "buckets": 200})
    assert r.status_code == 200, r.text
    (series,) = r.json()["series"]
    assert series["run_id"] == run_id and series["metric_key"] == "loss"
    assert series["points_in_range"] == LONG_STEPS and series["sampled"] is True
    assert len(series["x"]) <= 400
    assert max(series["y"]) == SPIKE_VALUE
    assert series["x"][series["y"].index(SPIKE_VALUE)] == SPIKE_STEP


def test_bucketed_zoom_is_full_resolution(server: str, seeded: Seed) -> None:
    body = {"run_ids": [seeded.runs["long-spiky"]], "metric_keys": ["loss"], "x_min": 3300, "x_max": 3400}
    (series,) = post(server, "metrics/bucketed", body).json()["series"]
    assert series["sampled"] is False and series["points_in_range"] == 101
    assert series["x"] == list(range(3299, 3402))


def test_bucketed_many_runs_and_keys_in_one_request(server: str, seeded: Seed) -> None:
    runs = [v for k, v in seeded.runs.items() if k.startswith("sweep")]
    body = {"run_ids": runs, "metric_keys": ["loss", "accuracy", "absent"], "x_axis": "relative"}
    series = post(server, "metrics/bucketed", body, api="api").json()["series"]
    assert len(series) == len(runs) * 3
    present = [s for s in series if s["metric_key"] != "absent"]
    assert all(len(s["x"]) == 100 for s in present)
    assert all(s["x"] == [] for s in series if s["metric_key"] == "absent")


def test_bucketed_time_axis_uses_timestamps(server: str, seeded: Seed) -> None:
    body = {"run_ids": [seeded.runs["sweep-lr0.1-s1"]], "metric_keys": ["loss"], "x_axis": "time"}
    (series,) = post(server, "metrics/bucketed", body).json()["series"]
    assert series["x"][1] - series["x"][0] == 1000  # the seed logs one point per second
    assert series["x"][0] > 1_600_000_000_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"run_ids": ["x"], "metric_keys": ["m"], "x_axis": "epoch"}, "x_axis must be one of"),
        ({"run_ids": ["x"], "metric_keys": ["m"], "buckets": 0}, "buckets must be between"),
        ({"run_ids": ["x"], "metric_keys": ["m"], "x_min": 5, "x_max": 1}, "must not be greater"),
        ({"metric_keys": ["m"]}, "Missing value for required parameter 'run_ids'"),
        (
            {"run_ids": [f"r{i}" for i in range(MAX_SERIES_PER_REQUEST + 1)], "metric_keys": ["m"]},
            "at most 1000 (run, metric) series",
        ),
    ],
)
def test_bucketed_rejects_bad_requests(server: str, body: dict, message: str) -> None:
    r = post(server, "metrics/bucketed", body)
    assert r.status_code == 400
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in r.json()["message"]


def test_bucketed_unknown_run_is_not_found(server: str) -> None:
    r = post(server, "metrics/bucketed", {"run_ids": ["0" * 32], "metric_keys": ["m"], "x_axis": "relative"})
    assert r.status_code == 404
    assert r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_requires_json_content_type(server: str) -> None:
    r = requests.post(f"{server}/ajax-api/2.0/mltrail/runs/count", data="{}", timeout=10)
    assert r.status_code == 400
    assert "Content-Type" in r.json()["message"]


def test_metric_summary(server: str, seeded: Seed) -> None:
    run_id = seeded.runs["long-spiky"]
    r = post(server, "metrics/summary", {"run_ids": [run_id], "metric_keys": ["loss", "nope"]})
    (summary,) = r.json()["summaries"]
    assert summary["count"] == LONG_STEPS
    assert summary["max"] == SPIKE_VALUE
    assert summary["min"] == pytest.approx(1 / (1 + (LONG_STEPS - 1) / 100))
    assert summary["latest"]["step"] == LONG_STEPS - 1


def test_run_count_with_filter_and_error(server: str, seeded: Seed) -> None:
    assert post(server, "runs/count", {"experiment_ids": [seeded.many_experiment]}).json() == {"count": MANY_RUNS}
    body = {"experiment_ids": [seeded.many_experiment], "filter": "metrics.score < 10"}
    assert post(server, "runs/count", body).json() == {"count": 10}
    bad = post(server, "runs/count", {"experiment_ids": [seeded.many_experiment], "filter": "metrics.score <"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_experiment_keys(server: str, seeded: Seed) -> None:
    keys = post(server, "experiments/keys", {"experiment_ids": [seeded.demo_experiment]}).json()
    assert keys["param_keys"] == ["fold", "lr", "optimizer", "seed"]
    assert keys["metric_keys"] == ["accuracy", "loss"]
    assert {"team", "mlflow.runName", "mlflow.parentRunId", "mlflow.note.content"} <= set(keys["tag_keys"])
    assert keys["run_count"] == 12


def test_run_groups_mean_and_std(server: str, seeded: Seed) -> None:
    body = {"experiment_ids": [seeded.demo_experiment], "group_by": "params.lr", "metric_keys": ["loss"]}
    groups = {g["value"]: g for g in post(server, "runs/groups", body).json()["groups"]}
    assert groups["0.1"]["count"] == 2
    (loss,) = groups["0.1"]["metrics"]
    ends = [math.exp(-1.0 * 99 / 20) + 0.01 * s for s in (1, 2)]
    assert loss["mean"] == pytest.approx(sum(ends) / 2)
    assert loss["std"] == pytest.approx(abs(ends[0] - ends[1]) / math.sqrt(2))
    assert groups[None]["count"] == 5  # parent, its two children, long-spiky and live-run have no lr
    bad = post(server, "runs/groups", {**body, "group_by": "metrics.loss"})
    assert bad.status_code == 400
