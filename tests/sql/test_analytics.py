"""The SQL store's fast UI aggregates equal the generic computations, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import random
import re

import pytest

from analytics_cases import SPIKE, assert_bucketed_like_generic, assert_runs_like_generic, seed
from mltrail.entities import Metric
from mltrail.errors import MltrailException
from mltrail.store.analytics import AnalyticsStore, GenericAnalytics
from mltrail.store.sql import SqlStore, chunks

from .helpers import StatementCounter


def test_bucketed_history_equals_the_generic_downsampling(store: SqlStore, new_experiment: str) -> None:
    seeded = seed(store, new_experiment, random.Random(7))
    assert isinstance(store, AnalyticsStore)
    assert_bucketed_like_generic(store, seeded)


def test_without_numpy_the_downsampling_is_the_same(
    store: SqlStore, new_experiment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(store, new_experiment, random.Random(7))
    monkeypatch.setattr(chunks, "as_arrays", lambda datas: None)
    assert_bucketed_like_generic(store, seeded)


def test_counts_keys_and_groups_equal_the_generic_ones(store: SqlStore, new_experiment: str) -> None:
    seeded = seed(store, new_experiment, random.Random(11), points=60)
    assert_runs_like_generic(store, seeded)


def test_metric_summaries_equal_the_generic_ones(store: SqlStore, new_experiment: str) -> None:
    seeded = seed(store, new_experiment, random.Random(3), points=300)
    keys = ["loss", "flat", "absent"]
    summaries = store.get_metric_summaries(seeded.run_ids, keys)
    assert summaries == GenericAnalytics(store).get_metric_summaries(seeded.run_ids, keys)
    loss = next(s for s in summaries if s.key == "loss")
    assert loss.max == 1e6 and loss.count == 300  # NaN and infinity are counted, never a min or a max


def test_a_long_history_is_downsampled_with_a_few_statements(store: SqlStore, new_experiment: str) -> None:
    """A constant number of statements, whatever the length: the history's chunks are read at once."""
    seeded = seed(store, new_experiment, random.Random(5), runs=2, points=2500)
    with StatementCounter(store.engine) as counter:
        (series,) = store.get_bucketed_metric_history(seeded.run_ids[:1], ["loss"], "step", None, None, 10)
    assert series.sampled and series.points_in_range > 2400 and len(series.x) <= 22
    assert counter.count <= 8


def test_a_whole_long_history_is_downsampled_from_its_block_summaries(store: SqlStore, new_experiment: str) -> None:
    seeded = seed(store, new_experiment, random.Random(8), runs=2, points=3000)
    with StatementCounter(store.engine) as counter:
        (series,) = store.get_bucketed_metric_history(seeded.run_ids[:1], ["loss"], "step", None, None, 4)
    assert series.sampled and series.points_in_range > 2900 and max(series.y) == SPIKE
    assert not any(re.search(r"\bmetric_chunks\b", statement) for statement in counter.statements), counter.statements


def test_unknown_run_is_not_found(store: SqlStore, new_experiment: str) -> None:
    for call in (
        lambda: store.get_bucketed_metric_history(["0" * 32], ["loss"]),
        lambda: store.get_metric_summaries(["0" * 32], ["loss"]),
    ):
        with pytest.raises(MltrailException, match=r"Run with id=0{32} not found") as raised:
            call()
        assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MltrailException, match="x_axis must be one of"):
        store.get_bucketed_metric_history([], ["loss"], "epoch")
    with pytest.raises(MltrailException, match="Invalid experiment ID"):
        store.count_runs(["abc"])


def test_the_point_after_a_zoom_is_the_nearest_one(store: SqlStore, new_experiment: str) -> None:
    """The block after the range's end holds no point past it; the next block's first step was logged twice, once
    at a time inside that block's time span: the nearest point is still the earlier one."""
    run_id = store.create_run(new_experiment).info.run_id
    points = [Metric("m", float(s), 1000 + s, s) for s in range(256, 301)]
    points += [Metric("m", 1.0, 5, 512), Metric("m", 2.0, 1280, 512)]
    store.log_batch(run_id, metrics=points)
    (series,) = store.get_bucketed_metric_history([run_id], ["m"], "step", None, 300, 1000)
    assert [series] == GenericAnalytics(store).get_bucketed_metric_history([run_id], ["m"], "step", None, 300, 1000)
    assert (series.x[-1], series.y[-1]) == (512, 1.0)
