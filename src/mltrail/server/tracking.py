"""Handlers for the tracking endpoints: experiments, runs, run data and metric history.

Each handler takes the server context and the parsed request (``mltrail.server.wire``), calls the
:class:`~mltrail.store.base.TrackingStore` protocol, and returns the JSON-ready response object. They are plain
synchronous functions; the route layer runs them in the threadpool. The read handlers of runs and metric
histories ask a store that can give their data as plain rows (the SQL store's ``*_rows``/``*_points`` methods)
for those, and encode them without building the entities in between.
"""

from __future__ import annotations

from itertools import starmap
from operator import itemgetter
from typing import Any

from mltrail.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import ErrorCode, MltrailException
from mltrail.server import sampling, uris, wire
from mltrail.server.context import ServerContext

Request = dict[str, Any]
Response = dict[str, Any]

#: Limits of MLflow's bulk metric-history endpoints.
MAX_RUNS_PER_BULK_REQUEST = 100
MAX_BULK_HISTORY_RESULTS = 25000


def run_id_of(req: Request) -> str:
    """``run_id``, falling back to the deprecated ``run_uuid`` (clients send either or both)."""
    run_id = req.get("run_id") or req.get("run_uuid")
    if not run_id:
        raise wire.missing("run_id")
    return run_id


def _unsupported(what: str) -> MltrailException:
    return MltrailException(f"{what} is not supported by this server.", ErrorCode.NOT_IMPLEMENTED)


# --- experiments ------------------------------------------------------------------------------------


def create_experiment(ctx: ServerContext, req: Request) -> Response:
    location = req.get("artifact_location") or None
    uris.check_artifact_location(location, ctx.trusted_artifact_roots)
    tags = [ExperimentTag(t["key"], t.get("value", "")) for t in req.get("tags", ())]
    return {"experiment_id": ctx.store.create_experiment(req["name"], location, tags)}


def get_experiment(ctx: ServerContext, req: Request) -> Response:
    return {"experiment": wire.experiment_json(ctx.store.get_experiment(req["experiment_id"]))}


def get_experiment_by_name(ctx: ServerContext, req: Request) -> Response:
    name = req["experiment_name"]
    experiment = ctx.store.get_experiment_by_name(name)
    if experiment is None:
        raise MltrailException.not_found(f"Could not find experiment with name '{name}'")
    return {"experiment": wire.experiment_json(experiment)}


def search_experiments(ctx: ServerContext, req: Request) -> Response:
    page = ctx.store.search_experiments(
        view_type=ViewType.parse(req.get("view_type")),
        max_results=req.get("max_results"),
        filter_string=req.get("filter") or None,
        order_by=req.get("order_by"),
        page_token=req.get("page_token") or None,
    )
    return wire.paged("experiments", [wire.experiment_json(e) for e in page], page.token)


def delete_experiment(ctx: ServerContext, req: Request) -> Response:
    ctx.store.delete_experiment(req["experiment_id"])
    return {}


def restore_experiment(ctx: ServerContext, req: Request) -> Response:
    ctx.store.restore_experiment(req["experiment_id"])
    return {}


def update_experiment(ctx: ServerContext, req: Request) -> Response:
    ctx.store.rename_experiment(req["experiment_id"], req["new_name"])
    return {}


def set_experiment_tag(ctx: ServerContext, req: Request) -> Response:
    ctx.store.set_experiment_tag(req["experiment_id"], ExperimentTag(req["key"], req.get("value", "")))
    return {}


def delete_experiment_tag(ctx: ServerContext, req: Request) -> Response:
    ctx.store.delete_experiment_tag(req["experiment_id"], req["key"])
    return {}


# --- runs -------------------------------------------------------------------------------------------


