"""search_runs: every identifier kind and operator, our extensions, ordering, view types, errors."""

from __future__ import annotations

import pytest

from mltrail.entities import ViewType
from mltrail.errors import ErrorCode
from mltrail.store.base import TrackingStore

from .conftest import StoreUnderTest
from .helpers import new_run, raises, run_names
from .search_data import SearchData, build_search_data


@pytest.fixture(scope="module")
def data(store_under_test: StoreUnderTest) -> SearchData:
    return build_search_data(store_under_test.store)


def _search(store: TrackingStore, data: SearchData, filter_string: str | None = None, **kwargs: object) -> list[str]:
    """Run names found in the main experiment; ``{r1}``... in the filter become run ids."""
    if filter_string:
        filter_string = filter_string.format(**data.ids)
    return run_names(store.search_runs([data.main], filter_string, **kwargs))  # type: ignore[arg-type]


FILTERS = {
    # metrics compare the latest value; NaN satisfies only !=; runs without the metric never match
    "metrics.loss = 0.5": ["r1"],
    "metrics.loss != 0.5": ["r5", "r3", "r2"],
    "metrics.loss < 0.5": ["r2"],
    "metrics.loss <= 0.5": ["r2", "r1"],
    "metrics.loss > 0.5": ["r5"],
    "metrics.loss >= 0.3": ["r5", "r2", "r1"],
    "metrics.loss > 1": ["r5"],
    "metric.acc > 0.85": ["r2"],
    "metrics.`loss` = 0.3": ["r2"],
    # params
    "params.lr = '0.01'": ["r3", "r1"],
    'params.lr = "0.01"': ["r3", "r1"],
    "params.lr != '0.01'": ["r5", "r2"],
    "params.opt LIKE 'a%'": ["r1"],
    "params.opt LIKE '_dam'": ["r3", "r1"],
    "params.opt ILIKE 'A%'": ["r3", "r1"],
    "params.model LIKE '%Net%'": ["r1"],
    "params.model ILIKE '%net%'": ["r2", "r1"],
    "params.lr IS NULL": ["r4"],
    "params.lr IS NOT NULL": ["r5", "r3", "r2", "r1"],
    "params.lr IN ('0.1', '1')": ["r5", "r2"],
    "params.lr NOT IN ('0.01')": ["r5", "r2"],
    "param.opt = 'ADAM'": [],
    # tags
    "tags.team = 'vision'": ["r3", "r1"],
    "tags.team != 'vision'": ["r5", "r2"],
    "tags.team LIKE 'vis%'": ["r3", "r1"],
    "tags.team ILIKE 'vis%'": ["r5", "r3", "r1"],
    "tags.env IS NULL": ["r4", "r3", "r2"],
    "tags.env IS NOT NULL": ["r5", "r1"],
    "tags.team IN ('nlp', 'Vision')": ["r5", "r2"],
    "tags.`mlflow.runName` = 'r1'": ["r1"],
    "tag.team = 'vision '": [],
    # attributes
    "attributes.run_name = 'r2'": ["r2"],
    "run_name ILIKE 'R1'": ["r1"],
    "attributes.run_name LIKE 'r%'": ["r5", "r4", "r3", "r2", "r1"],
    "attributes.run_name != 'r2'": ["r5", "r4", "r3", "r1"],
    "attributes.status = 'FINISHED'": ["r5", "r1"],
    "attributes.status != 'RUNNING'": ["r5", "r4", "r3", "r1"],
    "attributes.start_time > 2000": ["r5", "r4", "r3"],
    "attributes.start_time <= 2000": ["r2", "r1"],
    "attributes.start_time = 3000": ["r3"],
    "attributes.end_time >= 4500": ["r5", "r4"],
    "attributes.user_id = 'tester'": ["r5", "r4", "r3", "r2", "r1"],
    "attributes.run_id IN ('{r1}', '{r4}')": ["r4", "r1"],
    "attributes.run_id = '{r2}'": ["r2"],
    "attributes.run_id NOT IN ('{r1}', '{r4}')": ["r5", "r3", "r2"],
    # datasets
    "datasets.name = 'train'": ["r5", "r1"],
    "datasets.digest IN ('d2')": ["r5", "r2"],
    "datasets.context = 'eval'": ["r5", "r2"],
    "datasets.name LIKE 'ev%'": ["r5", "r2"],
    "datasets.name = 'train' AND datasets.context = 'eval'": ["r5"],
    # AND
    "metrics.loss < 1 AND params.lr = '0.01'": ["r1"],
    "params.lr = '0.01' and tags.team = 'vision' and metrics.loss >= 0.5": ["r1"],
    # extensions: OR, NOT, parentheses, min/max of the whole history
    "params.lr = '0.1' OR tags.team = 'nlp'": ["r2"],
    "params.lr = '1' OR metrics.loss < 0.4": ["r5", "r2"],
    "NOT (params.lr = '0.01')": ["r5", "r4", "r2"],
    "(params.lr = '0.01' OR params.lr = '1') AND tags.team ILIKE 'vision'": ["r5", "r3", "r1"],
    "params.lr = '1' OR (metrics.loss < 0.4 AND NOT (tags.team = 'vision'))": ["r5", "r2"],
    "metrics.loss.min < 0.25": ["r2"],
    "metrics.loss.max >= 0.9": ["r5", "r1"],
    "metrics.loss.min = 0.5 AND metrics.loss.max = 0.9": ["r1"],
}


