"""Optional fast paths for the web UI's aggregate endpoints, and the reference semantics they must reproduce.

The UI endpoints (``mltrail.server.ui_api``) work on every :class:`~mltrail.store.base.TrackingStore` by walking
``search_runs`` and ``get_metric_history``. A store that can answer faster (the SQL store with a few aggregate
queries, the directory store without building ``Run`` objects) implements some or all of
:class:`AnalyticsStore`; the endpoints use each method it has and fall back to the generic walk for the others.
Every implementation returns exactly what the generic functions below compute from the same data
(``tests/*/test_analytics.py`` compare them on random data).

Only the standard library is imported here: the module is shared by the stores, the server and the tests.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mltrail.entities import Metric, Run, ViewType
from mltrail.errors import MltrailException
from mltrail.store.base import TrackingStore

X_AXES = ("step", "time", "relative")
#: Page size used when the generic computations walk every run of a search.
SCAN_PAGE = 50000
_INT64 = (-(2**63), 2**63 - 1)
#: x values per block of a downsampling grid (see :func:`bucket_grid`).
BLOCK_STEPS = 256


# --- results ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    """One downsampled curve: parallel ``x``/``y`` lists in x order (see :func:`bucket_min_max`)."""

    x: list[int]
    y: list[float]
    points_in_range: int
    sampled: bool
    non_finite: int


EMPTY_SERIES = Series([], [], 0, False, 0)


@dataclass(frozen=True, slots=True)
class RunKeys:
    """Sorted param, metric and tag keys used by the runs of a search, and how many runs it matches."""

    params: list[str]
    metrics: list[str]
    tags: list[str]
    run_count: int


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """One (run, key) history: its point count, latest point (:func:`latest_rank`) and finite min/max
    (None when no value is finite)."""

    run_id: str
    key: str
    count: int
    latest: Metric
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class Stats:
    count: int
    mean: float
    std: float | None
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class RunGroup:
    """Runs sharing one value of the grouping key (None: runs without it) and statistics of their latest
    metric values, one entry per requested key that has a finite value in the group."""

    value: str | None
    count: int
    metrics: list[tuple[str, Stats]]


@dataclass(frozen=True, slots=True)
class GroupBy:
    """What runs are grouped by: ``kind`` is ``param``, ``tag`` or ``attribute`` (status, user_id, run_name)."""

    kind: str
    key: str


@runtime_checkable
class AnalyticsStore(Protocol):
    """Aggregates over many runs or long histories, each equal to the generic computation named in its docstring.

    Unknown run ids raise RESOURCE_DOES_NOT_EXIST like ``get_run``; invalid filters raise like ``search_runs``.
    """

    def count_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> int:
        """How many runs ``search_runs`` would return over all pages."""
        ...

    def list_keys(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> RunKeys:
        """The keys used by the matching runs (:func:`keys_of_runs`)."""
        ...

    def get_metric_summaries(self, run_ids: Sequence[str], keys: Sequence[str]) -> list[MetricSummary]:
        """Summaries of every (run, key) pair with a history, runs in order then keys in order
        (:func:`summarize_history`)."""
        ...

    def get_bucketed_metric_history(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str],
        x_axis: str = "step",
        x_min: float | None = None,
        x_max: float | None = None,
        buckets: int = 1000,
    ) -> list[Series]:
        """One series per (run, key) pair, runs in order then keys in order: :func:`bucket_min_max` over
        :func:`history_points` of the pair's history (an absent key gives an empty series)."""
        ...

    def group_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: ViewType,
        group_by: GroupBy,
        metric_keys: Sequence[str],
    ) -> list[RunGroup]:
        """The matching runs grouped like :func:`group_runs` does."""
        ...


# --- downsampling -------------------------------------------------------------------------------------------------


def validate_axis(x_axis: str) -> str:
    if x_axis not in X_AXES:
        raise MltrailException.invalid_parameter(f"x_axis must be one of {', '.join(X_AXES)}; got '{x_axis}'.")
    return x_axis


def int_range(x_min: float | None, x_max: float | None) -> tuple[int | None, int | None]:
    """``[x_min, x_max]`` as the equivalent bounds over integer x values (every x axis is integral), clamped to
    64 bits so that a database can compare them."""

    def clamp(value: int) -> int:
        return min(max(value, _INT64[0]), _INT64[1])

    low = None if x_min is None else clamp(math.ceil(x_min))
    high = None if x_max is None else clamp(math.floor(x_max))
    return low, high