def create_run(ctx: ServerContext, req: Request) -> Response:
    run = ctx.store.create_run(
        req["experiment_id"],
        user_id=req.get("user_id"),
        start_time=req.get("start_time"),
        tags=[RunTag(t["key"], t.get("value", "")) for t in req.get("tags", ())],
        run_name=req.get("run_name") or None,
        run_id=req.get("run_id") or None,  # mltrail extension: create (or replay) a run with a given id
    )
    return {"run": wire.run_json(run)}


def get_run(ctx: ServerContext, req: Request) -> Response:
    get_rows = getattr(ctx.store, "get_run_rows", None)
    if get_rows is not None:
        return {"run": wire.run_rows_json(get_rows(run_id_of(req)))}
    return {"run": wire.run_json(ctx.store.get_run(run_id_of(req)))}


def update_run(ctx: ServerContext, req: Request) -> Response:
    status = req.get("status")
    info = ctx.store.update_run_info(
        run_id_of(req),
        run_status=RunStatus.parse(status) if status else None,
        end_time=req.get("end_time"),
        run_name=req.get("run_name") or None,
    )
    return {"run_info": wire.run_info_json(info)}


def delete_run(ctx: ServerContext, req: Request) -> Response:
    ctx.store.delete_run(run_id_of(req))
    return {}


def restore_run(ctx: ServerContext, req: Request) -> Response:
    ctx.store.restore_run(run_id_of(req))
    return {}


def search_runs(ctx: ServerContext, req: Request) -> Response:
    search_rows = getattr(ctx.store, "search_run_rows", None)
    search, encode = (search_rows, wire.run_rows_json) if search_rows else (ctx.store.search_runs, wire.run_json)
    page = search(
        experiment_ids=req.get("experiment_ids", []),
        filter_string=req.get("filter") or None,
        run_view_type=ViewType.parse(req.get("run_view_type")),
        max_results=req.get("max_results"),
        order_by=req.get("order_by"),
        page_token=req.get("page_token") or None,
    )
    return wire.paged("runs", [encode(r) for r in page], page.token)


# --- run data ---------------------------------------------------------------------------------------


def _metric(item: Request) -> Metric:
    get = item.get  # positional arguments and one bound method: log-batch calls this for every metric
    return Metric(
        item["key"],
        item["value"],
        item["timestamp"],
        get("step", 0),
        get("dataset_name") or None,
        get("dataset_digest") or None,
        get("model_id") or None,
    )


def log_metric(ctx: ServerContext, req: Request) -> Response:
    ctx.store.log_metric(run_id_of(req), _metric(req))
    return {}


def log_param(ctx: ServerContext, req: Request) -> Response:
    ctx.store.log_param(run_id_of(req), Param(req["key"], req.get("value", "")))
    return {}


def set_tag(ctx: ServerContext, req: Request) -> Response:
    ctx.store.set_tag(run_id_of(req), RunTag(req["key"], req.get("value", "")))
    return {}


def delete_tag(ctx: ServerContext, req: Request) -> Response:
    ctx.store.delete_tag(run_id_of(req), req["key"])
    return {}


_METRIC_FIELDS = itemgetter("key", "value", "timestamp", "step")


def _metrics(items: list[Request]) -> list[Metric]:
    """The metrics of a log-batch request. When each has exactly key, value, timestamp and step (as clients send
    them), the Metrics are made without a Python-level call per item of our own."""
    if set(map(len, items)) == {4}:
        try:
            return list(starmap(Metric, map(_METRIC_FIELDS, items)))
        except KeyError:  # four fields, not these four
            pass
    return [_metric(m) for m in items]


def log_batch(ctx: ServerContext, req: Request) -> Response:
    ctx.store.log_batch(
        run_id_of(req),
        metrics=_metrics(req.get("metrics", [])),
        params=[Param(p["key"], p.get("value", "")) for p in req.get("params", ())],
        tags=[RunTag(t["key"], t.get("value", "")) for t in req.get("tags", ())],
    )
    return {}


