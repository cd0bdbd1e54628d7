"""Reading folders the store did not write itself: legacy and odd files, hand-edited YAML, lazy search."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from mltrail.entities import Metric, Param, RunStatus
from mltrail.errors import MltrailException
from mltrail.store.file import FileStore
from mltrail.store.file._yaml import dump_meta, load_meta

from .conftest import run_dir


def _write_metric_file(root: Path, experiment_id: str, run_id: str, key: str, text: str) -> None:
    path = run_dir(root, experiment_id, run_id) / "metrics" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _history(store: FileStore, run_id: str, key: str) -> list[tuple[int, float, int]]:
    return [(m.timestamp, m.value, m.step) for m in store.get_metric_history(run_id, key)]


def test_legacy_two_field_lines_and_blank_lines(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    _write_metric_file(root, experiment_id, run_id, "old", "100 0.5\n\n101 0.25\n\n")
    assert _history(store, run_id, "old") == [(100, 0.5, 0), (101, 0.25, 0)]
    (latest,) = store.get_run(run_id).data.latest_metrics
    assert (latest.value, latest.timestamp, latest.step) == (0.25, 101, 0)


def test_five_field_lines_carry_the_dataset(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    _write_metric_file(root, experiment_id, run_id, "acc", "100 0.5 1 eval d1g3st\n101 0.75 2\n")
    first, second = store.get_metric_history(run_id, "acc")
    assert (first.dataset_name, first.dataset_digest, first.step) == ("eval", "d1g3st", 1)
    assert (second.dataset_name, second.value) == (None, 0.75)


def test_a_last_line_without_newline_is_a_write_in_flight(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    _write_metric_file(root, experiment_id, run_id, "m", "100 0.5 0\n101 0.2")
    assert _history(store, run_id, "m") == [(100, 0.5, 0)]
    assert store.get_run(run_id).data.metrics == {"m": 0.5}
    store.log_metric(run_id, Metric("n", 1.0, 5, 0))  # other keys are unaffected
    assert store.get_run(run_id).data.metrics == {"m": 0.5, "n": 1.0}


def test_python_and_mlflow_spellings_of_special_values(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    _write_metric_file(
        root, experiment_id, run_id, "m", "1 nan 0\n2 inf 1\n3 -inf 2\n4 NaN 3\n5 -Infinity 4\n6 1e308 5\n"
    )
    values = [v for _, v, _ in _history(store, run_id, "m")]
    assert math.isnan(values[0]) and math.isnan(values[3])
    assert values[1:3] == [math.inf, -math.inf]
    assert values[4:] == [-math.inf, 1e308]


def test_malformed_line_is_an_internal_error(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    _write_metric_file(root, experiment_id, run_id, "bad", "1 2 3 4\n")
    with pytest.raises(MltrailException) as err:
        store.get_metric_history(run_id, "bad")
    assert err.value.error_code == "INTERNAL_ERROR"
    assert "Metric 'bad' is malformed" in err.value.message
    _write_metric_file(root, experiment_id, run_id, "bad", "1 abc 3\n")
    with pytest.raises(MltrailException, match="Metric 'bad' is malformed"):
        store.get_run(run_id)


def test_latest_value_is_max_step_then_timestamp_then_value(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    # Out of order on purpose: the latest point is not the last line.
    _write_metric_file(root, experiment_id, run_id, "m", "50 9.0 3\n10 1.0 7\n20 2.0 7\n20 1.5 7\n5 8.0 6\n")
    (latest,) = store.get_run(run_id).data.latest_metrics
    assert (latest.timestamp, latest.value, latest.step) == (20, 2.0, 7)
    ids = [r.info.run_id for r in store.search_runs([experiment_id], "metrics.m = 2.0")]
    assert ids == [run_id]
    assert [r.info.run_id for r in store.search_runs([experiment_id], "metrics.m.max = 9 and metrics.m.min = 1")] == [
        run_id
    ]


def test_metric_history_is_ordered_and_deduplicated(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    retried = [Metric("m", 0.5, 20, 2), Metric("m", 0.1, 10, 1)]
    store.log_batch(run_id, metrics=retried)
    store.log_batch(run_id, metrics=retried)  # a client retrying the same batch
    store.log_metric(run_id, Metric("m", math.nan, 20, 2))
    store.log_metric(run_id, Metric("m", math.nan, 20, 2))
    store.log_metric(run_id, Metric("m", 0.3, 20, 2))
    assert (run_dir(root, experiment_id, run_id) / "metrics" / "m").read_text().count("\n") == 7
    history = _history(store, run_id, "m")
    assert history[:3] == [(10, 0.1, 1), (20, 0.3, 2), (20, 0.5, 2)]
    assert len(history) == 4 and math.isnan(history[3][1])
    page = store.get_metric_history(run_id, "m", max_results=3)
    assert len(page) == 3 and page.token is not None
    rest = store.get_metric_history(run_id, "m", max_results=3, page_token=page.token)
    assert len(rest) == 1 and rest.token is None
    assert store.get_metric_history(run_id, "unknown") == []


def test_hand_written_meta_yaml_variants(store: FileStore, root: Path, experiment_id: str) -> None:
    """Old MLflow versions: int experiment id, no lifecycle/status, name only in the tag; quoted/multi-line YAML."""
    folder = root / experiment_id / "0123456789abcdef0123456789abcdef"
    for sub in ("metrics", "params", "tags"):
        (folder / sub).mkdir(parents=True)
    (folder / "tags" / "mlflow.runName").write_text("from tag")
    (folder / "meta.yaml").write_text(
        'artifact_uri: "file:///x/y z"\n'
        f"experiment_id: {experiment_id}\n"
        "run_id: 0123456789abcdef0123456789abcdef\n"
        "start_time: 5\n"
        "user_id: >-\n  folded\n  user\n"
    )
    run = store.get_run("0123456789abcdef0123456789abcdef")
    assert run.info.run_name == "from tag"
    assert run.info.status == RunStatus.RUNNING
    assert run.info.lifecycle_stage == "active"
    assert run.info.artifact_uri == "file:///x/y z"
    assert run.info.user_id == "folded user"
    found = store.search_runs([experiment_id], "attributes.run_name = 'from tag'")
    assert [r.info.run_id for r in found] == ["0123456789abcdef0123456789abcdef"]


@pytest.mark.parametrize(
    "data",
    [
        {"name": "plain words", "experiment_id": "123", "n": 5, "none": None, "empty": "", "list": [], "map": {}},
        {"name": "yes", "other": "null", "on": "off", "t": "True", "num": "1.5", "neg": "-3", "oct": "012"},
        {"name": "a: b", "hash": "x #y", "colon": "end:", "quote": "it's", "dq": 'say "hi"', "lead": " space"},
        {"name": "ünïcode ✓ 日本", "dash": "- item", "star": "*ref", "amp": "&a", "pct": "%x", "bt": "`x`"},
        {"name": "x" * 100 + " " + "y" * 100, "multi": "line\nbreak", "tab": "a\tb", "cr": "a\r\nb"},
        {"uri": "file:///tmp/a b/c", "s3": "s3://bucket/key?x=1", "date": "2024-01-01", "float": "1e5"},
        {"run_id": "1962a171a6484af891818dba20bc22c2", "b": "0b101", "e": "123e4", "o": "0123abc", "x": "0x1f"},
        {"tags": {"mlflow.data.context": "train"}, "nested": {"a": [1, 2]}, "big": 2**62, "ts": 1700000000000},
    ],
)
def test_fast_yaml_reader_agrees_with_pyyaml(data: dict) -> None:
    text = dump_meta(data).decode()
    assert text == yaml.safe_dump(data, default_flow_style=False, allow_unicode=True, sort_keys=True)
    assert load_meta(text) == yaml.safe_load(text) == data


def test_search_reads_only_what_the_query_needs(store: FileStore, root: Path, experiment_id: str) -> None:
    """Metric files of runs outside the result page are never opened when the query does not use metrics."""
    run_ids = []
    for i in range(20):
        run_id = store.create_run(experiment_id, start_time=i).info.run_id
        store.log_param(run_id, Param("p", "wanted" if i == 7 else "other"))
        store.log_metric(run_id, Metric("m", float(i), 1, 0))
        run_ids.append(run_id)
    for i, run_id in enumerate(run_ids):
        if i != 7:
            _write_metric_file(root, experiment_id, run_id, "m", "corrupt line here\n")
    (run,) = store.search_runs([experiment_id], "params.p = 'wanted'")
    assert run.info.run_id == run_ids[7]
    assert run.data.metrics == {"m": 7.0}
    with pytest.raises(MltrailException, match="malformed"):
        store.search_runs([experiment_id], "metrics.m > 0")


def test_folders_that_are_not_runs_are_skipped(store: FileStore, root: Path, experiment_id: str, run_id: str) -> None:
    (root / experiment_id / "not-a-run").mkdir()
    (root / experiment_id / "traces" / "tr-1").mkdir(parents=True)
    (root / experiment_id / "stray.txt").write_text("x")
    (root / "models").mkdir()  # MLflow's model registry folder in the same root
    assert [r.info.run_id for r in store.search_runs([experiment_id])] == [run_id]
    assert {e.name for e in store.search_experiments()} == {"Default", "exp"}


def test_experiment_meta_naming_another_id_is_ignored(store: FileStore, root: Path, experiment_id: str) -> None:
    meta = load_meta((root / experiment_id / "meta.yaml").read_text())
    copy = root / "999"
    copy.mkdir()
    (copy / "meta.yaml").write_bytes(dump_meta(meta))
    assert {e.experiment_id for e in store.search_experiments()} == {"0", experiment_id}
    with pytest.raises(MltrailException) as err:
        store.get_experiment("999")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_runs_committed_without_empty_folders_are_readable_and_writable(
    store: FileStore, root: Path, experiment_id: str, run_id: str
) -> None:
    """git drops empty folders: a run with only meta.yaml still reads, and writing recreates what it needs."""
    folder = run_dir(root, experiment_id, run_id)
    for sub in ("metrics", "params", "artifacts"):
        (folder / sub).rmdir()
    assert store.get_run(run_id).data.params == {}
    store.log_batch(run_id, [Metric("a/b", 1.0, 1, 0)], [Param("p/q", "v")])
    assert store.get_run(run_id).data.metrics == {"a/b": 1.0}
    assert store.get_run(run_id).data.params == {"p/q": "v"}


def test_malformed_meta_yaml_is_skipped_in_listings(
    store: FileStore, root: Path, experiment_id: str, run_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    broken_run = run_dir(root, experiment_id, "ffffffffffffffffffffffffffffffff")
    broken_run.mkdir()
    (broken_run / "meta.yaml").write_text("run_id: [unclosed\n")
    empty_run = run_dir(root, experiment_id, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")
    empty_run.mkdir()
    (empty_run / "meta.yaml").write_text("")  # what a crash in a non-atomic writer (old MLflow) leaves
    broken_experiment = root / "12345"
    broken_experiment.mkdir()
    (broken_experiment / "meta.yaml").write_text("name: 'unterminated\n")
    assert [r.info.run_id for r in store.search_runs([experiment_id])] == [run_id]
    assert {e.name for e in store.search_experiments()} == {"Default", "exp"}
    assert "Skipping run folder" in caplog.text and "ffffffffffffffffffffffffffffffff" in caplog.text
    with pytest.raises(MltrailException) as err:
        store.get_experiment("12345")
    assert err.value.error_code == "INTERNAL_ERROR"
