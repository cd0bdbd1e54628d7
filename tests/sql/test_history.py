"""Histories stored as chunks (on SQLite, PostgreSQL and MariaDB): read whole or by pages, whether the chunks
follow each other in time or overlap, each point once, non-finite values as they were logged."""

from __future__ import annotations

import math
import random

import pytest
import sqlalchemy as sa

from mltrail.entities import Metric
from mltrail.store.sql import SqlStore, chunks
from mltrail.store.sql import schema as t

_T0 = 1_700_000_000_000


def _order(metric: Metric) -> tuple[int, int, int, float]:
    """History order: timestamp, step, then -inf < numbers < +inf < NaN."""
    value, value_class = t.encode_value(metric.value)
    return metric.timestamp, metric.step, value_class, value


def _as_tuples(history: list[Metric]) -> list[tuple[int, int, str]]:
    return [(m.timestamp, m.step, repr(m.value)) for m in history]


def _expected(sent: list[Metric]) -> list[tuple[int, int, str]]:
    return _as_tuples(sorted({_order(m): m for m in sent}.values(), key=_order))


def _pages(store: SqlStore, run_id: str, size: int) -> list[Metric]:
    history, token = [], None
    while True:
        page = store.get_metric_history(run_id, "m", max_results=size, page_token=token)
        assert len(page) <= size
        history.extend(page)
        token = page.token
        if not token:
            return history


def _of_run(store: SqlStore, run_id: str, aggregate: sa.ColumnElement[int]) -> int:
    c, r = t.metric_chunks, t.runs
    with store.engine.connect() as connection:
        query = sa.select(aggregate).select_from(c.join(r, r.c.id == c.c.run_pk)).where(r.c.run_uuid == run_id)
        return int(connection.execute(query).scalar_one())


def _chunk_count(store: SqlStore, run_id: str) -> int:
    return _of_run(store, run_id, sa.func.count())


def _stored_points(store: SqlStore, run_id: str) -> int:
    return _of_run(store, run_id, sa.func.sum(t.metric_chunks.c.points))


def test_a_history_logged_forward_in_time_reads_whole_and_by_pages(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    sent = []
    for start in range(0, 230, 23):  # 10 chunks of 23 points
        batch = [Metric("m", (s % 17) / 3, _T0 + s, s) for s in range(start, start + 23)]
        store.log_batch(run_id, metrics=batch)
        sent += batch
    assert _chunk_count(store, run_id) == 10
    expected = _expected(sent)
    assert _as_tuples(store.get_metric_history(run_id, "m")) == expected
    for size in (1, 7, 23, 50, 229, 230, 1000):
        assert _as_tuples(_pages(store, run_id, size)) == expected, size


def test_a_later_page_unpacks_only_the_chunks_that_hold_it(
    store: SqlStore, new_experiment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    for start in range(0, 1000, 100):
        store.log_batch(run_id, metrics=[Metric("m", float(s), _T0 + s, s) for s in range(start, start + 100)])
    first = store.get_metric_history(run_id, "m", max_results=150)
    unpacked: list[int] = []
    merge = chunks.in_history_order
    monkeypatch.setattr(chunks, "in_history_order", lambda found: unpacked.append(len(found)) or merge(found))
    second = store.get_metric_history(run_id, "m", max_results=150, page_token=first.token)
    assert [m.step for m in second] == list(range(150, 301))[:150]
    assert unpacked == [3]  # the chunks of steps 100..399: the page and the point that tells whether more follow


def test_overlapping_writes_store_each_point_once_and_read_in_order(store: SqlStore, new_experiment: str) -> None:
    rng = random.Random(3)
    run_id = store.create_run(new_experiment).info.run_id
    values = [0.5, -1.0, 2.0, math.nan, math.inf, -math.inf, -0.0]
    pool = [Metric("m", rng.choice(values), _T0 + rng.randrange(40), rng.randrange(30)) for _ in range(400)]
    sent = []
    for _ in range(30):  # batches drawn from the same points: most of each is stored already
        batch = rng.sample(pool, rng.randrange(1, 40))
        store.log_batch(run_id, metrics=batch)
        sent += batch
    expected = _expected(sent)
    history = store.get_metric_history(run_id, "m")
    assert _as_tuples(history) == expected
    assert len(history) < len(sent)
    for size in (1, 9, 64):
        assert _as_tuples(_pages(store, run_id, size)) == expected, size
    c, r = t.metric_chunks, t.runs
    with store.engine.connect() as connection:
        stored = connection.execute(
            sa.select(sa.func.sum(c.c.points))
            .select_from(c.join(r, r.c.id == c.c.run_pk))
            .where(r.c.run_uuid == run_id)
        ).scalar_one()
    assert stored == len(expected)  # no point is held by two chunks


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308])
def test_values_read_back_bit_for_bit(store: SqlStore, new_experiment: str, value: float) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    store.log_metric(run_id, Metric("m", value, _T0, 0))
    (point,) = store.get_metric_history(run_id, "m")
    assert math.copysign(1, point.value) == math.copysign(1, value) or math.isnan(value)
    assert repr(point.value) == repr(value)
