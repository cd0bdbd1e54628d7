"""search_runs / search_experiments compiled to SQL: semantics, ordering, paging and the number of queries."""

from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa

from mltrail.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import MltrailException
from mltrail.search.ast import And, Comparison, Identifier, Not, Or
from mltrail.store.sql import SqlStore, search_sql
from mltrail.store.sql import schema as t

from .helpers import StatementCounter, unique


@pytest.fixture
def runs(store: SqlStore, new_experiment: str) -> dict[str, str]:
    """Five runs with different data; name -> run id."""
    spec = {
        "a": ({"p": "x", "q": "1"}, {"t": "red"}, {"m": 1.0}),
        "b": ({"p": "y"}, {"t": "Red"}, {"m": 2.0}),
        "c": ({"p": "x"}, {}, {"m": 3.0}),
        "d": ({}, {"t": "blue"}, {}),
        "e": ({"q": "2"}, {"t": "red"}, {"m": 2.0}),
    }
    ids = {}
    for i, (name, (params, tags, metrics)) in enumerate(spec.items()):
        run_id = store.create_run(new_experiment, run_name=name, start_time=1000 + i).info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric(k, v, 1, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        ids[name] = run_id
    return ids


def _names(store: SqlStore, experiment_id: str, filter_string: str | None = None, **kwargs: object) -> list[str]:
    return [r.info.run_name for r in store.search_runs([experiment_id], filter_string, **kwargs)]  # type: ignore[arg-type]


def test_missing_keys_never_match_but_not_is_the_complement(
    store: SqlStore, new_experiment: str, runs: dict[str, str]
) -> None:
    def names(f: str) -> set[str]:
        return set(_names(store, new_experiment, f))

    assert names("params.p != 'x'") == {"b"}
    assert names("not params.p = 'x'") == {"b", "d", "e"}
    assert names("params.p IS NULL") == {"d", "e"}
    assert names("params.p IS NOT NULL") == {"a", "b", "c"}
    assert names("metrics.m > 1 or tags.t = 'blue'") == {"b", "c", "d", "e"}
    assert names("not (metrics.m > 1 or tags.t = 'blue')") == {"a"}
    assert names("(params.p = 'x' and tags.t ILIKE 'RED') or params.q = '2'") == {"a", "e"}
    assert names("params.p IN ('x', 'y') and not tags.t IN ('red')") == {"b", "c"}
    assert names("params.p NOT IN ('x')") == {"b"}
    assert names("not attributes.end_time > 0") == {"a", "b", "c", "d", "e"}  # NULL end_time: comparison false


def test_hand_built_ast_compiles_to_two_valued_sql(store: SqlStore, new_experiment: str, runs: dict[str, str]) -> None:
    p_is_x = Comparison(Identifier("param", "p"), "=", "x")
    q_exists = Comparison(Identifier("param", "q"), "IS NOT NULL", None)
    expr = Not(Or((And((p_is_x, q_exists)), Comparison(Identifier("metric", "m"), "<", 2.5))))
    clause = search_sql.run_filter(expr)
    with store.engine.connect() as connection:
        names = set(
            connection.execute(
                sa.select(t.runs.c.name).where(t.runs.c.experiment_id == int(new_experiment), clause)
            ).scalars()
        )
    assert names == {"c", "d"}


def test_attributes_and_run_name_follow_the_tag(store: SqlStore, new_experiment: str, runs: dict[str, str]) -> None:
    store.set_tag(runs["a"], RunTag("mlflow.runName", "renamed"))
    store.update_run_info(runs["b"], RunStatus.FINISHED, end_time=5000)
    assert _names(store, new_experiment, "attributes.run_name = 'renamed'") == ["renamed"]
    assert _names(store, new_experiment, "tags.`mlflow.runName` LIKE 'ren%'") == ["renamed"]
    assert _names(store, new_experiment, "status = 'FINISHED' and end_time >= 5000") == ["b"]
    assert _names(store, new_experiment, f"run_id IN ('{runs['c']}', '{runs['d']}')") == ["d", "c"]
    assert set(_names(store, new_experiment, "start_time < 1002")) == {"renamed", "b"}


def test_dataset_filters_match_any_input(store: SqlStore, new_experiment: str, runs: dict[str, str]) -> None:
    def dataset(name: str, digest: str, context: str | None) -> DatasetInput:
        tags = (InputTag("mlflow.data.context", context),) if context else ()
        return DatasetInput(Dataset(name, digest, "local", f"/data/{name}"), tags)

    store.log_inputs(runs["a"], [dataset("train", "d1", "training"), dataset("eval", "d2", "evaluation")])
    store.log_inputs(runs["b"], [dataset("train", "d1", None)])
    store.log_inputs(runs["b"], [dataset("train", "d1", None)])  # logging the same input twice stores it once
    assert len(store.get_run(runs["b"]).inputs.dataset_inputs) == 1

    def names(f: str) -> set[str]:
        return set(_names(store, new_experiment, f))

    assert names("datasets.name = 'train'") == {"a", "b"}
    assert names("datasets.name = 'eval'") == {"a"}
    assert names("datasets.context = 'training'") == {"a"}
    assert names("datasets.digest IN ('d2', 'zz')") == {"a"}
    assert names("datasets.name != 'train'") == {"a"}
    assert names("not datasets.name = 'train'") == {"c", "d", "e"}
    inputs = store.get_run(runs["a"]).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest, [tag.value for tag in i.tags]) for i in inputs] == [
        ("eval", "d2", ["evaluation"]),
        ("train", "d1", ["training"]),
    ]