@pytest.mark.parametrize(("filter_string", "expected"), FILTERS.items(), ids=FILTERS.keys())
def test_filter(store: TrackingStore, data: SearchData, filter_string: str, expected: list[str]) -> None:
    assert _search(store, data, filter_string) == expected


ORDERS = {
    "metrics.loss ASC": ["r2", "r1", "r5", "r3", "r4"],  # NaN after numbers, missing after NaN
    "metrics.loss DESC": ["r5", "r1", "r2", "r3", "r4"],
    "metrics.loss": ["r2", "r1", "r5", "r3", "r4"],
    "params.lr ASC": ["r3", "r1", "r2", "r5", "r4"],  # ties broken by start_time DESC
    "params.lr DESC": ["r5", "r2", "r3", "r1", "r4"],
    "tags.team ASC": ["r5", "r2", "r3", "r1", "r4"],  # binary order: 'Vision' < 'nlp' < 'vision'
    "tags.team DESC": ["r3", "r1", "r2", "r5", "r4"],
    "attributes.start_time ASC": ["r1", "r2", "r3", "r4", "r5"],
    "start_time DESC": ["r5", "r4", "r3", "r2", "r1"],
    "attributes.run_name DESC": ["r5", "r4", "r3", "r2", "r1"],
    "attributes.status ASC": ["r3", "r5", "r1", "r4", "r2"],
    "attributes.end_time DESC": ["r5", "r4", "r3", "r2", "r1"],
}


@pytest.mark.parametrize(("order_by", "expected"), ORDERS.items(), ids=ORDERS.keys())
def test_order_by(store: TrackingStore, data: SearchData, order_by: str, expected: list[str]) -> None:
    assert _search(store, data, order_by=[order_by]) == expected


def test_order_by_several_keys(store: TrackingStore, data: SearchData) -> None:
    assert _search(store, data, order_by=["metrics.acc DESC", "params.lr ASC"]) == ["r2", "r1", "r3", "r5", "r4"]
    assert _search(store, data, order_by=["tags.env ASC", "metrics.loss DESC"]) == ["r5", "r1", "r2", "r3", "r4"]


def test_default_order_breaks_start_time_ties_by_run_id(store: TrackingStore, experiment_id: str) -> None:
    ids = [new_run(store, experiment_id, start_time=500) for _ in range(4)]
    late = new_run(store, experiment_id, start_time=900)
    found = [r.info.run_id for r in store.search_runs([experiment_id])]
    assert found == [late, *sorted(ids)]
    ascending = [r.info.run_id for r in store.search_runs([experiment_id], order_by=["start_time ASC"])]
    assert ascending == [*sorted(ids), late]