def bucket_grid(lo: int, hi: int, buckets: int) -> tuple[int, float]:
    """``(origin, width)`` of the ``buckets`` equal-width buckets that cover ``[lo, hi]``.

    Buckets narrower than :data:`BLOCK_STEPS` start at ``lo``. Wider ones are widened to a whole number of
    blocks and start at a multiple of :data:`BLOCK_STEPS`, so that every block of x values
    ``[k * BLOCK_STEPS, (k + 1) * BLOCK_STEPS)`` lies in one bucket: then a store that keeps the minimum and
    maximum of each block (the SQL store) has each bucket's extremes without reading its points.
    """
    width = (hi - lo) / buckets or 1.0
    if width < BLOCK_STEPS:
        return lo, width
    return lo - lo % BLOCK_STEPS, float(math.ceil(width / BLOCK_STEPS) * BLOCK_STEPS)


def bucket_of(x: int, origin: int, width: float, buckets: int) -> int:
    """The bucket of ``x``; SQL computes the same IEEE quotient, so every implementation agrees on edges."""
    return min(int((x - origin) / width), buckets - 1)


def bucket_min_max(
    points: Sequence[tuple[int, float]], buckets: int, x_min: float | None = None, x_max: float | None = None
) -> Series:
    """Downsample ``points`` (``(x, y)`` in x order, see :func:`history_points`) inside ``[x_min, x_max]``.

    When the range holds at most ``2 * buckets`` finite points they are all returned (full resolution);
    otherwise the range is cut into ``buckets`` equal-width x buckets (:func:`bucket_grid`) and each keeps its
    smallest and its largest point (the first one in order on ties), in order, so a one-step spike is never
    averaged away; the
    range's first and last points are always kept, so a curve starts and ends where it does. The nearest point
    on each side of an explicit range is kept too, so a zoomed curve runs to the chart's edges. Non-finite values
    are dropped and counted.
    """
    finite = [(x, y) for x, y in points if math.isfinite(y)]
    non_finite = len(points) - len(finite)
    xs = [x for x, _ in finite]
    lo_i = bisect.bisect_left(xs, x_min) if x_min is not None else 0
    hi_i = bisect.bisect_right(xs, x_max) if x_max is not None else len(finite)
    inside = finite[lo_i:hi_i]
    before = [finite[lo_i - 1]] if x_min is not None and lo_i > 0 else []
    after = [finite[hi_i]] if x_max is not None and hi_i < len(finite) else []
    sampled = len(inside) > 2 * buckets
    kept = _min_max_per_bucket(inside, buckets) if sampled else inside
    out = before + kept + after
    return Series([x for x, _ in out], [y for _, y in out], len(inside), sampled, non_finite)


def _min_max_per_bucket(points: list[tuple[int, float]], buckets: int) -> list[tuple[int, float]]:
    origin, width = bucket_grid(points[0][0], points[-1][0], buckets)
    extremes: dict[int, tuple[int, int]] = {}  # bucket -> (index of its min, index of its max)
    for i, (x, y) in enumerate(points):
        bucket = bucket_of(x, origin, width, buckets)
        low, high = extremes.get(bucket, (i, i))
        extremes[bucket] = (i if y < points[low][1] else low, i if y > points[high][1] else high)
    keep = {0, len(points) - 1}
    for pair in extremes.values():
        keep.update(pair)
    return [points[i] for i in sorted(keep)]


def x_of(metric: Metric, axis: str, origin: int) -> int:
    return metric.step if axis == "step" else metric.timestamp - origin


def history_points(history: Sequence[Metric], axis: str, origin: int = 0) -> list[tuple[int, float]]:
    """A history (in ``get_metric_history`` order) as ``(x, y)`` ordered by x, then timestamp, then that order.

    So points are ordered by ``(step, timestamp, value)`` on the step axis and ``(timestamp, step, value)`` on
    the time axes: the order the fast implementations reproduce."""
    ordered = sorted(history, key=lambda m: (x_of(m, axis, origin), m.timestamp))
    return [(x_of(m, axis, origin), m.value) for m in ordered]


# --- summaries ----------------------------------------------------------------------------------------------------


def value_rank(value: float) -> tuple[int, float]:
    """Order of metric values: -inf, finite numbers, +inf, NaN (the SQL store's ``(value_class, value)``)."""
    if math.isfinite(value):
        return 1, value
    if math.isnan(value):
        return 3, 0.0
    return (2, 0.0) if value > 0 else (0, 0.0)


def latest_rank(metric: Metric) -> tuple[int, int, tuple[int, float]]:
    """MLflow's "latest" point: greatest step, then timestamp, then value."""
    return metric.step, metric.timestamp, value_rank(metric.value)


def summarize_history(run_id: str, key: str, history: Sequence[Metric]) -> MetricSummary | None:
    if not history:
        return None
    finite = [m.value for m in history if math.isfinite(m.value)]
    latest = max(history, key=latest_rank)
    return MetricSummary(
        run_id, key, len(history), latest, min(finite) if finite else None, max(finite) if finite else None
    )


# --- keys and groups ----------------------------------------------------------------------------------------------


def keys_of_runs(runs: Iterable[Run]) -> RunKeys:
    params: set[str] = set()
    metrics: set[str] = set()
    tags: set[str] = set()
    count = 0
    for run in runs:
        count += 1
        params.update(run.data.params)
        metrics.update(m.key for m in run.data.latest_metrics)
        tags.update(run.data.tags)
    return RunKeys(sorted(params), sorted(metrics), sorted(tags), count)