def test_ordering_puts_missing_values_last_and_breaks_ties(
    store: SqlStore, new_experiment: str, runs: dict[str, str]
) -> None:
    # ties on p='x' are broken by start_time DESC (c started after a), then run id
    assert _names(store, new_experiment, order_by=["params.p ASC"]) == ["c", "a", "b", "e", "d"]
    assert _names(store, new_experiment, order_by=["params.p DESC"]) == ["b", "c", "a", "e", "d"]
    assert _names(store, new_experiment, order_by=["metrics.m DESC"]) == ["c", "e", "b", "a", "d"]
    assert _names(store, new_experiment, order_by=["tags.t"]) == ["b", "d", "e", "a", "c"]
    assert _names(store, new_experiment) == ["e", "d", "c", "b", "a"]  # default: start_time DESC
    assert _names(store, new_experiment, order_by=["start_time ASC"]) == ["a", "b", "c", "d", "e"]
    store.update_run_info(runs["d"], end_time=7)
    assert _names(store, new_experiment, order_by=["end_time DESC"])[0] == "d"
    assert _names(store, new_experiment, order_by=["end_time ASC"])[0] == "d"


def test_pages_cover_every_run_once_and_accept_mlflow_tokens(
    store: SqlStore, new_experiment: str, runs: dict[str, str]
) -> None:
    seen, token = [], None
    while True:
        page = store.search_runs([new_experiment], max_results=2, page_token=token)
        seen += [r.info.run_name for r in page]
        token = page.token
        if token is None:
            break
    assert seen == ["e", "d", "c", "b", "a"]
    mlflow_token = base64.b64encode(json.dumps({"offset": 3}).encode()).decode()  # MLflow writes '{"offset": 3}'
    assert [r.info.run_name for r in store.search_runs([new_experiment], page_token=mlflow_token)] == ["b", "a"]
    exact = store.search_runs([new_experiment], max_results=5)
    assert exact.token is None  # no empty last page
    with pytest.raises(MltrailException) as info:
        store.search_runs([new_experiment], page_token="not a token")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("max_results", [0, -1, 50001])
