"""Loading the data of a page of runs: bound id lists and inline id lists (for pages of more runs than a driver
takes bind parameters) give the same runs."""

from __future__ import annotations

import math

import pytest

from mltrail.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mltrail.store.sql import SqlStore, loaders


def _logged_runs(store: SqlStore, experiment_id: str) -> list[str]:
    run_ids = []
    for i in range(3):
        run_id = store.create_run(
            experiment_id, user_id="u", start_time=1000 + i, tags=[], run_name=f"r{i}"
        ).info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric("loss", 1.0 / (i + 1), 5, 1), Metric("nan", math.nan, 5, 0), Metric("up", math.inf, 5, 0)],
            params=[Param("lr", str(i)), Param("depth", "3")],
            tags=[RunTag("team", f"t{i}")],
        )
        dataset = Dataset(f"ds{i}", "d1", "local", "/data", None, None)
        store.log_inputs(run_id, [DatasetInput(dataset, (InputTag("mlflow.data.context", "train"),))])
        run_ids.append(run_id)
    return run_ids


def test_inline_and_bound_ids_load_the_same_runs(
    store: SqlStore, new_experiment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ids = _logged_runs(store, new_experiment)
    bound = store.search_runs([new_experiment])
    single = [store.get_run(run_id) for run_id in run_ids]
    monkeypatch.setattr(loaders, "MAX_BOUND_IDS", 1)
    inline = store.search_runs([new_experiment])

    assert [r.info.run_id for r in bound] == run_ids[::-1]
    assert repr(list(inline)) == repr(list(bound)) == repr(single[::-1])  # repr: NaN != NaN
    run = single[1]
    assert run.data.params == {"lr": "1", "depth": "3"}
    assert run.data.tags["team"] == "t1"
    assert [(m.key, m.value) for m in run.data.latest_metrics][:1] == [("loss", 0.5)]
    assert math.isnan(run.data.metrics["nan"]) and run.data.metrics["up"] == math.inf
    assert [(d.dataset.name, d.tags) for d in run.inputs.dataset_inputs] == [
        ("ds1", (InputTag("mlflow.data.context", "train"),))
    ]
