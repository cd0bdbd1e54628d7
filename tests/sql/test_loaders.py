"""Loading the data of runs: a page of runs and single runs give the same runs, on every dialect; a database
error while loading is wrapped like any other."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa

from mltrail.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mltrail.errors import MltrailException
from mltrail.store.sql import SqlStore


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


def test_a_page_and_single_runs_load_the_same_runs(store: SqlStore, new_experiment: str) -> None:
    run_ids = _logged_runs(store, new_experiment)
    page = store.search_runs([new_experiment])
    single = [store.get_run(run_id) for run_id in run_ids]

    assert [r.info.run_id for r in page] == run_ids[::-1]
    assert repr(list(page)) == repr(single[::-1])  # repr: NaN != NaN
    run = single[1]
    assert run.data.params == {"lr": "1", "depth": "3"}
    assert run.data.tags["team"] == "t1"
    assert [(m.key, m.value) for m in run.data.latest_metrics][:1] == [("loss", 0.5)]
    assert math.isnan(run.data.metrics["nan"]) and run.data.metrics["up"] == math.inf
    assert [(d.dataset.name, d.tags) for d in run.inputs.dataset_inputs] == [
        ("ds1", (InputTag("mlflow.data.context", "train"),))
    ]


def test_database_errors_while_loading_are_wrapped(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'broken.db'}")
    run_id = store.create_run("0", user_id="u", start_time=1, tags=[], run_name="r").info.run_id
    with store.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE latest_metrics"))
    with pytest.raises(MltrailException, match="Database error: OperationalError: no such table: latest_metrics"):
        store.get_run(run_id)
    assert store.search_runs(["0"], run_info_only=True)[0].info.run_id == run_id  # the connections still work