def test_view_types(store: TrackingStore, data: SearchData) -> None:
    assert _search(store, data, run_view_type=ViewType.ACTIVE_ONLY) == ["r5", "r4", "r3", "r2", "r1"]
    assert _search(store, data, run_view_type=ViewType.DELETED_ONLY) == ["r6"]
    assert _search(store, data, run_view_type=ViewType.ALL) == ["r6", "r5", "r4", "r3", "r2", "r1"]
    assert _search(store, data, "metrics.loss < 0.2", run_view_type=ViewType.ALL) == ["r6"]


def test_several_experiments(store: TrackingStore, data: SearchData) -> None:
    found = store.search_runs([data.main, data.other], "params.lr = '0.01'")
    assert run_names(found) == ["r7", "r3", "r1"]
    assert run_names(store.search_runs([data.other])) == ["r7"]


def test_results_carry_full_runs(store: TrackingStore, data: SearchData) -> None:
    (run,) = store.search_runs([data.main], "attributes.run_name = 'r1'")
    assert run.info == store.get_run(data.ids["r1"]).info
    assert run.data.metrics == {"loss": 0.5, "acc": 0.8}
    assert run.data.params == {"lr": "0.01", "opt": "adam", "model": "ResNet50"}
    assert run.data.tags == {"team": "vision", "env": "prod", "mlflow.runName": "r1"}
    assert len(run.inputs.dataset_inputs) == 1


def test_paging_edges(store: TrackingStore, data: SearchData) -> None:
    everything = store.search_runs([data.main], max_results=5)
    assert run_names(everything) == ["r5", "r4", "r3", "r2", "r1"] and everything.token is None
    first = store.search_runs([data.main], max_results=4)
    assert run_names(first) == ["r5", "r4", "r3", "r2"] and first.token
    second = store.search_runs([data.main], max_results=4, page_token=first.token)
    assert run_names(second) == ["r1"] and second.token is None
    one = store.search_runs([data.main], "params.lr = '0.01'", max_results=1)
    two = store.search_runs([data.main], "params.lr = '0.01'", max_results=1, page_token=one.token)
    assert run_names([*one, *two]) == ["r3", "r1"] and two.token is None


INVALID_FILTERS = [
    "metrics.loss = 'abc'",
    "params.lr = 0.01",
    "params.lr = unquoted",
    "unknown.key = 'x'",
    "attributes.nope = 'x'",
    "metrics.loss LIKE '%'",
    "params.lr",
    "params.lr = 'a' AND",
    "metrics.loss < 1 XOR params.lr = 'a'",
    "(params.lr = 'a'",
    "attributes.start_time = 'abc'",
    "datasets.nope = 'x'",
]


@pytest.mark.parametrize("filter_string", INVALID_FILTERS)
def test_invalid_filters(store: TrackingStore, data: SearchData, filter_string: str) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE):
        store.search_runs([data.main], filter_string)


@pytest.mark.parametrize("order_by", ["metrics.loss SIDEWAYS", "nope.x", "attributes.nope", ""])
def test_invalid_order_by(store: TrackingStore, data: SearchData, order_by: str) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE):
        store.search_runs([data.main], order_by=[order_by])


@pytest.mark.parametrize("kwargs", [{"max_results": 0}, {"max_results": 50001}, {"page_token": "not a token"}])
def test_bad_paging_arguments(store: TrackingStore, data: SearchData, kwargs: dict[str, object]) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE):
        store.search_runs([data.main], **kwargs)  # type: ignore[arg-type]


def test_max_results_at_the_threshold(store: TrackingStore, data: SearchData) -> None:
    assert len(store.search_runs([data.main], max_results=50000)) == 5