def test_max_results_outside_1_to_50000_is_refused(store: SqlStore, new_experiment: str, max_results: int) -> None:
    with pytest.raises(MltrailException) as info:
        store.search_runs([new_experiment], max_results=max_results)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_view_types_and_several_experiments(store: SqlStore, new_experiment: str, runs: dict[str, str]) -> None:
    other = store.create_experiment(unique("other"))
    store.create_run(other, run_name="z", start_time=1)
    store.delete_run(runs["e"])
    assert _names(store, new_experiment) == ["d", "c", "b", "a"]
    assert _names(store, new_experiment, run_view_type=ViewType.DELETED_ONLY) == ["e"]
    assert len(_names(store, new_experiment, run_view_type=ViewType.ALL)) == 5
    both = store.search_runs([new_experiment, other])
    assert [r.info.run_name for r in both] == ["d", "c", "b", "a", "z"]
    with pytest.raises(MltrailException) as info:
        store.search_runs(["not-a-number"])
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_page_takes_the_same_few_queries_whatever_its_size(store: SqlStore, new_experiment: str) -> None:
    for i in range(60):
        run_id = store.create_run(new_experiment, start_time=i).info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric(f"m{k}", float(k), 1, 0) for k in range(3)],
            params=[Param(f"p{k}", str(k)) for k in range(3)],
            tags=[RunTag("t", str(i % 2))],
        )
        store.log_inputs(run_id, [DatasetInput(Dataset("d", "1", "local", "s"), (InputTag("k", "v"),))])
    counts = []
    for size in (5, 60):
        with StatementCounter(store.engine) as counter:
            page = store.search_runs([new_experiment], "tags.t = '1' or metrics.m1 >= 0", max_results=size)
        assert len(page) == size
        assert all(len(run.data.params) == 3 and len(run.inputs.dataset_inputs) == 1 for run in page)
        counts.append(counter.count)
    assert counts[0] == counts[1] <= 7, counts  # page + params + tags + metrics + inputs + input tags (+ BEGIN)
    with StatementCounter(store.engine) as counter:
        light = store.search_runs([new_experiment], max_results=60, run_info_only=True)
    assert counter.count <= 2
    assert len(light) == 60 and not light[0].data.params and not light[0].data.tags


def test_search_experiments(store: SqlStore) -> None:
    prefix = unique("search")
    ids = [store.create_experiment(f"{prefix}-{i}") for i in range(4)]
    store.set_experiment_tag(ids[1], ExperimentTag("team", "vision"))
    store.delete_experiment(ids[3])

    def names(**kwargs: object) -> list[str]:
        return [e.name for e in store.search_experiments(**kwargs)]  # type: ignore[arg-type]

    default = store.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
    assert [e.name for e in default] == [
        e.name for e in sorted(default, key=lambda e: (-(e.creation_time or 0), int(e.experiment_id)))
    ]
    assert len(default) == 3
    assert names(filter_string=f"name LIKE '{prefix}-%'", order_by=["name ASC"]) == [f"{prefix}-{i}" for i in range(3)]
    # The session database is shared with other suites: scope every query to this test's experiments.
    assert names(filter_string=f"name LIKE '{prefix}-%' AND tags.team = 'vision'") == [f"{prefix}-1"]
    chosen = f"experiment_id IN ('{ids[0]}', '{ids[2]}')"
    assert names(filter_string=chosen, order_by=["name DESC"]) == [f"{prefix}-2", f"{prefix}-0"]
    assert names(filter_string=f"name = '{prefix}-3'", view_type=ViewType.DELETED_ONLY) == [f"{prefix}-3"]
    query = {"filter_string": f"name LIKE '{prefix}%'", "order_by": ["name DESC"], "max_results": 2}
    first = store.search_experiments(**query)  # type: ignore[arg-type]
    assert len(first) == 2 and first.token is not None
    rest = store.search_experiments(**query, page_token=first.token)  # type: ignore[arg-type]
    assert [e.name for e in rest] == [f"{prefix}-0"] and rest.token is None
