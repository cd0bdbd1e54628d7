"""Values that databases store differently: NaN/±Inf, unicode, case and trailing spaces, LIKE wildcards."""

from __future__ import annotations

import math

import pytest

from mltrail.entities import Metric, Param, RunTag
from mltrail.errors import MltrailException
from mltrail.store.sql import SqlStore

# -0.0 is not here: SQLite stores it as the integer 0 and returns +0.0 (equal, but the sign is lost).
SPECIAL = [math.nan, math.inf, -math.inf, 0.0, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 0.1, 1 / 3]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_nan_and_infinities_round_trip_exactly(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    store.log_batch(run_id, metrics=[Metric("m", v, 100 + i, i) for i, v in enumerate(SPECIAL)])
    history = store.get_metric_history(run_id, "m")
    assert [m.step for m in history] == list(range(len(SPECIAL)))
    for point, expected in zip(history, SPECIAL, strict=True):
        assert _same(point.value, expected), (point.value, expected)
    # Each special value is also the latest value of its own key.
    store.log_batch(run_id, metrics=[Metric(f"k{i}", v, 1, 0) for i, v in enumerate(SPECIAL)])
    latest = store.get_run(run_id).data.metrics
    for i, expected in enumerate(SPECIAL):
        assert _same(latest[f"k{i}"], expected)


def test_special_values_compare_like_ieee_doubles(store: SqlStore, new_experiment: str) -> None:
    runs = {}
    for label, value in [("nan", math.nan), ("inf", math.inf), ("ninf", -math.inf), ("one", 1.0), ("max", 1.7e308)]:
        run_id = store.create_run(new_experiment, run_name=label).info.run_id
        store.log_metric(run_id, Metric("m", value, 1, 0))
        runs[run_id] = label

    def names(filter_string: str) -> set[str]:
        return {runs[r.info.run_id] for r in store.search_runs([new_experiment], filter_string)}

    assert names("metrics.m > 1") == {"inf", "max"}
    assert names("metrics.m >= 1") == {"inf", "max", "one"}
    assert names("metrics.m < 1") == {"ninf"}
    assert names("metrics.m <= 1e309") == {"inf", "max", "one", "ninf"}  # 1e309 parses as +Inf
    assert names("metrics.m = 1") == {"one"}
    assert names("metrics.m != 1") == {"nan", "inf", "ninf", "max"}
    assert names("not metrics.m > 1") == {"nan", "ninf", "one"}


def test_metric_order_puts_nan_then_missing_last_in_both_directions(store: SqlStore, new_experiment: str) -> None:
    values = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "two": 2.0, "one": 1.0, "missing": None}
    for name, value in values.items():
        run_id = store.create_run(new_experiment, run_name=name).info.run_id
        if value is not None:
            store.log_metric(run_id, Metric("m", value, 1, 0))

    def order(direction: str) -> list[str]:
        runs = store.search_runs([new_experiment], order_by=[f"metrics.m {direction}"])
        return [r.info.run_name for r in runs]

    assert order("ASC") == ["ninf", "one", "two", "inf", "nan", "missing"]
    assert order("DESC") == ["inf", "two", "one", "ninf", "nan", "missing"]


@pytest.mark.parametrize("key", ["λ/μ:σ", "𝔘𝔫𝔦_ключ", "日本語 キー", "a.b-c_d/e f"])
def test_unicode_keys_and_values_round_trip(store: SqlStore, new_experiment: str, key: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    value = f"värde-{key}-😀"
    store.log_batch(run_id, metrics=[Metric(key, 1.5, 1, 0)], params=[Param(key, value)], tags=[RunTag(key, value)])
    run = store.get_run(run_id)
    assert run.data.params[key] == value
    assert run.data.tags[key] == value
    assert run.data.metrics[key] == 1.5
    assert [m.value for m in store.get_metric_history(run_id, key)] == [1.5]
    assert [r.info.run_id for r in store.search_runs([new_experiment], f"params.`{key}` = '{value}'")] == [run_id]


def test_keys_and_values_are_case_and_trailing_space_sensitive(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    store.log_batch(run_id, params=[Param("Key", "A"), Param("key", "a"), Param("key ", "a ")])
    assert store.get_run(run_id).data.params == {"Key": "A", "key": "a", "key ": "a "}
    with pytest.raises(MltrailException) as info:
        store.log_param(run_id, Param("key", "a "))
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    name = f"Case-{run_id}"
    store.create_experiment(name)
    store.create_experiment(name.lower())
    store.create_experiment(name + " ")
    assert store.get_experiment_by_name(name.upper()) is None
    assert store.get_experiment_by_name(name + " ").name == name + " "


def test_like_is_case_sensitive_and_ilike_is_not(store: SqlStore, new_experiment: str) -> None:
    run_ids = {}
    for value in ["Alpha", "alpha", "ALPHA_1", "100%", "1000"]:
        run_id = store.create_run(new_experiment).info.run_id
        store.set_tag(run_id, RunTag("t", value))
        run_ids[run_id] = value

    def values(filter_string: str) -> set[str]:
        return {run_ids[r.info.run_id] for r in store.search_runs([new_experiment], filter_string)}

    assert values("tags.t LIKE 'al%'") == {"alpha"}
    assert values("tags.t ILIKE 'al%'") == {"Alpha", "alpha", "ALPHA_1"}
    assert values("tags.t LIKE '_lpha'") == {"Alpha", "alpha"}
    assert values("tags.t = 'alpha'") == {"alpha"}
    assert values(r"tags.t LIKE '100\%'") == {"100%"}  # escaped wildcard matches only a literal '%'
    assert values("tags.t LIKE '100%'") == {"100%", "1000"}
