"""``metric_blocks`` always equals a summary of the whole stored history (on SQLite, PostgreSQL and MariaDB),
whatever the order, repetitions and values of the writes, and a migration fills it for existing histories."""

from __future__ import annotations

import math
import random

import sqlalchemy as sa

from mltrail.entities import Metric
from mltrail.store.analytics import BLOCK_STEPS
from mltrail.store.sql import SqlStore, chunks
from mltrail.store.sql import schema as t
from mltrail.store.sql.blocks import COLUMNS, summarize
from mltrail.store.sql.migrate import upgrade

from .helpers import engine_for

_VALUES = [0.5, -1.0, 2.0, 2.0, math.nan, math.inf, -math.inf, 1e-300, -0.0]


def _run_pks(run_id: str | None) -> sa.ColumnElement[bool] | bool:
    """A condition on ``run_pk`` selecting one run's rows (the store fixture's database is shared), or all."""
    if run_id is None:
        return True
    return sa.column("run_pk").in_(sa.select(t.runs.c.id).where(t.runs.c.run_uuid == run_id).scalar_subquery())


def _stored_blocks(connection: sa.Connection, run_id: str | None = None) -> list[tuple]:
    b = t.metric_blocks
    query = sa.select(*(b.c[c] for c in COLUMNS)).where(_run_pks(run_id)).order_by(*b.primary_key)
    return [tuple(row) for row in connection.execute(query)]


def _expected_blocks(connection: sa.Connection, run_id: str | None = None) -> list[tuple]:
    c = t.metric_chunks.c
    stored = connection.execute(sa.select(c.run_pk, c.key, c.data).where(_run_pks(run_id)))
    points = sorted(point for run_pk, key, data in stored for point in chunks.write_points(run_pk, key, data))
    assert len(set(points)) == len(points), "a point is stored twice"
    return summarize(points)


def _random_batch(rng: random.Random, size: int) -> list[Metric]:
    return [
        Metric(
            rng.choice(["a", "b"]),
            rng.choice(_VALUES) if rng.random() < 0.7 else rng.uniform(-5, 5),
            1_700_000_000_000 + rng.randrange(2000),
            rng.randrange(-BLOCK_STEPS, 6 * BLOCK_STEPS),
        )
        for _ in range(size)
    ]


def test_blocks_summarise_the_stored_history_after_any_writes(store: SqlStore, new_experiment: str) -> None:
    rng = random.Random(5)
    run_id = store.create_run(new_experiment).info.run_id
    sent: list[list[Metric]] = []
    for _ in range(25):
        batch = _random_batch(rng, rng.randrange(1, 300))
        store.log_batch(run_id, metrics=batch)
        sent.append(batch)
        if rng.random() < 0.3:  # a client retry, alone or with new points: counted once
            retried = rng.choice(sent)
            store.log_batch(run_id, metrics=retried + _random_batch(rng, rng.randrange(0, 5)))
    with store.engine.connect() as connection:
        stored = _stored_blocks(connection, run_id)
        assert stored == _expected_blocks(connection, run_id)
    assert len({row[2] for row in stored}) >= 6
    assert sum(row[3] + row[4] for row in stored) == len(store.get_metric_history(run_id, "a")) + len(
        store.get_metric_history(run_id, "b")
    )


def test_blocks_keep_the_first_extremes_and_ends_of_each_block(store: SqlStore, new_experiment: str) -> None:
    run_id = store.create_run(new_experiment).info.run_id
    # Two batches in reverse step order; equal minimums at steps 7 and 3, equal maximums at steps 9 and 9.
    store.log_batch(run_id, metrics=[Metric("m", v, ts, s) for s, ts, v in [(9, 50, 4.0), (7, 10, -2.0), (5, 5, 1.0)]])
    store.log_batch(run_id, metrics=[Metric("m", v, ts, s) for s, ts, v in [(9, 20, 4.0), (3, 90, -2.0), (1, 99, 0.0)]])
    store.log_batch(run_id, metrics=[Metric("m", math.nan, 1, 2), Metric("m", 8.0, 7, BLOCK_STEPS)])
    with store.engine.connect() as connection:
        (first_block, second_block) = _stored_blocks(connection, run_id)
    named = dict(zip(COLUMNS, first_block, strict=True))
    assert (named["finite"], named["non_finite"]) == (6, 1)
    assert (named["first_step"], named["first_ts"], named["first_value"]) == (1, 99, 0.0)
    assert (named["last_step"], named["last_ts"], named["last_value"]) == (9, 50, 4.0)
    assert (named["low_step"], named["low_ts"], named["low_value"]) == (3, 90, -2.0)
    assert (named["high_step"], named["high_ts"], named["high_value"]) == (9, 20, 4.0)
    assert (named["ts_from"], named["ts_to"]) == (1, 99)
    assert second_block[2:5] == (1, 1, 0)


