"""``latest_metrics`` (latest point, min and max per run and key) stays right whatever order points arrive in."""

from __future__ import annotations

import math
import random

import sqlalchemy as sa

from mltrail.entities import Metric
from mltrail.store.sql import SqlStore
from mltrail.store.sql import schema as t


def _rank(value: float) -> tuple[int, float]:
    """IEEE order with NaN last, as the store orders values."""
    if math.isnan(value):
        return (2, 0.0)
    if math.isinf(value):
        return (1 if value > 0 else -1, 0.0)
    return (0, value)


def _expected(points: list[Metric]) -> tuple[Metric, float, float]:
    latest = max(points, key=lambda m: (m.step, m.timestamp, *_rank(m.value)))
    minimum = min((m.value for m in points), key=_rank)
    not_nan = [m.value for m in points if not math.isnan(m.value)]
    maximum = max(not_nan, key=_rank) if not_nan else math.nan
    return latest, minimum, maximum


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _summaries(store: SqlStore, run_id: str) -> dict[str, tuple[float, int, int, float, float]]:
    lm, r = t.latest_metrics, t.runs
    query = sa.select(lm).select_from(lm.join(r, r.c.id == lm.c.run_pk)).where(r.c.run_uuid == run_id)
    with store.engine.connect() as connection:
        return {
            row.key: (
                t.decode_value(row.value, row.value_class),
                row.step,
                row.timestamp,
                t.decode_value(row.min_value, row.min_class),
                t.decode_value(row.max_value, row.max_class),
            )
            for row in connection.execute(query)
        }


def test_summaries_match_a_model_for_shuffled_points_in_random_batches(store: SqlStore, new_experiment: str) -> None:
    rng = random.Random(7)
    run_id = store.create_run(new_experiment).info.run_id
    pool = [0.0, -1.0, 2.5, 1e300, -1e300, math.nan, math.inf, -math.inf]
    points = [
        Metric(f"k{rng.randrange(6)}", rng.choice([*pool, rng.uniform(-5, 5)]), rng.randrange(5), rng.randrange(6))
        for _ in range(400)
    ]
    points += rng.sample(points, 60)  # exact duplicates (client retries)
    points.append(Metric("only_nan", math.nan, 1, 1))
    rng.shuffle(points)
    logged: dict[str, list[Metric]] = {}
    i = 0
    while i < len(points):
        size = rng.choice([1, 1, 7, 50])
        batch = points[i : i + size]
        if size == 1:
            store.log_metric(run_id, batch[0])
        else:
            store.log_batch(run_id, metrics=batch)
        for m in batch:
            logged.setdefault(m.key, []).append(m)
        i += size
    stored = _summaries(store, run_id)
    assert set(stored) == set(logged)
    for key, key_points in logged.items():
        latest, minimum, maximum = _expected(key_points)
        value, step, timestamp, stored_min, stored_max = stored[key]
        assert (step, timestamp) == (latest.step, latest.timestamp), key
        assert _same(value, latest.value), (key, value, latest.value)
        assert _same(stored_min, minimum), (key, stored_min, minimum)
        assert _same(stored_max, maximum), (key, stored_max, maximum)
        history = store.get_metric_history(run_id, key)
        distinct = {(m.timestamp, m.step, _rank(m.value)) for m in key_points}
        assert len(history) == len(distinct), "each distinct point stored exactly once"
        assert [(m.timestamp, m.step, _rank(m.value)) for m in history] == sorted(distinct)
    run = store.get_run(run_id)
    assert {m.key for m in run.data.latest_metrics} == set(logged)


def test_min_max_and_latest_are_searchable(store: SqlStore, new_experiment: str) -> None:
    first = store.create_run(new_experiment, run_name="first").info.run_id
    second = store.create_run(new_experiment, run_name="second").info.run_id
    store.log_batch(first, metrics=[Metric("loss", v, 1, s) for s, v in enumerate([5.0, 1.0, 3.0])])
    store.log_batch(second, metrics=[Metric("loss", v, 1, s) for s, v in enumerate([2.0, 4.0, math.nan])])

    def names(filter_string: str) -> set[str]:
        return {r.info.run_name for r in store.search_runs([new_experiment], filter_string)}

    assert names("metrics.loss = 3") == {"first"}
    assert names("metrics.loss.min < 1.5") == {"first"}
    assert names("metrics.loss.max >= 4") == {"first", "second"}
    assert names("metrics.loss.max = 4") == {"second"}  # NaN ignored by max
    assert names("metrics.loss != 3") == {"second"}  # latest of 'second' is NaN
    ordered = store.search_runs([new_experiment], order_by=["metrics.loss.min DESC"])
    assert [r.info.run_name for r in ordered] == ["second", "first"]
