"""Endpoints the web UI needs beyond MLflow's REST API, under ``/api/2.0/mltrail/…`` and ``/ajax-api/2.0/mltrail/…``.

Each is computed by the store's own fast method when it has one (:class:`~mltrail.store.analytics.AnalyticsStore`:
the SQL store aggregates in the database, the directory store reads only the files it needs) and otherwise
through the :class:`~mltrail.store.base.TrackingStore` protocol (``GenericAnalytics``), so they work on every
store with the same answers; ``docs/ui.md`` documents them.

- ``metrics/bucketed``: metric histories of many runs × keys in one request, downsampled on the server to at most
  two points (the minimum and the maximum) per x bucket so spikes survive, optionally restricted to an x range
  (zoom) which is then served at full resolution when it holds few enough points.
- ``metrics/summary``: latest / min / max / count of metric keys for a set of runs (table columns, run page).
- ``runs/count``: how many runs a search matches (the runs table's scroll height, experiment run counts).
- ``experiments/keys``: every param, metric and tag key used by the runs of some experiments (column picker).
- ``runs/groups``: runs grouped by a param, tag or attribute with mean ± std (and min/max) of metrics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mltrail.entities import Run, ViewType
from mltrail.errors import MltrailException
from mltrail.server import wire
from mltrail.server.security import check_json_content_type
from mltrail.server.wire import VIEW_TYPE, Message, f
from mltrail.store import analytics as a
from mltrail.store.analytics import bucket_min_max, describe  # noqa: F401  (part of this module's interface)
from mltrail.store.base import TrackingStore

GetStore = Callable[[], TrackingStore]

#: Most (run, key) series one bucketed / summary request may ask for; the UI splits larger sets.
MAX_SERIES_PER_REQUEST = 1000
DEFAULT_BUCKETS = 1000
MAX_BUCKETS = 5000
X_AXES = a.X_AXES
_MAX_BODY_BYTES = 8 * 1024 * 1024


def analytics(store: TrackingStore, method: str) -> Callable[..., Any]:
    """The store's own implementation of an :class:`~mltrail.store.analytics.AnalyticsStore` method, or the
    generic one."""
    return getattr(store, method, None) or getattr(a.GenericAnalytics(store), method)


def group_key(group_by: str) -> Callable[[Run], str | None]:
    """The function giving a run's value of ``params.<k>``, ``tags.<k>`` or an attribute (``status``,
    ``user_id``, ``run_name``) for grouping; it returns None when the run lacks the value."""
    return a.group_value(a.parse_group_by(group_by))


def _stats_json(stats: a.Stats) -> dict[str, Any]:
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


def _series_request(req: dict[str, Any]) -> tuple[list[str], list[str]]:
    run_ids = list(dict.fromkeys(req["run_ids"]))
    keys = list(dict.fromkeys(req["metric_keys"]))
    if len(run_ids) * len(keys) > MAX_SERIES_PER_REQUEST:
        raise MltrailException.invalid_parameter(
            f"A request may ask for at most {MAX_SERIES_PER_REQUEST} (run, metric) series; got "
            f"{len(run_ids)} runs x {len(keys)} keys. Split it into several requests."
        )
    return run_ids, keys


def _x_bound(req: dict[str, Any], name: str) -> float | None:
    value = req.get(name)
    if value is not None and not math.isfinite(value):
        raise MltrailException.invalid_parameter(f"{name} must be a finite number; got {value}.")
    return value


def bucketed_metrics(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    axis = a.validate_axis(req.get("x_axis") or "step")
    buckets = req.get("buckets", DEFAULT_BUCKETS)
    if not 1 <= buckets <= MAX_BUCKETS:
        raise MltrailException.invalid_parameter(f"buckets must be between 1 and {MAX_BUCKETS}; got {buckets}.")
    x_min, x_max = _x_bound(req, "x_min"), _x_bound(req, "x_max")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise MltrailException.invalid_parameter(f"x_min ({x_min}) must not be greater than x_max ({x_max}).")
    run_ids, keys = _series_request(req)
    found = analytics(store, "get_bucketed_metric_history")(run_ids, keys, axis, x_min, x_max, buckets)
    series = []
    for (run_id, key), s in zip([(r, k) for r in run_ids for k in keys], found, strict=True):
        item: dict[str, Any] = {"run_id": run_id, "metric_key": key, "x": s.x, "y": s.y}
        item.update(points_in_range=s.points_in_range, sampled=s.sampled)
        if s.non_finite:
            item["non_finite"] = s.non_finite
        series.append(item)
    return {"x_axis": axis, "series": series}


def metric_summary(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    summaries = []
    for s in analytics(store, "get_metric_summaries")(*_series_request(req)):
        latest = {"value": wire.double(s.latest.value), "step": s.latest.step, "timestamp": s.latest.timestamp}
        item: dict[str, Any] = {"run_id": s.run_id, "key": s.key, "count": s.count, "latest": latest}
        if s.min is not None:
            item.update(min=s.min, max=s.max)
        summaries.append(item)
    return {"summaries": summaries}


def _search(req: dict[str, Any]) -> tuple[list[str], str | None, ViewType]:
    return req["experiment_ids"], req.get("filter") or None, ViewType.parse(req.get("run_view_type"))


def count_runs(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    return {"count": analytics(store, "count_runs")(*_search(req))}


def experiment_keys(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    keys: a.RunKeys = analytics(store, "list_keys")(*_search(req))
    return {"param_keys": keys.params, "metric_keys": keys.metrics, "tag_keys": keys.tags, "run_count": keys.run_count}


def run_groups(store: TrackingStore, req: dict[str, Any]) -> dict[str, Any]:
    group_by = a.parse_group_by(req["group_by"])
    keys = list(dict.fromkeys(req.get("metric_keys", [])))
    groups = analytics(store, "group_runs")(*_search(req), group_by, keys)
    return {
        "groups": [
            {
                "value": g.value,
                "count": g.count,
                "metrics": [{"key": key, **_stats_json(stats)} for key, stats in g.metrics],
            }
            for g in groups
        ]
    }


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


def register_ui_routes(app: Starlette, get_store: GetStore, static_prefix: str = "") -> None:
    """Add the UI endpoints to ``app``; ``get_store`` returns the server's tracking store."""
    prefix = "/" + static_prefix.strip("/") if static_prefix.strip("/") else ""
    for path, message, handler in UI_ENDPOINTS:
        endpoint = _endpoint(message, handler, get_store)
        for api in ("/api", "/ajax-api"):
            app.router.add_route(f"{prefix}{api}/2.0{path}", endpoint, methods=["POST"], include_in_schema=False)
