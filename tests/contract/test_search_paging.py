"""Paging through many runs: no duplicates and no gaps, whatever the order and with ties."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from mltrail.entities import Metric, RunTag
from mltrail.store.base import TrackingStore

from .conftest import StoreUnderTest
from .helpers import new_experiment, run_names, search_all

N_RUNS = 250


def _x(i: int) -> float | None:
    """The metric ``x`` of run ``i`` (None: not logged)."""
    if i % 5 == 0:
        return None
    return math.nan if i % 7 == 0 else float(i % 10)


def _selected(i: int) -> bool:
    x = _x(i)
    return i % 4 == 1 or (x is not None and x >= 5)


SELECTED = [i for i in range(N_RUNS) if _selected(i)]


@pytest.fixture(scope="module")
def many_runs(store_under_test: StoreUnderTest) -> str:
    """250 runs with start_time ties (groups of 3) and metric/tag ties, NaNs and gaps."""
    store = store_under_test.store
    experiment_id = new_experiment(store, "paging")
    for i in range(N_RUNS):
        run = store.create_run(
            experiment_id, start_time=1000 + i // 3, run_name=f"run-{i:03d}", tags=[RunTag("group", str(i % 4))]
        )
        x = _x(i)
        if x is not None:
            store.log_metric(run.info.run_id, Metric("x", x, 1, 0))
    return experiment_id


@pytest.mark.parametrize(
    ("filter_string", "order_by", "expected"),
    [
        (None, None, range(N_RUNS)),
        (None, ["metrics.x ASC"], range(N_RUNS)),
        (None, ["metrics.x DESC", "tags.group ASC"], range(N_RUNS)),
        ("tags.group = '1' OR metrics.x >= 5", ["attributes.start_time ASC"], SELECTED),
    ],
    ids=["default", "metric-asc", "metric-desc-tag", "filtered"],
)
def test_paging_has_no_duplicates_and_no_gaps(
    store: TrackingStore, many_runs: str, filter_string: str | None, order_by: list[str] | None, expected: Sequence[int]
) -> None:
    whole = store.search_runs([many_runs], filter_string, max_results=1000, order_by=order_by)
    assert whole.token is None
    assert sorted(run_names(whole)) == [f"run-{i:03d}" for i in expected]
    paged = search_all(store, [many_runs], 7, filter_string=filter_string, order_by=order_by)
    assert [r.info.run_id for r in paged] == [r.info.run_id for r in whole]
