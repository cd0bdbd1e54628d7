"""Request parsing and response encoding details of MLflow's JSON wire format."""

from __future__ import annotations

import json
import math

import pytest
import requests

from mltrail.errors import MltrailException
from mltrail.server import wire
from mltrail.server.routes import ENDPOINTS

from .conftest import Api, Live, error_of, unique

HINT = " See the API docs for more information about request parameters."


@pytest.fixture
def api(live: Live) -> Api:
    return Api(live.url)


def test_camel_case_fields_are_accepted(api: Api) -> None:
    experiment_id = api.new_experiment()
    run = api.ok_post("runs/create", {"experimentId": experiment_id, "runName": "camel", "startTime": "1700000000123"})
    assert run["run"]["info"]["run_name"] == "camel"
    assert run["run"]["info"]["start_time"] == 1700000000123  # int64 string in, JSON number out
    run_id = run["run"]["info"]["run_id"]
    api.ok_post("runs/log-metric", {"runId": run_id, "key": "k", "value": 1, "timestamp": 2})
    assert api.ok_get("runs/get", {"runId": run_id})["run"]["info"]["run_id"] == run_id


def test_both_spellings_of_a_field_are_rejected(api: Api) -> None:
    message = error_of(
        api.post("runs/create", {"experiment_id": "0", "experimentId": "0"}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert message == "Request specifies both 'experiment_id' and 'experimentId'; provide only one of them."
    run_id = api.new_run()["info"]["run_id"]
    batch = {"run_id": run_id, "metrics": [{"key": "a", "value": 1, "timestamp": 1, "step": 0}]}
    batch["metrics"][0]["dataset_name"] = "x"
    batch["metrics"][0]["datasetName"] = "y"
    error_of(api.post("runs/log-batch", batch), 400, "INVALID_PARAMETER_VALUE")


def test_missing_required_fields_use_mlflow_wording(api: Api) -> None:
    message = error_of(api.post("experiments/create", {}), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Missing value for required parameter 'name'." + HINT
    message = error_of(api.post("experiments/create", {"name": ""}), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Missing value for required parameter 'name'." + HINT
    message = error_of(api.get("runs/get"), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Missing value for required parameter 'run_id'." + HINT
    run_id = api.new_run()["info"]["run_id"]
    body = {"run_id": run_id, "metrics": [{"key": "a", "value": 1}]}
    message = error_of(api.post("runs/log-batch", body), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Missing value for required parameter 'metrics[0].timestamp'." + HINT


def test_wrong_types_are_invalid_parameter_values(api: Api) -> None:
    message = error_of(api.post("experiments/create", {"name": 5}), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Invalid value 5 for parameter 'name' supplied:  Hint: Value was of type 'int'." + HINT
    run_id = api.new_run()["info"]["run_id"]
    for bad in ({"value": "abc"}, {"value": True}, {"timestamp": "soon"}, {"step": 1.5}, {"timestamp": 2**63}):
        body = {"run_id": run_id, "key": "k", "value": 1, "timestamp": 1, **bad}
        error_of(api.post("runs/log-metric", body), 400, "INVALID_PARAMETER_VALUE")
    error_of(api.post("runs/search", {"experiment_ids": "0"}), 400, "INVALID_PARAMETER_VALUE")
    error_of(
        api.post("runs/search", {"experiment_ids": ["0"], "run_view_type": "SOME"}), 400, "INVALID_PARAMETER_VALUE"
    )
    error_of(api.post("runs/log-batch", {"run_id": run_id, "params": [7]}), 400, "INVALID_PARAMETER_VALUE")


def test_malformed_and_non_object_bodies(api: Api, live: Live) -> None:
    url = f"{live.url}/api/2.0/mlflow/experiments/create"
    headers = {"Content-Type": "application/json"}
    message = error_of(requests.post(url, data=b"{not json", headers=headers), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Malformed JSON request body"
    error_of(requests.post(url, data=b"[1, 2]", headers=headers), 400, "INVALID_PARAMETER_VALUE")
    lone_surrogate = b'{"name": "a\\ud800b"}'  # valid JSON syntax, but no store can encode the text
    error_of(requests.post(url, data=lone_surrogate, headers=headers), 400, "INVALID_PARAMETER_VALUE")
    nested = json.dumps(json.dumps(json.dumps({"name": "x"})))  # only one level of double encoding
    error_of(requests.post(url, data=nested, headers=headers), 400, "INVALID_PARAMETER_VALUE")
    # legacy double encoding: a JSON string that holds the JSON object
    name = unique("double-encoded")
    double = requests.post(url, json=json.dumps({"name": name}))
    assert double.status_code == 200, double.text
    assert api.ok_get("experiments/get-by-name", {"experiment_name": name})["experiment"]["name"] == name


def test_non_finite_doubles_round_trip(api: Api, live: Live) -> None:
    run_id = api.new_run()["info"]["run_id"]
    for step, value in enumerate(["NaN", "Infinity", "-Infinity"]):
        api.ok_post("runs/log-metric", {"run_id": run_id, "key": "x", "value": value, "timestamp": 1, "step": step})
    # Python's json module writes bare NaN literals; accept them too
    raw = b'{"run_id": "%s", "key": "y", "value": NaN, "timestamp": 1}' % run_id.encode()
    response = requests.post(
        f"{live.url}/api/2.0/mlflow/runs/log-metric", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    history = api.ok_get("metrics/get-history", {"run_id": run_id, "metric_key": "x"})["metrics"]
    values = [m["value"] for m in history]
    assert values[0] == "NaN"
    # the SQL store clamps infinities like MLflow; the directory store keeps them
    assert values[1] in ("Infinity", 1.7976931348623157e308)
    assert values[2] in ("-Infinity", -1.7976931348623157e308)
    assert isinstance(history[0]["timestamp"], int)
    y = api.ok_get("metrics/get-history", {"run_id": run_id, "metric_key": "y"})["metrics"]
    assert y[0]["value"] == "NaN" and math.isnan(float(y[0]["value"]))


def test_get_query_booleans_and_repeated_keys(api: Api) -> None:
    runs = [api.new_run()["info"]["run_id"] for _ in range(2)]
    for run_id in runs:
        api.ok_post("runs/log-metric", {"run_id": run_id, "key": "r", "value": 1, "timestamp": 1})
    metrics = api.ok_get(
        "metrics/get-history-bulk-interval", [("run_ids", runs[0]), ("run_ids", runs[1]), ("metric_key", "r")]
    )
    assert {m["run_id"] for m in metrics["metrics"]} == set(runs)
    error_of(api.get("experiments/search", {"max_results": "ten"}), 400, "INVALID_PARAMETER_VALUE")


def test_empty_lists_are_omitted_and_empty_responses_are_objects(api: Api) -> None:
    run = api.new_run()
    assert "metrics" not in run["data"] and "params" not in run["data"]
    assert api.ok_post("runs/set-tag", {"run_id": run["info"]["run_id"], "key": "a", "value": ""}) == {}
    tags = {
        t["key"]: t["value"] for t in api.ok_get("runs/get", {"run_id": run["info"]["run_id"]})["run"]["data"]["tags"]
    }
    assert tags["a"] == ""


def test_responses_are_compact_json(api: Api) -> None:
    response = api.get("experiments/get", {"experiment_id": "0"})
    assert response.headers["content-type"] == "application/json"
    assert b"\n" not in response.content


LOG_BATCH = next(ep.request for ep in ENDPOINTS if ep.path == "/mlflow/runs/log-batch")
GET_HISTORY = next(ep.request for ep in ENDPOINTS if ep.path == "/mlflow/metrics/get-history")


def test_query_strings_decode_like_a_form() -> None:
    query = b"metric_key=a%20b+c&run_id=&run_uuid&max_results=5&max_results=7&page_token=x%3Dy&&unknown=1"
    assert wire.query_fields(GET_HISTORY, query) == {
        "metric_key": "a b c",
        "run_id": "",
        "run_uuid": "",
        "max_results": "7",  # the last of repeated values
        "page_token": "x=y",
    }
    assert wire.query_fields(GET_HISTORY, b"runId=r1&metricKey=%E2%82%AC") == {"runId": "r1", "metricKey": "€"}
    assert wire.query_fields(GET_HISTORY, b"") == {}


def test_values_that_need_converting_parse_like_plain_ones() -> None:
    plain = {"key": "k", "value": 0.5, "timestamp": 1700000000000, "step": 3, "extra": [1]}
    converted = [
        {"key": "k", "value": "0.5", "timestamp": "1700000000000", "step": 3.0},
        {"key": "k", "value": 0.5, "timestamp": 1700000000000, "step": "3", "model_id": None},
        {"key": "k", "value": 0.5, "timestamp": 1.7e12, "step": 3},
    ]
    parsed = wire.parse(LOG_BATCH, {"run_id": "r", "metrics": [plain, *converted]})
    expected = {"key": "k", "value": 0.5, "timestamp": 1700000000000, "step": 3}
    assert parsed == {"run_id": "r", "metrics": [expected] * 4}
    one = wire.parse(LOG_BATCH, {"metrics": [{"key": "k", "value": 1, "timestamp": 2}]})["metrics"][0]
    assert one == {"key": "k", "value": 1.0, "timestamp": 2} and isinstance(one["value"], float)


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (
            {"key": "k", "value": 1.0, "timestamp": 2**63},
            "Invalid value 9223372036854775808 for parameter 'metrics[1].timestamp'",
        ),
        ({"key": "", "value": 1.0, "timestamp": 1}, "Missing value for required parameter 'metrics[1].key'."),
        ({"key": "k", "value": True, "timestamp": 1}, "Invalid value true for parameter 'metrics[1].value'"),
        ({"key": "k", "value": 1.0}, "Missing value for required parameter 'metrics[1].timestamp'."),
        (
            {"key": "k", "value": 1.0, "timestamp": 1, "dataset_name": "a", "datasetName": "b"},
            "Request specifies both 'dataset_name' and 'datasetName'",
        ),
    ],
)
def test_errors_in_a_list_name_the_item(metric: dict, message: str) -> None:
    good = {"key": "k", "value": 1.0, "timestamp": 1}
    with pytest.raises(MltrailException) as caught:
        wire.parse(LOG_BATCH, {"run_id": "r", "metrics": [good, metric, good]})
    assert caught.value.message.startswith(message)


def test_a_uniform_list_of_plain_items_parses_like_item_by_item() -> None:
    metrics = [{"key": f"k{i}", "value": i / 3, "timestamp": 1700000000000 + i, "step": i} for i in range(50)]
    parsed = wire.parse(LOG_BATCH, {"run_id": "r", "metrics": metrics})
    assert parsed["metrics"] == [wire.parse(LOG_BATCH, {"metrics": [m]})["metrics"][0] for m in metrics]
    with_extra = [{**m, "extra": 1} for m in metrics]  # unknown fields are dropped, as item by item
    assert wire.parse(LOG_BATCH, {"metrics": with_extra})["metrics"] == metrics
    lowest_step = [{**m, "step": -(2**63)} for m in metrics[:3]]  # the bounds are inclusive
    assert wire.parse(LOG_BATCH, {"metrics": lowest_step})["metrics"] == lowest_step
