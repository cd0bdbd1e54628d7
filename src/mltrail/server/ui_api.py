"""Endpoints the web UI needs beyond MLflow's REST API, under ``/api/2.0/mltrail/…`` and ``/ajax-api/2.0/mltrail/…``.

All of them are JSON ``POST`` requests (their bodies carry long id lists) computed through the
:class:`~mltrail.store.base.TrackingStore` protocol, so they work on every store; ``docs/ui.md`` documents them.

- ``metrics/bucketed``: metric histories of many runs × keys in one request, downsampled on the server to at most
  two points (the minimum and the maximum) per x bucket so spikes survive, optionally restricted to an x range
  (zoom) which is then served at full resolution when it holds few enough points.
- ``metrics/summary``: latest / min / max / count of metric keys for a set of runs (table columns, run page).
- ``runs/count``: how many runs a search matches (the runs table's scroll height, experiment run counts).
- ``experiments/keys``: every param, metric and tag key used by the runs of some experiments (column picker).
- ``runs/groups``: runs grouped by a param, tag or attribute with mean ± std (and min/max) of metrics.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mltrail.entities import Metric, Run, ViewType
from mltrail.errors import MltrailException
from mltrail.server import wire
from mltrail.server.security import check_json_content_type
from mltrail.server.wire import VIEW_TYPE, Message, f
from mltrail.store.base import TrackingStore

GetStore = Callable[[], TrackingStore]

#: Most (run, key) series one bucketed / summary request may ask for; the UI splits larger sets.
MAX_SERIES_PER_REQUEST = 1000
DEFAULT_BUCKETS = 1000
MAX_BUCKETS = 5000
#: Page size used when a UI endpoint has to walk every run of a search.
_SCAN_PAGE = 50000
X_AXES = ("step", "time", "relative")
_MAX_BODY_BYTES = 8 * 1024 * 1024


# --- downsampling -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    """One downsampled curve: parallel ``x``/``y`` lists sorted by x."""

    x: list[float]
    y: list[float]
    points_in_range: int
    sampled: bool
    non_finite: int


def bucket_min_max(
    points: Sequence[tuple[float, float]], buckets: int, x_min: float | None = None, x_max: float | None = None
) -> Series:
    """Downsample ``points`` (``(x, y)`` sorted by x) inside ``[x_min, x_max]``.

    When the range holds at most ``2 * buckets`` finite points they are all returned (full resolution);
    otherwise the range is cut into ``buckets`` equal-width x buckets and each keeps its smallest and its
    largest point, in x order, so a one-step spike is never averaged away; the range's first and last points
    are always kept, so a curve starts and ends where it does. The nearest point on each side of an explicit
    range is kept too, so a zoomed curve runs to the chart's edges. Non-finite values are dropped and counted.
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


def _min_max_per_bucket(points: list[tuple[float, float]], buckets: int) -> list[tuple[float, float]]:
    lo, hi = points[0][0], points[-1][0]
    width = (hi - lo) / buckets or 1.0
    extremes: dict[int, tuple[int, int]] = {}  # bucket -> (index of its min, index of its max)
    for i, (x, y) in enumerate(points):
        bucket = min(int((x - lo) / width), buckets - 1)
        low, high = extremes.get(bucket, (i, i))
        extremes[bucket] = (i if y < points[low][1] else low, i if y > points[high][1] else high)
    keep = {0, len(points) - 1}
    for pair in extremes.values():
        keep.update(pair)
    return [points[i] for i in sorted(keep)]


def _x_of(metric: Metric, axis: str, origin: int) -> float:
    if axis == "step":
        return metric.step
    return metric.timestamp - origin


def history_points(history: Sequence[Metric], axis: str, origin: int = 0) -> list[tuple[float, float]]:
    """A run's history as ``(x, y)`` for the x axis, ordered by x then timestamp."""
    ordered = sorted(history, key=lambda m: (_x_of(m, axis, origin), m.timestamp))
    return [(_x_of(m, axis, origin), m.value) for m in ordered]


# --- scans and aggregates ---------------------------------------------------------------------------


