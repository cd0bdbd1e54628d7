"""mltrail: fast, MLflow-compatible experiment tracking.

``import mltrail as mlflow`` gives MLflow's fluent API (``start_run``, ``log_metric``...) and client class.
Importing this package loads no heavy dependency: stores and optional libraries load on first use.
"""

from mltrail.client.client import MlflowClient, TrackingClient
from mltrail.client.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    flush,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_run,
    get_tracking_uri,
    last_active_run,
    list_artifacts,
    log_artifact,
    log_artifacts,
    log_dict,
    log_image,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_experiments,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from mltrail.errors import MlflowException, MltrailException
from mltrail.version import __version__

#: MLflow's name for :func:`flush`.
flush_async_logging = flush

__all__ = [
    "ActiveRun",
    "MlflowClient",
    "MlflowException",
    "MltrailException",
    "TrackingClient",
    "__version__",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "list_artifacts",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_image",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
