"""The REST endpoint table: every route the server serves, declared once.

Each row says method, path, where it is mounted, the request schema and the handler:
- ``mount="api"``: served under ``/api/<v>.0<path>`` and ``/ajax-api/<v>.0<path>``; ``"ajax"``: only under
  ``/ajax-api``; ``"root"``: at ``<path>`` itself. The ``--static-prefix`` goes in front of all of them.
- ``kind="json"``: ``handler(ctx, request_dict) -> response_dict`` (synchronous, run in the threadpool);
  ``kind="stream"``: ``async handler(ctx, starlette_request, request_dict) -> Response`` (artifact bodies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mltrail.server import artifacts, meta, tracking
from mltrail.server.wire import RUN_STATUS, VIEW_TYPE, Message, f

Mount = Literal["api", "ajax", "root"]
Kind = Literal["json", "stream"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    request: Message
    handler: Callable[..., Any]
    version: int = 2
    mount: Mount = "api"
    kind: Kind = "json"

    def paths(self, static_prefix: str = "") -> list[str]:
        if self.mount == "root":
            return [static_prefix + self.path]
        prefixes = ("/ajax-api",) if self.mount == "ajax" else ("/api", "/ajax-api")
        return [f"{static_prefix}{p}/{self.version}.0{self.path}" for p in prefixes]


# --- request messages shared by several endpoints ---------------------------------------------------
NONE = Message()
KEY_VALUE = Message(f("key", required=True), f("value"))
RUN_REF = (f("run_id"), f("run_uuid"))
EXPERIMENT_REF = Message(f("experiment_id", required=True))
METRIC_FIELDS = (
    f("key", required=True),
    f("value", "double", required=True),
    f("timestamp", "int64", required=True),
    f("step", "int64"),
    f("dataset_name"),
    f("dataset_digest"),
    f("model_id"),
)
DATASET = Message(
    f("name", required=True),
    f("digest", required=True),
    f("source_type", required=True),
    f("source", required=True),
    f("schema"),
    f("profile"),
)
SEARCH_EXPERIMENTS = Message(
    f("max_results", "int64"),
    f("page_token"),
    f("filter"),
    f("order_by", repeated=True),
    f("view_type", "enum", choices=VIEW_TYPE),
)
ARTIFACT_PATH = Message(f("artifact_path", required=True))
MPU_CREATE = Message(f("artifact_path", required=True), f("path", required=True), f("num_parts", "int64"))
MPU_ABORT = Message(f("artifact_path", required=True), f("path", required=True), f("upload_id", required=True))
MPU_PART = Message(f("part_number", "int64", required=True), f("etag", required=True), f("url"))
MPU_COMPLETE = Message(*MPU_ABORT.fields, f("parts", "message", repeated=True, required=True, message=MPU_PART))

E = Endpoint
ENDPOINTS: tuple[Endpoint, ...] = (
    # experiments
    E(
        "POST",
        "/mlflow/experiments/create",
        Message(
            f("name", required=True), f("artifact_location"), f("tags", "message", repeated=True, message=KEY_VALUE)
        ),
        tracking.create_experiment,
    ),
    E("GET", "/mlflow/experiments/get", EXPERIMENT_REF, tracking.get_experiment),
    E(
        "GET",
        "/mlflow/experiments/get-by-name",
        Message(f("experiment_name", required=True)),
        tracking.get_experiment_by_name,
    ),
    E("POST", "/mlflow/experiments/search", SEARCH_EXPERIMENTS, tracking.search_experiments),
    E("GET", "/mlflow/experiments/search", SEARCH_EXPERIMENTS, tracking.search_experiments),
    E("POST", "/mlflow/experiments/delete", EXPERIMENT_REF, tracking.delete_experiment),
    E("POST", "/mlflow/experiments/restore", EXPERIMENT_REF, tracking.restore_experiment),
    E(
        "POST",
        "/mlflow/experiments/update",
        Message(f("experiment_id", required=True), f("new_name", required=True)),
        tracking.update_experiment,
    ),
    E(
        "POST",
        "/mlflow/experiments/set-experiment-tag",
        Message(f("experiment_id", required=True), f("key", required=True), f("value")),
        tracking.set_experiment_tag,
    ),
    E(
        "POST",
        "/mlflow/experiments/delete-experiment-tag",
        Message(f("experiment_id", required=True), f("key", required=True)),
        tracking.delete_experiment_tag,
    ),
    # runs
    E(
        "POST",
        "/mlflow/runs/create",
        Message(
            f("experiment_id", required=True),
            f("user_id"),
            f("run_name"),
            f("start_time", "int64"),
            f("tags", "message", repeated=True, message=KEY_VALUE),
            f("run_id"),  # mltrail extension (see docs/compatibility.md)
        ),
        tracking.create_run,
    ),
    E("GET", "/mlflow/runs/get", Message(*RUN_REF), tracking.get_run),
    E(
        "POST",
        "/mlflow/runs/update",
        Message(*RUN_REF, f("status", "enum", choices=RUN_STATUS), f("end_time", "int64"), f("run_name")),
        tracking.update_run,
    ),
    E("POST", "/mlflow/runs/delete", Message(*RUN_REF), tracking.delete_run),
    E("POST", "/mlflow/runs/restore", Message(*RUN_REF), tracking.restore_run),
    E(
        "POST",
        "/mlflow/runs/search",
        Message(
            f("experiment_ids", repeated=True),
            f("filter"),
            f("run_view_type", "enum", choices=VIEW_TYPE),
            f("max_results", "int32"),
            f("order_by", repeated=True),
            f("page_token"),
        ),
        tracking.search_runs,
    ),
    E("POST", "/mlflow/runs/log-metric", Message(*RUN_REF, *METRIC_FIELDS), tracking.log_metric),
    E(
        "POST",
        "/mlflow/runs/log-parameter",
        Message(*RUN_REF, f("key", required=True), f("value")),
        tracking.log_param,
    ),
    E("POST", "/mlflow/runs/set-tag", Message(*RUN_REF, f("key", required=True), f("value")), tracking.set_tag),
    E("POST", "/mlflow/runs/delete-tag", Message(*RUN_REF, f("key", required=True)), tracking.delete_tag),
    E(
        "POST",
        "/mlflow/runs/log-batch",
        Message(
            *RUN_REF,
            f("metrics", "message", repeated=True, message=Message(*METRIC_FIELDS)),
            f("params", "message", repeated=True, message=KEY_VALUE),
            f("tags", "message", repeated=True, message=KEY_VALUE),
        ),
        tracking.log_batch,
    ),
    E(
        "POST",
        "/mlflow/runs/log-inputs",
        Message(
            *RUN_REF,
            f(
                "datasets",
                "message",
                repeated=True,
                message=Message(
                    f("tags", "message", repeated=True, message=KEY_VALUE),
                    f("dataset", "message", required=True, message=DATASET),
                ),
            ),
            f("models", "message", repeated=True, message=Message(f("model_id", required=True))),
        ),
        tracking.log_inputs,
    ),
    E(
        "POST",
        "/mlflow/runs/outputs",
        Message(
            *RUN_REF,
            f(
                "models",
                "message",
                repeated=True,
                required=True,
                message=Message(f("model_id", required=True), f("step", "int64")),
            ),
        ),
        tracking.log_outputs,
    ),
    E(
        "POST",
        "/mlflow/logged-models/search",
        Message(
            f("experiment_ids", repeated=True),
            f("filter"),
            f("max_results", "int32"),
            f("page_token"),
        ),
        tracking.search_logged_models,
    ),
    # metric history
    E(
        "GET",
        "/mlflow/metrics/get-history",
        Message(*RUN_REF, f("metric_key", required=True), f("page_token"), f("max_results", "int32")),
        tracking.get_metric_history,
    ),
    E(
        "GET",
        "/mlflow/metrics/get-history-bulk-interval",
        Message(
            f("run_ids", repeated=True, required=True),
            f("metric_key", required=True),
            f("start_step", "int32"),
            f("end_step", "int32"),
            f("max_results", "int32"),
        ),
        tracking.get_metric_history_bulk_interval,
    ),
    E(
        "GET",
        "/mlflow/metrics/get-history-bulk",
        Message(f("run_id", repeated=True, required=True), f("metric_key", required=True), f("max_results", "int32")),
        tracking.get_metric_history_bulk,
        mount="ajax",
    ),
    # tracking-side artifacts
    E(
        "GET",
        "/mlflow/artifacts/list",
        Message(*RUN_REF, f("path"), f("page_token")),
        artifacts.list_run_artifacts,
    ),
    E(
        "GET",
        "/get-artifact",
        Message(*RUN_REF, f("path", required=True)),
        artifacts.get_run_artifact,
        mount="root",
        kind="stream",
    ),
    E(
        "GET",
        "/mlflow/get-artifact",
        Message(*RUN_REF, f("path", required=True)),
        artifacts.get_run_artifact,
        mount="ajax",
        kind="stream",
    ),
    # proxied artifact service
    E("GET", "/mlflow-artifacts/artifacts", Message(f("path")), artifacts.list_destination),
    E("GET", "/mlflow-artifacts/artifacts/{artifact_path:path}", ARTIFACT_PATH, artifacts.download, kind="stream"),
    E("PUT", "/mlflow-artifacts/artifacts/{artifact_path:path}", ARTIFACT_PATH, artifacts.upload, kind="stream"),
    E("DELETE", "/mlflow-artifacts/artifacts/{artifact_path:path}", ARTIFACT_PATH, artifacts.delete),
    E("POST", "/mlflow-artifacts/mpu/create/{artifact_path:path}", MPU_CREATE, artifacts.create_multipart_upload),
    E("POST", "/mlflow-artifacts/mpu/complete/{artifact_path:path}", MPU_COMPLETE, artifacts.complete_multipart_upload),
    E("POST", "/mlflow-artifacts/mpu/abort/{artifact_path:path}", MPU_ABORT, artifacts.abort_multipart_upload),
    E("GET", "/mlflow-artifacts/presigned/{artifact_path:path}", ARTIFACT_PATH, artifacts.presigned_download),
    # server information
    E("GET", "/health", NONE, meta.health, mount="root", kind="stream"),
    E("GET", "/version", NONE, meta.version, mount="root", kind="stream"),
    E("GET", "/mlflow/server-info", NONE, meta.server_info, version=3),
)