def describe(values: Sequence[float]) -> Stats | None:
    """Mean, sample standard deviation (None below two values), min and max of the finite values."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return Stats(len(finite), statistics.fmean(finite), std, min(finite), max(finite))


_ATTRIBUTES = ("status", "user_id", "run_name")


def parse_group_by(group_by: str) -> GroupBy:
    """``params.<k>``, ``tags.<k>`` or an attribute (``status``, ``user_id``, ``run_name``, optionally prefixed
    ``attributes.``)."""
    kind, _, key = group_by.partition(".")
    if kind in ("params", "param") and key:
        return GroupBy("param", key)
    if kind in ("tags", "tag") and key:
        return GroupBy("tag", key)
    if kind in ("attributes", "attribute", "attr") and key:
        kind = key
    if kind in _ATTRIBUTES:
        return GroupBy("attribute", kind)
    raise MltrailException.invalid_parameter(
        f"Cannot group by '{group_by}': use params.<key>, tags.<key>, status, user_id or run_name."
    )


def group_value(group_by: GroupBy) -> Callable[[Run], str | None]:
    """A run's value of the grouping key, None when the run lacks it (an empty user id or name counts as none)."""
    key = group_by.key
    if group_by.kind == "param":
        return lambda run: run.data.params.get(key)
    if group_by.kind == "tag":
        return lambda run: run.data.tags.get(key)
    if key == "status":
        return lambda run: str(run.info.status)
    return lambda run: getattr(run.info, key) or None


def make_groups(
    counts: dict[str | None, int], values: dict[str | None, dict[str, list[float]]], metric_keys: Sequence[str]
) -> list[RunGroup]:
    """Groups from run counts and latest values per group and key: largest first, then by value (None last)."""
    groups = []
    for value in sorted(counts, key=lambda v: (-counts[v], v is None, v or "")):
        per_key = values.get(value, {})
        stats = [(key, s) for key in metric_keys if (s := describe(per_key.get(key, []))) is not None]
        groups.append(RunGroup(value, counts[value], stats))
    return groups


def group_runs(runs: Iterable[Run], group_by: GroupBy, metric_keys: Sequence[str]) -> list[RunGroup]:
    value_of = group_value(group_by)
    counts: dict[str | None, int] = {}
    values: dict[str | None, dict[str, list[float]]] = {}
    for run in runs:
        value = value_of(run)
        counts[value] = counts.get(value, 0) + 1
        latest = run.data.metrics
        per_key = values.setdefault(value, {})
        for key in metric_keys:
            if key in latest:
                per_key.setdefault(key, []).append(latest[key])
    return make_groups(counts, values, metric_keys)


# --- the generic computations over any store ----------------------------------------------------------------------


def iter_runs(
    store: TrackingStore, experiment_ids: Sequence[str], filter_string: str | None, view: ViewType
) -> Iterator[Run]:
    """Every run matching a search, page by page."""
    token: str | None = None
    while True:
        page = store.search_runs(
            experiment_ids, filter_string, view, max_results=SCAN_PAGE, order_by=None, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


class GenericAnalytics:
    """:class:`AnalyticsStore` over any :class:`TrackingStore`, through ``search_runs`` and
    ``get_metric_history``: the definition the fast implementations are tested against."""

    def __init__(self, store: TrackingStore) -> None:
        self.store = store

    def count_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> int:
        return sum(1 for _ in iter_runs(self.store, experiment_ids, filter_string, run_view_type))

    def list_keys(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> RunKeys:
        return keys_of_runs(iter_runs(self.store, experiment_ids, filter_string, run_view_type))

    def get_metric_summaries(self, run_ids: Sequence[str], keys: Sequence[str]) -> list[MetricSummary]:
        summaries = (
            summarize_history(run_id, key, self.store.get_metric_history(run_id, key))
            for run_id in run_ids
            for key in keys
        )
        return [summary for summary in summaries if summary is not None]

    def get_bucketed_metric_history(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str],
        x_axis: str = "step",
        x_min: float | None = None,
        x_max: float | None = None,
        buckets: int = 1000,
    ) -> list[Series]:
        axis = validate_axis(x_axis)
        out = []
        for run_id in run_ids:
            origin = self.store.get_run(run_id).info.start_time if axis == "relative" else 0
            for key in keys:
                points = history_points(self.store.get_metric_history(run_id, key), axis, origin)
                out.append(bucket_min_max(points, buckets, x_min, x_max))
        return out

    def group_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: ViewType,
        group_by: GroupBy,
        metric_keys: Sequence[str],
    ) -> list[RunGroup]:
        return group_runs(iter_runs(self.store, experiment_ids, filter_string, run_view_type), group_by, metric_keys)