def test_upgrade_summarises_the_histories_already_stored(fresh_db_uri: str) -> None:
    rng = random.Random(9)
    with engine_for(fresh_db_uri) as engine:
        upgrade(engine, "0002")
        with engine.begin() as connection:
            for pk in (1, 2):
                connection.execute(sa.insert(_RUNS).values(_run_row(pk)))
                points = {
                    (pk, m.key, m.timestamp, m.step, *reversed(t.encode_value(m.value))): None
                    for m in _random_batch(rng, 700)
                }
                connection.execute(sa.insert(_METRICS), [dict(zip(_METRIC_COLUMNS, p, strict=True)) for p in points])
        upgrade(engine)
        with engine.connect() as connection:
            stored = _stored_blocks(connection)
            assert stored == _expected_blocks(connection)
            assert {row[0] for row in stored} == {1, 2}


# The tables as revision 0002 has them (schema.py describes the newest revision).
_METRIC_COLUMNS = ("run_pk", "key", "timestamp", "step", "value_class", "value")
_METRICS = sa.table("metrics", *(sa.column(c) for c in _METRIC_COLUMNS))
_RUN_COLUMNS = ("id", "run_uuid", "experiment_id", "name", "user_id", "status", "start_time", "lifecycle_stage")
_RUNS = sa.table("runs", *(sa.column(c) for c in (*_RUN_COLUMNS, "artifact_uri")))


def _run_row(pk: int) -> dict[str, object]:
    values = (pk, f"{pk:032x}", 0, "r", "u", "RUNNING", 0, "active", "/a")
    return dict(zip((*_RUN_COLUMNS, "artifact_uri"), values, strict=True))


def _reference_summary(points: list[tuple]) -> list[tuple]:
    """``summarize`` spelled out point by point: the definition its column-wise code must meet."""
    rows = []
    for run_key in sorted({p[:2] for p in points}):
        series = [p for p in points if p[:2] == run_key]
        for block in sorted({p[3] // BLOCK_STEPS for p in series}):
            members = [p for p in series if p[3] // BLOCK_STEPS == block]
            finite = [(p[3], p[2], p[5]) for p in members if p[4] == t.FINITE]  # (step, ts, value)
            stamps = [p[2] for p in members]
            if not finite:
                extremes: tuple = (0, 0, 0.0) * 4
            else:
                low, high = min(v for *_, v in finite), max(v for *_, v in finite)
                first_low = min(p for p in finite if p[2] == low)
                first_high = min(p for p in finite if p[2] == high)
                extremes = (*min(finite), *max(finite), *first_low, *first_high)
            counts = (len(finite), len(members) - len(finite))
            rows.append((*run_key, block, *counts, *extremes, min(stamps), max(stamps)))
    return rows


def test_column_wise_summaries_meet_their_definition() -> None:
    rng = random.Random(11)
    for _ in range(200):
        batch = _random_batch(rng, rng.randrange(1, 60))
        if rng.random() < 0.5:  # steps growing with time, the common case, split into blocks by slicing
            batch = [Metric(m.key, m.value, m.timestamp, m.timestamp - 1_700_000_000_000) for m in batch]
        points = sorted({(1, m.key, m.timestamp, m.step, *reversed(t.encode_value(m.value))): None for m in batch})
        assert summarize(points) == _reference_summary(points)
