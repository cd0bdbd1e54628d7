"""The write path's cost and its less common cases: a constant number of statements in one transaction per
log_batch, batches sent again (in part, or by several writers at once), and text that array literals or JSON
would escape."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from concurrency import run_side_by_side
from mltrail.entities import Metric, Param, RunTag
from mltrail.errors import ErrorCode, MltrailException
from mltrail.store.sql import SqlStore

from .helpers import StatementCounter


@contextmanager
def counting_transactions(engine: sa.Engine) -> Iterator[dict[str, int]]:
    """Counts the commits and rollbacks of ``engine`` while active."""
    counts = {"commit": 0, "rollback": 0}

    def on_commit(_connection: object) -> None:
        counts["commit"] += 1

    def on_rollback(_connection: object) -> None:
        counts["rollback"] += 1

    sa.event.listen(engine, "commit", on_commit)
    sa.event.listen(engine, "rollback", on_rollback)
    try:
        yield counts
    finally:
        sa.event.remove(engine, "commit", on_commit)
        sa.event.remove(engine, "rollback", on_rollback)


def _points(keys: int, steps: range, offset: float = 0.0) -> list[Metric]:
    return [
        Metric(f"m{k}", step / 7 + k + offset, 1_700_000_000_000 + step, step) for k in range(keys) for step in steps
    ]


def _history(store: SqlStore, run_id: str, key: str) -> list[tuple[int, int, float]]:
    return sorted((m.step, m.timestamp, m.value) for m in store.get_metric_history(run_id, key))


def test_log_batch_takes_one_transaction_and_the_same_few_statements_whatever_its_size(
    store: SqlStore, new_experiment: str
) -> None:
    counts = []
    for size in (10, 975):
        run_id = store.create_run(new_experiment).info.run_id
        params = [Param(f"p{i}", "v") for i in range(20)]
        tags = [RunTag(f"t{i}", "v") for i in range(5)]
        with StatementCounter(store.engine) as counter, counting_transactions(store.engine) as transactions:
            store.log_batch(run_id, metrics=_points(5, range(size // 5)), params=params, tags=tags)
        assert transactions == {"commit": 1, "rollback": 0}
        counts.append(counter.count)
    # PostgreSQL: one statement. Elsewhere: BEGIN (SQLite), the run, params (insert, check), history, latest
    # values, blocks, tags.
    assert counts[0] == counts[1] <= (1 if store.engine.dialect.name == "postgresql" else 8), counts


def test_a_batch_sent_again_with_new_points_stores_every_point_once(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    first = _points(3, range(0, 300))
    store.log_batch(run_id, metrics=first[:900])
    again = [*first[450:], *_points(3, range(300, 333))]  # half of it stored already, and new points
    with counting_transactions(store.engine) as transactions:
        store.log_batch(run_id, metrics=again)
    # PostgreSQL: the first try, as new data, finds points stored already and writes nothing; one transaction does.
    assert transactions["commit"] + transactions["rollback"] <= 2
    expected = sorted({(m.step, m.timestamp, m.value) for m in [*first, *again] if m.key == "m1"})
    assert _history(store, run_id, "m1") == expected
    run = store.get_run(run_id)
    assert run.data.metrics == {f"m{k}": 332 / 7 + k for k in range(3)}
    (summary,) = store.get_metric_summaries([run_id], ["m2"])
    assert (summary.count, summary.min, summary.max) == (333, 2.0, 332 / 7 + 2)


def test_a_whole_batch_sent_again_is_stored_once_and_a_changed_param_in_it_writes_nothing(
    store: SqlStore, new_experiment: str
) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    points = _points(2, range(150))
    params = [Param("lr", "0.1"), Param("layers", "4")]
    store.log_batch(run_id, metrics=points, params=params, tags=[RunTag("phase", "one")])
    with counting_transactions(store.engine) as transactions:
        store.log_batch(
            run_id, metrics=[*points, *_points(2, range(150, 160))], params=params, tags=[RunTag("phase", "two")]
        )
    assert transactions["rollback"] <= 1  # on PostgreSQL the first try, as new data, fails and is written again
    changed = [Param("lr", "0.2")]
    with pytest.raises(MltrailException, match="Changing param values") as raised:
        store.log_batch(run_id, metrics=_points(2, range(160, 170)), params=changed, tags=[RunTag("phase", "three")])
    assert raised.value.error_code == ErrorCode.INVALID_PARAMETER_VALUE
    run = store.get_run(run_id)
    assert run.data.params == {"lr": "0.1", "layers": "4"}
    assert run.data.tags["phase"] == "two"
    assert run.data.metrics == {f"m{k}": 159 / 7 + k for k in range(2)}
    assert _history(store, run_id, "m1") == [(s, 1_700_000_000_000 + s, s / 7 + 1) for s in range(160)]
    summaries = store.get_metric_summaries([run_id], ["m0", "m1"])
    assert sorted((s.key, s.count, s.min, s.max) for s in summaries) == [
        ("m0", 160, 0.0, 159 / 7),
        ("m1", 160, 1.0, 159 / 7 + 1),
    ]


def test_a_batch_for_a_deleted_or_unknown_run_writes_nothing(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    store.delete_run(run_id)
    batch = {"metrics": _points(1, range(5)), "params": [Param("p", "v")], "tags": [RunTag("t", "v")]}
    for target, code in ((run_id, ErrorCode.INVALID_PARAMETER_VALUE), ("0" * 32, ErrorCode.RESOURCE_DOES_NOT_EXIST)):
        with pytest.raises(MltrailException) as raised:
            store.log_batch(target, **batch)
        assert raised.value.error_code == code
    store.restore_run(run_id)
    run = store.get_run(run_id)
    assert (run.data.metrics, run.data.params, "t" in run.data.tags) == ({}, {}, False)
    assert store.get_metric_history(run_id, "m0") == []


def test_a_run_name_tag_in_a_batch_renames_the_run(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment, run_name="before").info.run_id
    store.log_batch(run_id, metrics=_points(1, range(3)), tags=[RunTag("mlflow.runName", "after")])
    run = store.get_run(run_id)
    assert (run.info.run_name, run.data.tags["mlflow.runName"]) == ("after", "after")
    assert len(store.get_metric_history(run_id, "m0")) == 3


def test_writers_sending_the_same_batch_at_once_store_it_once(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    batch = _points(4, range(240))
    run_side_by_side(*[lambda: store.log_batch(run_id, metrics=batch, params=[Param("p", "same")])] * 6)
    for k in range(4):
        key = f"m{k}"
        assert _history(store, run_id, key) == sorted((m.step, m.timestamp, m.value) for m in batch if m.key == key)


AWKWARD_TEXT = [
    "",
    " spaced ",
    "NULL",
    "null",
    "a,b",
    "{braces}",
    '"quoted"',
    "back\\slash",
    'both \\ and "',
    "line\nbreak\ttab",
    "ünïcødé ✓ 中文",
    "'single'",
    "[1, 2]",
]


def test_text_that_array_literals_or_json_would_escape_round_trips(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    params = [Param(f"p{i}", text) for i, text in enumerate(AWKWARD_TEXT)]
    tags = [RunTag(f"t{i}", text) for i, text in enumerate(AWKWARD_TEXT)]
    store.log_batch(run_id, params=params, tags=tags)
    data = store.get_run(run_id).data
    assert data.params == {p.key: p.value for p in params}
    assert {k: v for k, v in data.tags.items() if k.startswith("t")} == {t.key: t.value for t in tags}


def test_a_batch_with_int_values_is_stored_as_floats(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    store.log_batch(run_id, metrics=[Metric("m", 0.5, 10, 0), Metric("m", 3, 11, 1)])  # type: ignore[arg-type]
    history = store.get_metric_history(run_id, "m")
    assert [(m.value, type(m.value)) for m in history] == [(0.5, float), (3.0, float)]