def _dataset_input(item: Request) -> DatasetInput:
    ds = item["dataset"]
    dataset = Dataset(
        name=ds["name"],
        digest=ds["digest"],
        source_type=ds["source_type"],
        source=ds["source"],
        schema=ds.get("schema") or None,
        profile=ds.get("profile") or None,
    )
    return DatasetInput(dataset, tuple(InputTag(t["key"], t.get("value", "")) for t in item.get("tags", ())))


def log_inputs(ctx: ServerContext, req: Request) -> Response:
    if req.get("models"):
        raise _unsupported("Logging model inputs")
    ctx.store.log_inputs(run_id_of(req), [_dataset_input(d) for d in req.get("datasets", ())])
    return {}


def log_outputs(ctx: ServerContext, req: Request) -> Response:
    raise _unsupported("Logging model outputs")


def search_logged_models(ctx: ServerContext, req: Request) -> Response:
    """Logged models (MLflow 3) are not stored by mltrail's stores, so every search is empty. MLflow clients
    search them when listing or downloading run artifacts, and need an empty answer rather than a 404."""
    return {}


# --- metric history ---------------------------------------------------------------------------------


def _positive(value: int | None, name: str) -> int | None:
    if value is not None and value <= 0:
        raise MltrailException.invalid_parameter(f"'{name}' must be a positive integer, got {value}.")
    return value


def get_metric_history(ctx: ServerContext, req: Request) -> Response:
    run_id, key = run_id_of(req), req["metric_key"]
    max_results = _positive(req.get("max_results"), "max_results")
    page_token = req.get("page_token") or None
    get_points = getattr(ctx.store, "get_metric_history_points", None)
    if get_points is not None:
        points = get_points(run_id, key, max_results, page_token)
        return wire.paged("metrics", wire.history_json(key, points), points.token)
    page = ctx.store.get_metric_history(run_id, key, max_results=max_results, page_token=page_token)
    return wire.paged("metrics", wire.metrics_json(page), page.token)


def _checked_run_ids(run_ids: list[str], endpoint: str) -> list[str]:
    if not run_ids:
        raise MltrailException.invalid_parameter(f"{endpoint} request must specify at least one run_id.")
    if len(run_ids) > MAX_RUNS_PER_BULK_REQUEST:
        raise MltrailException.invalid_parameter(
            f"{endpoint} request must specify at most {MAX_RUNS_PER_BULK_REQUEST} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    return run_ids


def get_metric_history_bulk_interval(ctx: ServerContext, req: Request) -> Response:
    run_ids = _checked_run_ids(req.get("run_ids", []), "GetMetricHistoryBulkInterval")
    max_results = req.get("max_results", sampling.MAX_RESULTS_PER_RUN)
    if not 1 <= max_results <= sampling.MAX_RESULTS_PER_RUN:
        raise MltrailException.invalid_parameter(f"max_results must be between 1 and {sampling.MAX_RESULTS_PER_RUN}.")
    points = sampling.sample_histories(
        ctx.store, run_ids, req["metric_key"], max_results, req.get("start_step"), req.get("end_step")
    )
    return wire.paged("metrics", [wire.metric_json(m, run_id) for run_id, m in points], None)


def get_metric_history_bulk(ctx: ServerContext, req: Request) -> Response:
    """The UI's ajax-only bulk history (``?run_id=a&run_id=b&metric_key=k``), up to 25000 points per run."""
    run_ids = _checked_run_ids(req.get("run_id", []), "GetMetricHistoryBulk")
    limit = min(_positive(req.get("max_results"), "max_results") or MAX_BULK_HISTORY_RESULTS, MAX_BULK_HISTORY_RESULTS)
    metrics = []
    for run_id in sorted(set(run_ids)):
        history = ctx.store.get_metric_history(run_id, req["metric_key"], max_results=limit)
        metrics.extend(wire.metric_json(m, run_id) for m in history)
    return wire.paged("metrics", metrics, None)
