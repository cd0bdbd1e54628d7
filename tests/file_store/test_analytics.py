"""The directory store's fast UI aggregates equal the generic computations, with and without numpy."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from analytics_cases import SPIKE, assert_bucketed_like_generic, assert_runs_like_generic, seed
from mltrail.store.analytics import GenericAnalytics
from mltrail.store.file import FileStore


@pytest.mark.parametrize("numpy", [True, False], ids=["numpy", "pure-python"])
def test_bucketed_history_equals_the_generic_downsampling(
    store: FileStore, experiment_id: str, numpy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(store, experiment_id, random.Random(7))
    if not numpy:
        monkeypatch.setitem(sys.modules, "numpy", None)  # ``import numpy`` now fails: the fallback path runs
    assert_bucketed_like_generic(store, seeded)


def test_counts_keys_and_groups_equal_the_generic_ones(store: FileStore, experiment_id: str) -> None:
    seeded = seed(store, experiment_id, random.Random(11), points=60)
    assert_runs_like_generic(store, seeded)


def test_legacy_and_dataset_lines_take_the_line_reader(store: FileStore, experiment_id: str, root: Path) -> None:
    run_id = store.create_run(experiment_id, start_time=0).info.run_id
    lines = [f"{1000 + i} {SPIKE if i == 500 else i % 5} {i}" for i in range(900)]
    lines[10] = "1010 3.0"  # a 2-field line: step 0
    lines[20] = "1020 4.0 20 train d1g3st"  # a 5-field line with the dataset
    (root / experiment_id / run_id / "metrics" / "m").write_text("\n".join(lines) + "\n")
    args = ([run_id], ["m"], "step", None, None, 30)
    (series,) = store.get_bucketed_metric_history(*args)
    assert series == GenericAnalytics(store).get_bucketed_metric_history(*args)[0]
    assert max(series.y) == SPIKE and series.points_in_range == 900
