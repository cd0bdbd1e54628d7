"""Metrics: exact values, int64 ranges, latest-value rule, history order and paging, idempotence."""

from __future__ import annotations

import math

import pytest

from mltrail.entities import Metric
from mltrail.errors import ErrorCode
from mltrail.store.base import TrackingStore

from .helpers import metric, raises

MAX_INT64 = 2**63 - 1
MIN_INT64 = -(2**63)


def _points(store: TrackingStore, run_id: str, key: str) -> list[tuple[float, int, int]]:
    return [(m.value, m.timestamp, m.step) for m in store.get_metric_history(run_id, key)]


def _same_float(a: float, b: float) -> bool:
    """Equal as doubles, NaN included (the sign of zero is not kept by every database)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


SPECIAL_VALUES = {
    "nan": math.nan,
    "pos_inf": math.inf,
    "neg_inf": -math.inf,
    "max_double": 1.7976931348623157e308,
    "min_double": -1.7976931348623157e308,
    "point_three": 0.1 + 0.2,  # 0.30000000000000004: needs a real double column, not FLOAT
    "tiny": 1e-300,
    "neg_zero": -0.0,
    "big_int": float(2**53 + 1),
}


def test_special_values_round_trip_exactly(store: TrackingStore, run_id: str) -> None:
    for key, value in SPECIAL_VALUES.items():
        store.log_metric(run_id, metric(key, value))
    latest = {m.key: m.value for m in store.get_run(run_id).data.latest_metrics}
    assert latest.keys() == SPECIAL_VALUES.keys()
    for key, value in SPECIAL_VALUES.items():
        assert _same_float(latest[key], value), (key, latest[key])
        (history,) = store.get_metric_history(run_id, key)
        assert _same_float(history.value, value), (key, history.value)


def test_int64_steps_and_timestamps(store: TrackingStore, run_id: str) -> None:
    points = [(1.0, MAX_INT64, MAX_INT64), (2.0, 0, MIN_INT64), (3.0, 5, -5), (4.0, 7, 0)]
    for value, timestamp, step in points:
        store.log_metric(run_id, Metric("m", value, timestamp, step))
    assert sorted(_points(store, run_id, "m")) == sorted(points)
    (latest,) = store.get_run(run_id).data.latest_metrics
    assert (latest.value, latest.timestamp, latest.step) == (1.0, MAX_INT64, MAX_INT64)


def test_negative_steps_order_below_zero(store: TrackingStore, run_id: str) -> None:
    store.log_metric(run_id, Metric("m", 1.0, 100, -1))
    store.log_metric(run_id, Metric("m", 2.0, 50, -10))
    assert store.get_run(run_id).data.metrics == {"m": 1.0}


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (Metric("m", 1.0, -1, 0), "Timestamp must be a nonnegative long"),
        (Metric("m", 1.0, 2**63, 0), "Timestamp must be a nonnegative long"),
        (Metric("m", 1.0, 0, 2**63), "Step must be a valid long"),
        (Metric("m", 1.0, 0, 1.5), "Step must be a valid long"),  # type: ignore[arg-type]
        (Metric("m", "abc", 0, 0), "valid double"),  # type: ignore[arg-type]
        (Metric("m", True, 0, 0), "valid double"),
        (Metric("m", None, 0, 0), "valid double"),  # type: ignore[arg-type]
        (Metric(None, 1.0, 0, 0), "Missing value for required parameter"),  # type: ignore[arg-type]
    ],
    ids=[
        "ts-negative",
        "ts-overflow",
        "step-overflow",
        "step-float",
        "value-str",
        "value-bool",
        "value-none",
        "no-key",
    ],
)
def test_invalid_metrics_are_rejected(store: TrackingStore, run_id: str, bad: Metric, fragment: str) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, fragment):
        store.log_metric(run_id, bad)
    assert store.get_run(run_id).data.latest_metrics == []


def test_same_point_twice_is_stored_once(store: TrackingStore, run_id: str) -> None:
    point = Metric("m", 0.5, 100, 3)
    store.log_metric(run_id, point)
    store.log_metric(run_id, point)
    store.log_batch(run_id, metrics=[point, point])
    assert _points(store, run_id, "m") == [(0.5, 100, 3)]
    nan_point = Metric("n", math.nan, 100, 3)
    store.log_metric(run_id, nan_point)
    store.log_metric(run_id, nan_point)
    assert len(store.get_metric_history(run_id, "n")) == 1
    # A different value at the same timestamp and step is a different point.
    store.log_metric(run_id, Metric("m", 0.6, 100, 3))
    assert sorted(_points(store, run_id, "m")) == [(0.5, 100, 3), (0.6, 100, 3)]


def test_latest_value_rule(store: TrackingStore, run_id: str) -> None:
    """Latest = max step, then max timestamp, then max value; arrival order does not matter."""

    def latest() -> tuple[float, int, int]:
        (m,) = store.get_run(run_id).data.latest_metrics
        return (m.value, m.timestamp, m.step)

    steps = [
        ((1.0, 100, 5), (1.0, 100, 5)),
        ((2.0, 50, 10), (2.0, 50, 10)),  # higher step wins although older
        ((3.0, 900, 3), (2.0, 50, 10)),  # out-of-order lower step: no change
        ((4.0, 60, 10), (4.0, 60, 10)),  # same step, newer timestamp wins
        ((0.5, 60, 10), (4.0, 60, 10)),  # same step and timestamp, lower value: no change
        ((7.0, 60, 10), (7.0, 60, 10)),  # same step and timestamp, higher value wins
        ((9.0, 59, 10), (7.0, 60, 10)),  # same step, older timestamp: no change
    ]
    for (value, timestamp, step), expected in steps:
        store.log_metric(run_id, Metric("m", value, timestamp, step))
        assert latest() == expected, (value, timestamp, step)
    assert store.get_run(run_id).data.metrics == {"m": 7.0}
    assert len(store.get_metric_history(run_id, "m")) == len(steps)


def test_latest_value_rule_in_one_batch(store: TrackingStore, run_id: str) -> None:
    store.log_batch(
        run_id,
        metrics=[Metric("m", 3.0, 10, 2), Metric("m", 1.0, 99, 1), Metric("m", 2.0, 5, 2), Metric("m", 0.0, 10, 2)],
    )
    (latest,) = store.get_run(run_id).data.latest_metrics
    assert (latest.value, latest.timestamp, latest.step) == (3.0, 10, 2)


def test_history_order_and_paging(store: TrackingStore, run_id: str) -> None:
    points = [(5.0, 30, 1), (1.0, 10, 2), (3.0, 20, 0), (2.0, 10, 1), (0.5, 10, 1), (4.0, 20, 0), (6.0, 40, -3)]
    store.log_batch(run_id, metrics=[Metric("m", v, t, s) for v, t, s in points[:4]])
    for value, timestamp, step in points[4:]:
        store.log_metric(run_id, Metric("m", value, timestamp, step))
    expected = sorted(points, key=lambda p: (p[1], p[2], p[0]))  # (timestamp, step, value)
    history = store.get_metric_history(run_id, "m")
    assert [(m.value, m.timestamp, m.step) for m in history] == expected
    assert {m.key for m in history} == {"m"}
    assert history.token is None

    pages: list[list[tuple[float, int, int]]] = []
    token = None
    while True:
        page = store.get_metric_history(run_id, "m", max_results=3, page_token=token)
        pages.append([(m.value, m.timestamp, m.step) for m in page])
        token = page.token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [p for page in pages for p in page] == expected

    assert list(store.get_metric_history(run_id, "unknown")) == []


def test_history_bad_page_token(store: TrackingStore, run_id: str) -> None:
    store.log_metric(run_id, metric("m", 1.0))
    with raises(ErrorCode.INVALID_PARAMETER_VALUE):
        store.get_metric_history(run_id, "m", max_results=1, page_token="not a token")
