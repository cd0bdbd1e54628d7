"""The SQL store's reads as plain rows (what the server encodes): the same runs, pages and histories as the entity
reads, on every dialect, whichever way the page of a search is selected."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from mltrail.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag, ViewType
from mltrail.errors import ErrorCode, MltrailException
from mltrail.store.sql import SqlStore, loaders


def _runs(store: SqlStore, experiment_id: str, count: int, start: int = 1000) -> list[str]:
    """Runs started one after the other from ``start``."""
    run_ids = []
    for i in range(count):
        run = store.create_run(experiment_id, user_id="u", start_time=start + i, tags=[], run_name=f"r{i}")
        run_id = run.info.run_id
        store.log_batch(
            run_id,
            metrics=[
                Metric("loss", 1.0 / (i + 1), 5, 1),
                Metric("nan", math.nan, 5, 0),
                Metric("down", -math.inf, 6, 2),
            ],
            params=[Param("lr", str(i)), Param("depth", "3")],
            tags=[RunTag("team", f"t{i}")],
        )
        run_ids.append(run_id)
    return run_ids


def test_a_run_as_rows(store: SqlStore, new_experiment: str) -> None:
    (run_id,) = _runs(store, new_experiment, 1)
    dataset = Dataset("ds", "d1", "local", "/data", None, None)
    store.log_inputs(run_id, [DatasetInput(dataset, (InputTag("mlflow.data.context", "train"),))])

    rows = store.get_run_rows(run_id)

    assert rows.info == store.get_run(run_id).info
    assert repr(loaders.run_of(rows)) == repr(store.get_run(run_id))  # repr: NaN != NaN
    assert [(key, value) for key, value, _, _ in rows.metrics if key != "nan"] == [("down", -math.inf), ("loss", 1.0)]
    assert math.isnan(dict((key, value) for key, value, _, _ in rows.metrics)["nan"])
    assert rows.params == {"depth": "3", "lr": "0"}
    assert rows.tags["team"] == "t0" and rows.tags["mlflow.runName"] == "r0"
    assert rows.dataset_inputs == [DatasetInput(dataset, (InputTag("mlflow.data.context", "train"),))]
    with pytest.raises(MltrailException) as missing:
        store.get_run_rows("f" * 32)
    assert missing.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST


def _ids(page: list[loaders.RunRows]) -> list[str]:
    return [run.info.run_id for run in page]


@pytest.mark.parametrize("view", [ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL])
def test_plain_and_ordered_searches_page_alike(store: SqlStore, new_experiment: str, view: ViewType) -> None:
    run_ids = _runs(store, new_experiment, 5)
    store.delete_run(run_ids[1])
    other = store.create_experiment(f"{new_experiment}-other")
    other_ids = _runs(store, other, 2, start=2000)
    experiments = [new_experiment, other]
    # Without filter and order_by the page comes from one statement compiled once; with MLflow's default order
    # spelled out, from the statement built per search. Both page alike, one run at a time too.
    plain = store.search_run_rows(experiments, run_view_type=view)
    ordered = store.search_run_rows(experiments, run_view_type=view, order_by=["attribute.start_time DESC"])
    active = [*other_ids[::-1], *(run_id for run_id in run_ids[::-1] if run_id != run_ids[1])]
    expected = {ViewType.ACTIVE_ONLY: active, ViewType.DELETED_ONLY: [run_ids[1]]}.get(
        view, [*other_ids[::-1], *run_ids[::-1]]
    )
    assert _ids(plain) == _ids(ordered) == expected
    token, paged = None, []
    while True:
        page = store.search_run_rows(experiments, run_view_type=view, max_results=2, page_token=token)
        paged += _ids(page)
        if page.token is None:
            break
        token = page.token
    assert paged == expected
    entities = store.search_runs(experiments, run_view_type=view)
    assert repr(list(entities)) == repr([loaders.run_of(run) for run in plain])
    beyond_int64 = str(2**70)  # names no experiment, with or without a filter
    assert _ids(store.search_run_rows([beyond_int64, new_experiment], run_view_type=view)) == _ids(
        store.search_run_rows([new_experiment], run_view_type=view)
    )
    assert list(store.search_run_rows([beyond_int64], filter_string="params.lr = '0'", run_view_type=view)) == []


def test_history_points(store: SqlStore, new_experiment: str) -> None:
    (run_id,) = _runs(store, new_experiment, 1)
    store.log_batch(run_id, metrics=[Metric("h", step / 4, 100 + step, step) for step in range(5)])
    store.log_metric(run_id, Metric("h", math.inf, 200, 5))

    first = store.get_metric_history_points(run_id, "h", max_results=4)
    rest = store.get_metric_history_points(run_id, "h", max_results=4, page_token=first.token)

    assert list(first) == [(step / 4, 100 + step, step) for step in range(4)]
    assert list(rest) == [(1.0, 104, 4), (math.inf, 200, 5)] and rest.token is None
    assert store.get_metric_history(run_id, "h") == [Metric("h", v, ts, s) for v, ts, s in [*first, *rest]]
    assert store.get_metric_history_points(run_id, "h", max_results=4, page_token=rest.token or first.token) == rest
    assert list(store.get_metric_history_points(run_id, "unknown")) == []
    with pytest.raises(MltrailException) as missing:
        store.get_metric_history_points("f" * 32, "h")
    assert missing.value.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST


def test_baked_statements_keep_literals_and_percent_signs(store: SqlStore) -> None:
    statement = sa.select(sa.literal_column("'50%'"), sa.literal(7), sa.bindparam("given"))
    baked = loaders.Baked(statement)
    with store.engine.connect() as connection:
        assert baked.fetch(connection, {"given": "x%y"}) == [("50%", 7, "x%y")]