def iter_runs(
    store: TrackingStore, experiment_ids: Sequence[str], filter_string: str | None, view: ViewType
) -> Iterator[Run]:
    """Every run matching a search, page by page (the store's own limit per page)."""
    token: str | None = None
    while True:
        page = store.search_runs(
            experiment_ids, filter_string, view, max_results=_SCAN_PAGE, order_by=None, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


@dataclass(frozen=True, slots=True)
class Stats:
    count: int
    mean: float
    std: float | None
    min: float
    max: float


def describe(values: Sequence[float]) -> Stats | None:
    """Mean, sample standard deviation (None below two values), min and max of the finite values."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    std = statistics.stdev(finite) if len(finite) > 1 else None
    return Stats(len(finite), statistics.fmean(finite), std, min(finite), max(finite))


def group_key(group_by: str) -> Callable[[Run], str | None]:
    """The function giving a run's value of ``params.<k>``, ``tags.<k>`` or an attribute (``status``,
    ``user_id``, ``run_name``) for grouping; it returns None when the run lacks the value."""
    kind, _, key = group_by.partition(".")
    if kind in ("params", "param") and key:
        return lambda run: run.data.params.get(key)
    if kind in ("tags", "tag") and key:
        return lambda run: run.data.tags.get(key)
    if kind in ("attributes", "attribute", "attr") and key:
        kind = key
    if kind == "status":
        return lambda run: str(run.info.status)
    if kind in ("user_id", "run_name"):
        return lambda run: getattr(run.info, kind) or None
    raise MltrailException.invalid_parameter(
        f"Cannot group by '{group_by}': use params.<key>, tags.<key>, status, user_id or run_name."
    )


def group_runs(
    runs: Iterator[Run], key_of: Callable[[Run], str | None], metric_keys: Sequence[str]
) -> list[dict[str, Any]]:
    """Groups (largest first, then by value) with run counts and per-metric statistics of latest values."""
    values: dict[str | None, dict[str, list[float]]] = {}
    counts: dict[str | None, int] = {}
    for run in runs:
        value = key_of(run)
        counts[value] = counts.get(value, 0) + 1
        per_key = values.setdefault(value, {})
        latest = run.data.metrics
        for key in metric_keys:
            if key in latest:
                per_key.setdefault(key, []).append(latest[key])
    groups = []
    for value in sorted(counts, key=lambda v: (-counts[v], v is None, v or "")):
        metrics = []
        for key in metric_keys:
            stats = describe(values[value].get(key, []))
            if stats is not None:
                metrics.append({"key": key, **_stats_json(stats)})
        groups.append({"value": value, "count": counts[value], "metrics": metrics})
    return groups


def _stats_json(stats: Stats) -> dict[str, Any]:
    out: dict[str, Any] = {"count": stats.count, "mean": stats.mean, "min": stats.min, "max": stats.max}
    if stats.std is not None:
        out["std"] = stats.std
    return out


# --- handlers ---------------------------------------------------------------------------------------

_SEARCH_FIELDS = (
    f("experiment_ids", repeated=True, required=True),
    f("filter"),
    f("run_view_type", "enum", choices=VIEW_TYPE),
)
BUCKETED = Message(
    f("run_ids", repeated=True, required=True),
    f("metric_keys", repeated=True, required=True),
    f("x_axis"),
    f("x_min", "double"),
    f("x_max", "double"),
    f("buckets", "int32"),
)
SUMMARY = Message(f("run_ids", repeated=True, required=True), f("metric_keys", repeated=True, required=True))
COUNT = Message(*_SEARCH_FIELDS)
KEYS = Message(*_SEARCH_FIELDS)
GROUPS = Message(*_SEARCH_FIELDS, f("group_by", required=True), f("metric_keys", repeated=True))


def _series_pairs(req: dict[str, Any]) -> list[tuple[str, str]]:
    run_ids = list(dict.fromkeys(req["run_ids"]))
    keys = list(dict.fromkeys(req["metric_keys"]))
    if len(run_ids) * len(keys) > MAX_SERIES_PER_REQUEST:
        raise MltrailException.invalid_parameter(
            f"A request may ask for at most {MAX_SERIES_PER_REQUEST} (run, metric) series; got "
            f"{len(run_ids)} runs x {len(keys)} keys. Split it into several requests."
        )
    return [(run_id, key) for run_id in run_ids for key in keys]


def bucketed_metrics(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    axis = req.get("x_axis") or "step"
    if axis not in X_AXES:
        raise MltrailException.invalid_parameter(f"x_axis must be one of {', '.join(X_AXES)}; got '{axis}'.")
    buckets = req.get("buckets", DEFAULT_BUCKETS)
    if not 1 <= buckets <= MAX_BUCKETS:
        raise MltrailException.invalid_parameter(f"buckets must be between 1 and {MAX_BUCKETS}; got {buckets}.")
    x_min, x_max = req.get("x_min"), req.get("x_max")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise MltrailException.invalid_parameter(f"x_min ({x_min}) must not be greater than x_max ({x_max}).")
    origins: dict[str, int] = {}
    series = []
    for run_id, key in _series_pairs(req):
        if axis == "relative" and run_id not in origins:
            origins[run_id] = store.get_run(run_id).info.start_time
        points = history_points(store.get_metric_history(run_id, key), axis, origins.get(run_id, 0))
        s = bucket_min_max(points, buckets, x_min, x_max)
        item: dict[str, Any] = {"run_id": run_id, "metric_key": key, "x": s.x, "y": s.y}
        item.update(points_in_range=s.points_in_range, sampled=s.sampled)
        if s.non_finite:
            item["non_finite"] = s.non_finite
        series.append(item)
    return {"x_axis": axis, "series": series}


def metric_summary(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    summaries = []
    for run_id, key in _series_pairs(req):
        history = store.get_metric_history(run_id, key)
        if not history:
            continue
        latest = max(history, key=lambda m: (m.step, m.timestamp))
        stats = describe([m.value for m in history])
        item: dict[str, Any] = {"run_id": run_id, "key": key, "count": len(history)}
        item["latest"] = {"value": wire.double(latest.value), "step": latest.step, "timestamp": latest.timestamp}
        if stats is not None:
            item.update(min=stats.min, max=stats.max)
        summaries.append(item)
    return {"summaries": summaries}


def _search(req: dict[str, Any]) -> tuple[list[str], str | None, ViewType]:
    return req["experiment_ids"], req.get("filter") or None, ViewType.parse(req.get("run_view_type"))


def count_runs(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    return {"count": sum(1 for _ in iter_runs(store, *_search(req)))}


def experiment_keys(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    params: set[str] = set()
    metrics: set[str] = set()
    tags: set[str] = set()
    count = 0
    for run in iter_runs(store, *_search(req)):
        count += 1
        params.update(run.data.params)
        metrics.update(m.key for m in run.data.latest_metrics)
        tags.update(run.data.tags)
    return {"param_keys": sorted(params), "metric_keys": sorted(metrics), "tag_keys": sorted(tags), "run_count": count}


def run_groups(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    key_of = group_key(req["group_by"])
    keys = list(dict.fromkeys(req.get("metric_keys", [])))
    return {"groups": group_runs(iter_runs(store, *_search(req)), key_of, keys)}


Handler = Callable[[TrackingStore, dict[str, Any]], dict[str, Any]]
UI_ENDPOINTS: tuple[tuple[str, Message, Handler], ...] = (
    ("/mltrail/metrics/bucketed", BUCKETED, bucketed_metrics),
    ("/mltrail/metrics/summary", SUMMARY, metric_summary),
    ("/mltrail/runs/count", COUNT, count_runs),
    ("/mltrail/runs/groups", GROUPS, run_groups),
    ("/mltrail/experiments/keys", KEYS, experiment_keys),
)


def _endpoint(message: Message, handler: Handler, get_store: GetStore) -> Callable[[Request], Any]:
    from mltrail.server.app import error_response  # here: app.py imports this module to wire the routes

    def call(body: bytes) -> bytes:
        return wire.dumps(handler(get_store(), wire.parse(message, wire.decode_json_body(body))))

    async def endpoint(request: Request) -> Response:
        try:
            check_json_content_type(request.headers.get("content-type"))
            body = await request.body()
            if len(body) > _MAX_BODY_BYTES:
                raise MltrailException.invalid_parameter(f"Request body exceeds {_MAX_BODY_BYTES} bytes.")
            return Response(await run_in_threadpool(call, body), media_type="application/json")
        except Exception as exc:
            return error_response(exc)

    return endpoint


def register_ui_routes(app: FastAPI, get_store: GetStore, static_prefix: str = "") -> None:
    """Add the UI endpoints to ``app``; ``get_store`` returns the server's tracking store."""
    prefix = "/" + static_prefix.strip("/") if static_prefix.strip("/") else ""
    for path, message, handler in UI_ENDPOINTS:
        endpoint = _endpoint(message, handler, get_store)
        for api in ("/api", "/ajax-api"):
            app.router.add_route(f"{prefix}{api}/2.0{path}", endpoint, methods=["POST"], include_in_schema=False)
