"""Experiments: create, get, delete/restore, rename, tags, search."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mltrail.entities import ExperimentTag, LifecycleStage, ViewType
from mltrail.errors import ErrorCode
from mltrail.store.base import TrackingStore

from .conftest import StoreUnderTest
from .helpers import local_path, new_experiment, new_run, raises, unique_name

ACTIVE = LifecycleStage.ACTIVE.value
DELETED = LifecycleStage.DELETED.value
MISSING_ID = "987654321"


def test_default_experiment_exists(store: TrackingStore) -> None:
    default = store.get_experiment("0")
    assert (default.experiment_id, default.name, default.lifecycle_stage) == ("0", "Default", ACTIVE)
    by_name = store.get_experiment_by_name("Default")
    assert by_name is not None and by_name.experiment_id == "0"


def test_create_uses_default_artifact_location(store_under_test: StoreUnderTest) -> None:
    store = store_under_test.store
    name = unique_name()
    before = int(time.time() * 1000)
    experiment_id = store.create_experiment(name)
    assert isinstance(experiment_id, str)
    exp = store.get_experiment(experiment_id)
    assert (exp.experiment_id, exp.name, exp.lifecycle_stage, exp.tags) == (experiment_id, name, ACTIVE, {})
    assert local_path(exp.artifact_location).resolve() == (store_under_test.artifact_root / experiment_id).resolve()
    assert exp.creation_time is not None and before <= exp.creation_time <= int(time.time() * 1000)
    assert exp.last_update_time is not None and exp.last_update_time >= exp.creation_time


def test_create_with_explicit_location_and_tags(store: TrackingStore, tmp_path: Path) -> None:
    tags = [ExperimentTag("team", "vision"), ExperimentTag("λ", "实验 🚀")]
    s3_id = store.create_experiment(unique_name(), artifact_location="s3://bucket/some/prefix", tags=tags)
    s3_exp = store.get_experiment(s3_id)
    assert s3_exp.artifact_location == "s3://bucket/some/prefix"
    assert s3_exp.tags == {"team": "vision", "λ": "实验 🚀"}
    local_id = store.create_experiment(unique_name(), artifact_location=str(tmp_path / "elsewhere"))
    assert local_path(store.get_experiment(local_id).artifact_location) == tmp_path / "elsewhere"


def test_duplicate_names_are_rejected_even_when_deleted(store: TrackingStore) -> None:
    name = unique_name()
    experiment_id = store.create_experiment(name)
    with raises(ErrorCode.RESOURCE_ALREADY_EXISTS, f"Experiment(name={name}) already exists"):
        store.create_experiment(name)
    store.delete_experiment(experiment_id)
    with raises(ErrorCode.RESOURCE_ALREADY_EXISTS, f"Experiment(name={name}) already exists"):
        store.create_experiment(name)


def test_names_are_case_and_space_sensitive(store: TrackingStore) -> None:
    base = unique_name("Case")
    names = [base, base.lower(), base + " "]
    ids = [store.create_experiment(name) for name in names]
    assert len(set(ids)) == 3
    for name, experiment_id in zip(names, ids, strict=True):
        found = store.get_experiment_by_name(name)
        assert found is not None and (found.experiment_id, found.name) == (experiment_id, name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("", "Experiment name must be a non-empty string"), ("x" * 501, "exceeds the maximum length of 500")],
    ids=["empty", "501-chars"],
)
def test_invalid_names_are_rejected(store: TrackingStore, name: str, fragment: str) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, fragment):
        store.create_experiment(name)


def test_name_of_500_characters_is_kept_whole(store: TrackingStore) -> None:
    name = unique_name().ljust(500, "n")
    experiment_id = store.create_experiment(name)
    assert store.get_experiment(experiment_id).name == name


def test_missing_experiment(store: TrackingStore) -> None:
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST, f"No Experiment with id={MISSING_ID} exists"):
        store.get_experiment(MISSING_ID)
    assert store.get_experiment_by_name(unique_name()) is None
    for action in (store.delete_experiment, store.restore_experiment):
        with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST):
            action(MISSING_ID)


def test_delete_and_restore_take_the_runs_along(store: TrackingStore, experiment_id: str) -> None:
    run_ids = {new_run(store, experiment_id) for _ in range(2)}
    store.delete_experiment(experiment_id)
    assert store.get_experiment(experiment_id).lifecycle_stage == DELETED
    assert {store.get_run(r).info.lifecycle_stage for r in run_ids} == {DELETED}
    assert store.search_runs([experiment_id]) == []
    assert {r.info.run_id for r in store.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)} == run_ids
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST):
        store.delete_experiment(experiment_id)

    store.restore_experiment(experiment_id)
    assert store.get_experiment(experiment_id).lifecycle_stage == ACTIVE
    assert {store.get_run(r).info.lifecycle_stage for r in run_ids} == {ACTIVE}
    assert {r.info.run_id for r in store.search_runs([experiment_id])} == run_ids
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST):
        store.restore_experiment(experiment_id)


def test_get_by_name_finds_deleted_experiments(store: TrackingStore) -> None:
    name = unique_name()
    experiment_id = store.create_experiment(name)
    store.delete_experiment(experiment_id)
    found = store.get_experiment_by_name(name)
    assert found is not None and (found.experiment_id, found.lifecycle_stage) == (experiment_id, DELETED)
    store.restore_experiment(experiment_id)
    found = store.get_experiment_by_name(name)
    assert found is not None and found.lifecycle_stage == ACTIVE


def test_rename(store: TrackingStore) -> None:
    old, new = unique_name(), unique_name()
    experiment_id = store.create_experiment(old)
    created = store.get_experiment(experiment_id)
    store.rename_experiment(experiment_id, new)
    renamed = store.get_experiment(experiment_id)
    assert renamed.name == new
    assert renamed.last_update_time is not None and created.last_update_time is not None
    assert renamed.last_update_time >= created.last_update_time
    assert store.get_experiment_by_name(old) is None
    found = store.get_experiment_by_name(new)
    assert found is not None and found.experiment_id == experiment_id
    # The old name is free again.
    assert store.create_experiment(old) != experiment_id


def test_rename_errors(store: TrackingStore) -> None:
    taken = unique_name()
    store.create_experiment(taken)
    experiment_id = new_experiment(store)
    with raises(ErrorCode.RESOURCE_ALREADY_EXISTS, taken):
        store.rename_experiment(experiment_id, taken)
    with raises(ErrorCode.INVALID_PARAMETER_VALUE):
        store.rename_experiment(experiment_id, "")
    store.delete_experiment(experiment_id)
    with raises(ErrorCode.INVALID_STATE, "Cannot rename a non-active experiment."):
        store.rename_experiment(experiment_id, unique_name())


def test_experiment_tags(store: TrackingStore, experiment_id: str) -> None:
    store.set_experiment_tag(experiment_id, ExperimentTag("k", "v1"))
    store.set_experiment_tag(experiment_id, ExperimentTag("k", "v2"))
    store.set_experiment_tag(experiment_id, ExperimentTag("long", "x" * 20000))
    store.set_experiment_tag(experiment_id, ExperimentTag("K", "upper"))
    assert store.get_experiment(experiment_id).tags == {"k": "v2", "long": "x" * 20000, "K": "upper"}
    store.delete_experiment_tag(experiment_id, "k")
    assert store.get_experiment(experiment_id).tags == {"long": "x" * 20000, "K": "upper"}
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST, "k"):
        store.delete_experiment_tag(experiment_id, "k")


def test_experiment_tag_errors(store: TrackingStore, experiment_id: str) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "a//b"):
        store.set_experiment_tag(experiment_id, ExperimentTag("a//b", "v"))
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "20000"):
        store.set_experiment_tag(experiment_id, ExperimentTag("big", "x" * 20001))
    assert store.get_experiment(experiment_id).tags == {}
    with raises(ErrorCode.RESOURCE_DOES_NOT_EXIST):
        store.set_experiment_tag(MISSING_ID, ExperimentTag("k", "v"))
    store.delete_experiment(experiment_id)
    with raises(ErrorCode.INVALID_PARAMETER_VALUE, "must be in the 'active' state"):
        store.set_experiment_tag(experiment_id, ExperimentTag("k", "v"))


# --- search_experiments ---------------------------------------------------------------------------------------------


@pytest.fixture
def three_experiments(store: TrackingStore) -> tuple[str, list[str]]:
    """Prefix and ids (oldest first) of three experiments with distinct creation times and tags."""
    prefix = unique_name("Search")
    ids = []
    for suffix, team in (("a", "vision"), ("b", "nlp"), ("c", "vision")):
        ids.append(store.create_experiment(f"{prefix}-{suffix}", tags=[ExperimentTag("team", team)]))
        time.sleep(0.003)  # distinct creation_time, so the default order is fully determined
    return prefix, ids


def _ids(store: TrackingStore, **kwargs: object) -> list[str]:
    return [e.experiment_id for e in store.search_experiments(**kwargs)]


def test_search_experiments_filters(store: TrackingStore, three_experiments: tuple[str, list[str]]) -> None:
    prefix, (a, b, c) = three_experiments
    mine = f"name LIKE '{prefix}%'"
    assert _ids(store, filter_string=mine) == [c, b, a]
    assert _ids(store, filter_string=f"name = '{prefix}-b'") == [b]
    assert _ids(store, filter_string=f"name != '{prefix}-b' AND {mine}") == [c, a]
    assert _ids(store, filter_string=f"name ILIKE '{prefix.lower()}-%'") == [c, b, a]
    assert _ids(store, filter_string=f"name LIKE '{prefix.lower()}-%'") == []
    assert _ids(store, filter_string=f"{mine} AND tags.team = 'vision'") == [c, a]
    assert _ids(store, filter_string=f"{mine} AND tags.team LIKE 'n%'") == [b]
    assert _ids(store, filter_string=f"{mine} AND tags.missing IS NULL") == [c, b, a]
    assert _ids(store, filter_string=f"{mine} AND tags.team IS NOT NULL") == [c, b, a]
    created_a = store.get_experiment(a).creation_time
    assert _ids(store, filter_string=f"{mine} AND creation_time > {created_a}") == [c, b]
    assert _ids(store, filter_string=f"experiment_id IN ('{a}', '{c}')") == [c, a]


def test_search_experiments_order_by(store: TrackingStore, three_experiments: tuple[str, list[str]]) -> None:
    prefix, (a, b, c) = three_experiments
    mine = f"name LIKE '{prefix}%'"
    assert _ids(store, filter_string=mine, order_by=["name ASC"]) == [a, b, c]
    assert _ids(store, filter_string=mine, order_by=["name DESC"]) == [c, b, a]
    assert _ids(store, filter_string=mine, order_by=["creation_time"]) == [a, b, c]
    assert _ids(store, filter_string=mine, order_by=["name"]) == [a, b, c]


def test_search_experiments_view_types(store: TrackingStore, three_experiments: tuple[str, list[str]]) -> None:
    prefix, (a, b, c) = three_experiments
    store.delete_experiment(b)
    mine = f"name LIKE '{prefix}%'"
    assert _ids(store, filter_string=mine) == [c, a]
    assert _ids(store, filter_string=mine, view_type=ViewType.ACTIVE_ONLY) == [c, a]
    assert _ids(store, filter_string=mine, view_type=ViewType.DELETED_ONLY) == [b]
    assert _ids(store, filter_string=mine, view_type=ViewType.ALL) == [c, b, a]


def test_search_experiments_pagination(store: TrackingStore, three_experiments: tuple[str, list[str]]) -> None:
    prefix, ids = three_experiments
    mine = f"name LIKE '{prefix}%'"
    collected: list[str] = []
    token = None
    for expect_more in (True, True, False):  # a token only while more rows exist
        page = store.search_experiments(filter_string=mine, max_results=1, page_token=token)
        assert len(page) == 1 and bool(page.token) is expect_more
        collected += [e.experiment_id for e in page]
        token = page.token
    assert collected == ids[::-1]

    for size in (3, 4):  # exactly N and N+1: everything, no token
        page = store.search_experiments(filter_string=mine, max_results=size)
        assert [e.experiment_id for e in page] == ids[::-1] and page.token is None

    first = store.search_experiments(filter_string=mine, max_results=2)
    second = store.search_experiments(filter_string=mine, max_results=2, page_token=first.token)
    assert [e.experiment_id for e in [*first, *second]] == ids[::-1] and second.token is None


@pytest.mark.parametrize("kwargs", [{"max_results": 0}, {"max_results": 50001}, {"page_token": "not a token"}])
def test_search_experiments_bad_arguments(store: TrackingStore, kwargs: dict[str, object]) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE):
        store.search_experiments(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("filter_string", ["nope = 'x'", "name", "name = 'x' AND", "tags.t > 'x'", "name = x"])
def test_search_experiments_invalid_filter(store: TrackingStore, filter_string: str) -> None:
    with raises(ErrorCode.INVALID_PARAMETER_VALUE):
        store.search_experiments(filter_string=filter_string)


def test_search_experiments_defaults_include_default_experiment(store: TrackingStore) -> None:
    everything = store.search_experiments(max_results=50000)
    assert "0" in {e.experiment_id for e in everything}
    assert all(e.lifecycle_stage == ACTIVE for e in everything)
