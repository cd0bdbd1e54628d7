"""log_batch: limits, all-or-nothing, duplicate params, idempotent replay."""

from __future__ import annotations

import pytest

from mltrail.entities import Metric, Param, RunTag
from mltrail.errors import ErrorCode
from mltrail.store.base import TrackingStore

from .helpers import metric, raises

RUN_NAME_TAG = "mlflow.runName"


def _metrics(n: int, key: str = "m") -> list[Metric]:
    return [Metric(key, float(i), 1000 + i, i) for i in range(n)]


def _params(n: int) -> list[Param]:
    return [Param(f"p{i}", str(i)) for i in range(n)]


def _tags(n: int) -> list[RunTag]:
    return [RunTag(f"t{i}", str(i)) for i in range(n)]


def _snapshot(store: TrackingStore, run_id: str) -> tuple[object, ...]:
    """Everything a batch could have touched, in a comparable form (floats by repr, so NaN equals NaN)."""
    data = store.get_run(run_id).data
    latest = sorted((m.key, repr(m.value), m.timestamp, m.step) for m in data.latest_metrics)
    history = [(repr(m.value), m.timestamp, m.step) for m in store.get_metric_history(run_id, "m")]
    return latest, history, data.params, data.tags


def test_batch_writes_everything(store: TrackingStore, run_id: str) -> None:
    store.log_batch(run_id, metrics=[*_metrics(3), metric("other", 2.5)], params=_params(2), tags=_tags(2))
    data = store.get_run(run_id).data
    assert data.metrics == {"m": 2.0, "other": 2.5}
    assert data.params == {"p0": "0", "p1": "1"}
    assert data.tags == {"t0": "0", "t1": "1", RUN_NAME_TAG: "the-run"}
    assert len(store.get_metric_history(run_id, "m")) == 3


def test_batch_at_the_limits_is_accepted(store: TrackingStore, run_id: str) -> None:
    store.log_batch(run_id, metrics=_metrics(1000))
    store.log_batch(run_id, params=_params(100), tags=_tags(100))
    data = store.get_run(run_id).data
    assert len(store.get_metric_history(run_id, "m")) == 1000
    assert (len(data.params), len(data.tags)) == (100, 101)


@pytest.mark.parametrize(
    ("metrics", "params", "tags", "fragment"),
    [
        (1001, 0, 0, "at most 1000 metrics. Got 1001 metrics"),
        (0, 101, 0, "at most 100 params. Got 101 params"),
        (0, 0, 101, "at most 100 tags. Got 101 tags"),
        (900, 100, 1, "at most 1000 total entities. Got 1001 total entities"),
    ],
    ids=["metrics", "params", "tags", "total"],
)
def test_batch_over_the_limits_writes_nothing(
    store: TrackingStore, run_id: str, metrics: int, params: int, tags: int, fragment: str
) -> None:
    before = _snapshot(store, run_id)
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "A batch logging request can contain", fragment):
        store.log_batch(run_id, metrics=_metrics(metrics), params=_params(params), tags=_tags(tags))
    assert _snapshot(store, run_id) == before


def test_duplicate_param_keys_in_one_batch(store: TrackingStore, run_id: str) -> None:
    store.log_batch(run_id, params=[Param("p", "same"), Param("p", "same")])
    assert store.get_run(run_id).data.params == {"p": "same"}
    before = _snapshot(store, run_id)
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "Duplicate parameter keys have been submitted: ['q']"):
        store.log_batch(run_id, metrics=_metrics(2), params=[Param("q", "1"), Param("q", "2")], tags=_tags(1))
    assert _snapshot(store, run_id) == before


BAD_BATCHES = {
    "bad-metric-key-last": {"metrics": [*_metrics(5), metric("a//b", 1.0)]},
    "bad-metric-value-middle": {"metrics": [*_metrics(2), Metric("m", "x", 1, 1), *_metrics(2, "n")]},  # type: ignore[arg-type]
    "bad-metric-timestamp": {"metrics": [*_metrics(2), Metric("m", 1.0, -5, 0)]},
    "bad-param-key-first": {"params": [Param("..", "v"), *_params(3)], "metrics": _metrics(3)},
    "bad-tag-key-last": {"metrics": _metrics(3), "params": _params(3), "tags": [*_tags(3), RunTag("x" * 251, "v")]},
    "param-conflicts-with-stored-value": {
        "metrics": _metrics(3),
        "params": [Param("fixed", "other")],
        "tags": _tags(2),
    },
}


@pytest.mark.parametrize("batch", BAD_BATCHES.values(), ids=BAD_BATCHES.keys())
def test_a_bad_item_anywhere_writes_nothing(store: TrackingStore, run_id: str, batch: dict[str, list]) -> None:
    store.log_param(run_id, Param("fixed", "value"))
    before = _snapshot(store, run_id)
    with raises(ErrorCode.INVALID_PARAMETER_VALUE):
        store.log_batch(run_id, **batch)
    assert _snapshot(store, run_id) == before


def test_replaying_a_batch_is_harmless(store: TrackingStore, run_id: str) -> None:
    batch = {"metrics": [*_metrics(10), metric("nan", float("nan"))], "params": _params(5), "tags": _tags(5)}
    store.log_batch(run_id, **batch)
    first = _snapshot(store, run_id)
    store.log_batch(run_id, **batch)
    assert _snapshot(store, run_id) == first
    assert len(store.get_metric_history(run_id, "m")) == 10
    assert len(store.get_metric_history(run_id, "nan")) == 1
    # Replaying with tags changed is an update of those tags, not an error.
    store.log_batch(run_id, params=_params(5), tags=[RunTag("t0", "changed")])
    assert store.get_run(run_id).data.tags["t0"] == "changed"


def test_empty_batch_is_a_no_op(store: TrackingStore, run_id: str) -> None:
    before = _snapshot(store, run_id)
    store.log_batch(run_id)
    assert _snapshot(store, run_id) == before
