"""Params, tags, key rules, long and unicode values, dataset inputs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mltrail.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mltrail.errors import ErrorCode
from mltrail.store.base import TrackingStore

from .helpers import metric, raises

RUN_NAME_TAG = "mlflow.runName"


def _user_tags(store: TrackingStore, run_id: str) -> dict[str, str]:
    return {k: v for k, v in store.get_run(run_id).data.tags.items() if k != RUN_NAME_TAG}


def test_log_param_is_immutable(store: TrackingStore, run_id: str) -> None:
    store.log_param(run_id, Param("p", "v1"))
    store.log_param(run_id, Param("p", "v1"))  # same value again: fine
    store.log_param(run_id, Param("empty", ""))
    with raises(
        ErrorCode.INVALID_PARAMETER_VALUE,
        "Changing param values is not allowed. Param with key='p' was already logged with value='v1' "
        f"for run ID='{run_id}'. Attempted logging new value 'v2'.",
    ):
        store.log_param(run_id, Param("p", "v2"))
    for changed in ("v1 ", "V1", ""):  # a different value, even if a case- or space-insensitive collation says equal
        with raises(ErrorCode.INVALID_PARAMETER_VALUE, "Changing param values is not allowed"):
            store.log_param(run_id, Param("p", changed))
    assert store.get_run(run_id).data.params == {"p": "v1", "empty": ""}


def test_tags_set_overwrite_delete(store: TrackingStore, run_id: str) -> None:
    store.set_tag(run_id, RunTag("t", "v1"))
    store.set_tag(run_id, RunTag("t", "v2"))
    store.set_tag(run_id, RunTag("other", ""))
    store.set_tag(run_id, RunTag("padded", " v  "))
    assert _user_tags(store, run_id) == {"t": "v2", "other": "", "padded": " v  "}
    store.delete_tag(run_id, "padded")
    store.delete_tag(run_id, "t")
    assert _user_tags(store, run_id) == {"other": ""}
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST, f"No tag with name: t in run with id {run_id}"):
        store.delete_tag(run_id, "t")
    store.set_tag(run_id, RunTag("t", "back"))
    assert _user_tags(store, run_id) == {"other": "", "t": "back"}


# --- key rules ------------------------------------------------------------------------------------------------------

KEY_WRITERS: dict[str, Callable[[TrackingStore, str, str], object]] = {
    "metric": lambda store, run_id, key: store.log_metric(run_id, metric(key, 1.0)),
    "param": lambda store, run_id, key: store.log_param(run_id, Param(key, "v")),
    "tag": lambda store, run_id, key: store.set_tag(run_id, RunTag(key, "v")),
    "batch-metric": lambda store, run_id, key: store.log_batch(run_id, metrics=[metric(key, 1.0)]),
    "batch-param": lambda store, run_id, key: store.log_batch(run_id, params=[Param(key, "v")]),
    "batch-tag": lambda store, run_id, key: store.log_batch(run_id, tags=[RunTag(key, "v")]),
}
BAD_KEYS = ["a//b", "./x", "..", "a/../b", "x/", "/abs", ".", "bad!char", "semi;colon", "back\\slash", "x" * 251, ""]
GOOD_KEYS = ["x" * 250, "a/b/c", "with space", "colon:ok", "dash-dot.under_score", "λ", "实验", ".hidden", "a..b"]


def _stored_keys(store: TrackingStore, run_id: str) -> set[str]:
    data = store.get_run(run_id).data
    return {m.key for m in data.latest_metrics} | data.params.keys() | (data.tags.keys() - {RUN_NAME_TAG})


@pytest.mark.parametrize("writer", KEY_WRITERS.values(), ids=KEY_WRITERS.keys())
def test_bad_keys_are_rejected(
    store: TrackingStore, run_id: str, writer: Callable[[TrackingStore, str, str], object]
) -> None:
    for key in BAD_KEYS:
        with raises(ErrorCode.INVALID_PARAMETER_VALUE):
            writer(store, run_id, key)
    assert _stored_keys(store, run_id) == set()


@pytest.mark.parametrize("writer", KEY_WRITERS.values(), ids=KEY_WRITERS.keys())
def test_good_keys_are_accepted(
    store: TrackingStore, run_id: str, writer: Callable[[TrackingStore, str, str], object]
) -> None:
    for key in GOOD_KEYS:
        writer(store, run_id, key)
    assert _stored_keys(store, run_id) == set(GOOD_KEYS)


def test_key_error_messages(store: TrackingStore, run_id: str) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "exceeds the maximum length of 250"):
        store.log_param(run_id, Param("k" * 251, "v"))
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, 'Invalid value "a//b"', "Names may only contain alphanumerics"):
        store.set_tag(run_id, RunTag("a//b", "v"))


def test_keys_are_case_and_trailing_space_sensitive(store: TrackingStore, run_id: str) -> None:
    keys = ["k", "K", "k "]
    store.log_batch(
        run_id,
        metrics=[metric(k, float(i)) for i, k in enumerate(keys)],
        params=[Param(k, str(i)) for i, k in enumerate(keys)],
        tags=[RunTag(k, str(i)) for i, k in enumerate(keys)],
    )
    data = store.get_run(run_id).data
    expected = {k: str(i) for i, k in enumerate(keys)}
    assert data.params == expected
    assert {k: v for k, v in data.tags.items() if k != RUN_NAME_TAG} == expected
    assert data.metrics == {k: float(i) for i, k in enumerate(keys)}
    assert [m.value for m in store.get_metric_history(run_id, "K")] == [1.0]


# --- values ---------------------------------------------------------------------------------------------------------


def test_unicode_keys_and_values(store: TrackingStore, run_id: str) -> None:
    store.log_param(run_id, Param("λ", "α β 实验 🚀"))
    store.set_tag(run_id, RunTag("实验", "🎉 emoji 👩‍🔬"))
    store.log_metric(run_id, Metric("损失/λ", 0.25, 1, 0))
    data = store.get_run(run_id).data
    assert data.params == {"λ": "α β 实验 🚀"}
    assert data.tags["实验"] == "🎉 emoji 👩‍🔬"
    assert data.metrics == {"损失/λ": 0.25}
    assert [m.value for m in store.get_metric_history(run_id, "损失/λ")] == [0.25]


@pytest.mark.parametrize(
    ("make", "limit"),
    [(lambda v: Param("long", v), 6000), (lambda v: RunTag("long", v), 8000)],
    ids=["param", "tag"],
)
@pytest.mark.parametrize("char", ["x", "实"], ids=["ascii", "multibyte"])
def test_long_values_up_to_the_limit_are_kept_whole(
    store: TrackingStore, run_id: str, make: Callable[[str], Param | RunTag], limit: int, char: str
) -> None:
    value = char * limit
    item = make(value)
    store.log_batch(run_id, **({"params": [item]} if isinstance(item, Param) else {"tags": [item]}))
    data = store.get_run(run_id).data
    assert (data.params if isinstance(item, Param) else data.tags)["long"] == value


def test_over_long_values_are_truncated_by_default(store: TrackingStore, run_id: str) -> None:
    store.log_param(run_id, Param("p", "p" * 6001))
    store.set_tag(run_id, RunTag("t", "t" * 8001))
    data = store.get_run(run_id).data
    assert data.params["p"] == "p" * 6000
    assert data.tags["t"] == "t" * 8000


def test_over_long_values_are_rejected_when_truncation_is_off(
    store: TrackingStore, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTRAIL_TRUNCATE_LONG_VALUES", "false")
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "exceeds the maximum length of 6000"):
        store.log_param(run_id, Param("p", "p" * 6001))
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "exceeds the maximum length of 8000"):
        store.set_tag(run_id, RunTag("t", "t" * 8001))
    assert _stored_keys(store, run_id) == set()


# --- inputs ---------------------------------------------------------------------------------------------------------

TRAIN = DatasetInput(
    Dataset("train", "d1", "local", '{"uri": "/data/train.csv"}', '{"x": "int"}', '{"rows": 10}'),
    (InputTag("mlflow.data.context", "training"),),
)
EVAL = DatasetInput(
    Dataset("eval", "d2", "local", '{"uri": "/data/eval.csv"}'), (InputTag("mlflow.data.context", "eval"),)
)


def test_log_inputs(store: TrackingStore, run_id: str) -> None:
    store.log_inputs(run_id, [TRAIN])
    assert store.get_run(run_id).inputs.dataset_inputs == [TRAIN]
    store.log_inputs(run_id, [TRAIN, EVAL])  # the same dataset twice is recorded once
    assert set(store.get_run(run_id).inputs.dataset_inputs) == {TRAIN, EVAL}
    store.log_inputs(run_id, [])
    assert len(store.get_run(run_id).inputs.dataset_inputs) == 2


def test_datasets_are_shared_between_runs_of_an_experiment(store: TrackingStore, experiment_id: str) -> None:
    runs = [store.create_run(experiment_id).info.run_id for _ in range(2)]
    for run_id in runs:
        store.log_inputs(run_id, [TRAIN])
    assert [store.get_run(r).inputs.dataset_inputs for r in runs] == [[TRAIN], [TRAIN]]
