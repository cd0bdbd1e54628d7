"""Data and checks shared by the analytics tests of each store: a store's fast UI aggregates
(:class:`mltrail.store.analytics.AnalyticsStore`) must return exactly what the generic computation over
``search_runs``/``get_metric_history`` returns (:class:`mltrail.store.analytics.GenericAnalytics`)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from mltrail.entities import Metric, Param, RunStatus, RunTag, ViewType
from mltrail.store.analytics import GenericAnalytics, GroupBy

SPIKE = 1e6
START = 1_700_000_000_000
#: Values repeat (ties inside buckets) and a few are not finite.
_LEVELS = [0.0, 0.25, 0.5, 0.5, 0.75, 1.0, -0.5]


@dataclass
class Seeded:
    experiment_id: str
    run_ids: list[str] = field(default_factory=list)
    spikes: dict[str, int] = field(default_factory=dict)  # run id -> step of its "loss" spike


def _loss_history(rng: random.Random, points: int, spike_step: int) -> list[Metric]:
    """Mostly increasing steps and times, with repeated steps, times out of step order, equal values, a NaN,
    an infinity and one spike."""
    history = []
    for i in range(points):
        step = i - (i % 7 == 3)  # every 7th point repeats the previous step
        timestamp = START + i * 10 - (50 if i % 11 == 5 else 0)  # some points logged "before" earlier steps
        value = rng.choice(_LEVELS) + (i % 13) / 100
        if i == spike_step:
            value = SPIKE
        elif i % 97 == 40:
            value = math.nan if i % 2 else math.inf
        history.append(Metric("loss", value, timestamp, step))
    return history


def seed(store, experiment_id: str, rng: random.Random, runs: int = 4, points: int = 1200) -> Seeded:
    """``runs`` runs with params, tags and two histories: ``loss`` (``points`` points, see above) and ``flat``
    (one constant value, all at step 0); one run is deleted, one has no ``loss``."""
    seeded = Seeded(experiment_id)
    for index in range(runs):
        run_id = store.create_run(experiment_id, user_id="u" if index % 2 else "", start_time=START + index).info.run_id
        params = [
            Param("lr", str(0.1 * (index % 2 + 1))),
            Param(f"only{index}", "x"),
            Param("LR" if index else "lr ", ""),
        ]
        tags = [RunTag("team", "aAb"[min(index, 2)])]  # groups and keys are case-sensitive
        spike = rng.randrange(points)
        history = _loss_history(rng, points, spike) if index != runs - 1 else []
        history += [Metric("flat", 2.5, START + i, 0) for i in range(points // 2)]
        store.log_batch(run_id, params=params, tags=tags)
        for start in range(0, len(history), 1000):
            store.log_batch(run_id, metrics=history[start : start + 1000])
        store.log_batch(run_id, metrics=history[:5])  # a retried write: stored (and counted) once
        store.update_run_info(run_id, RunStatus.FINISHED, START + 10**6)
        seeded.run_ids.append(run_id)
        if history and index != runs - 1:
            seeded.spikes[run_id] = spike
    store.delete_run(seeded.run_ids[1])
    return seeded


def assert_bucketed_like_generic(store, seeded: Seeded) -> None:
    generic = GenericAnalytics(store)
    keys = ["loss", "flat", "absent"]
    cases = [
        ("step", None, None, 50),
        ("step", None, None, 7),
        ("step", None, None, 5000),  # few enough points: full resolution
        ("step", None, None, 3),  # buckets wider than a block: a grid aligned to blocks
        ("step", None, None, 2),
        ("step", 150.5, 1100, 2),
        ("time", None, None, 2),
        ("time", None, None, 40),
        ("relative", 2000.5, 9000.25, 30),
        ("step", 100.2, 700.9, 25),
        ("step", 300.4, 300.6, 25),  # an empty range between two points
        ("step", -1e300, 1e300, 60),
    ]
    for axis, x_min, x_max, buckets in cases:
        fast = store.get_bucketed_metric_history(seeded.run_ids, keys, axis, x_min, x_max, buckets)
        expected = generic.get_bucketed_metric_history(seeded.run_ids, keys, axis, x_min, x_max, buckets)
        assert fast == expected, (axis, x_min, x_max, buckets)
    full = store.get_bucketed_metric_history(list(seeded.spikes), ["loss"], "step", None, None, 20)
    for spike, series in zip(seeded.spikes.values(), full, strict=True):
        assert series.sampled and len(series.x) <= 2 * 20 + 2
        assert max(series.y) == SPIKE
        assert series.x[series.y.index(SPIKE)] == spike - (spike % 7 == 3)
        assert series.non_finite > 0


def assert_runs_like_generic(store, seeded: Seeded) -> None:
    generic = GenericAnalytics(store)
    searches = [
        ([seeded.experiment_id], None, ViewType.ACTIVE_ONLY),
        ([seeded.experiment_id], None, ViewType.ALL),
        ([seeded.experiment_id], "params.lr = '0.1' OR metrics.flat > 1", ViewType.DELETED_ONLY),
        ([seeded.experiment_id], "tags.team = 'b'", ViewType.ALL),
        ([], None, ViewType.ALL),
    ]
    for search in searches:
        assert store.count_runs(*search) == generic.count_runs(*search), search
        assert store.list_keys(*search) == generic.list_keys(*search), search
        for group_by in (GroupBy("param", "lr"), GroupBy("tag", "team"), GroupBy("attribute", "user_id")):
            for metric_keys in (["loss", "flat", "absent"], []):
                expected = generic.group_runs(*search, group_by, metric_keys)
                assert store.group_runs(*search, group_by, metric_keys) == expected, (search, group_by)
    keys = store.list_keys([seeded.experiment_id], None, ViewType.ALL)
    assert keys.metrics == ["flat", "loss"] and keys.run_count == len(seeded.run_ids)
    assert {"lr", "lr ", "LR", "only0", "only3"} <= set(keys.params)
