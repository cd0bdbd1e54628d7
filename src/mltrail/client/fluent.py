"""MLflow's fluent API (``mlflow.start_run``, ``mlflow.log_metric``...): an active-run stack per thread on
top of :class:`TrackingClient`.

A run remembers the client that started it, so logging into the active run costs a stack lookup and an
enqueue. Runs still open when the interpreter exits are ended: FAILED (KILLED for Ctrl-C) when the exit is
an uncaught exception, FINISHED otherwise.
"""

from __future__ import annotations

import atexit
import logging
import os
import posixpath
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from mltrail import config
from mltrail.client import batching, context, system_metrics
from mltrail.client.client import TrackingClient, dataset_input, now_millis
from mltrail.entities import Experiment, FileInfo, LifecycleStage, PagedList, Run, RunStatus, ViewType
from mltrail.errors import MltrailException
from mltrail.validation import SEARCH_MAX_RESULTS_DEFAULT

_log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT_ID = "0"
_SEARCH_ALL_MAX = 100_000


class ActiveRun(Run):
    """The run returned by :func:`start_run`; a context manager that ends it. Its data is a snapshot taken at
    start (use :func:`get_run` for current values), like MLflow's ``ActiveRun``."""

    def __init__(self, run: Run, client: TrackingClient, log_system_metrics: bool = False) -> None:
        Run.__init__(self, run.info, run.data, run.inputs, run.outputs)
        self.client = client
        self.log_system_metrics = log_system_metrics
        self.system_metrics_monitor: system_metrics.SystemMetricsMonitor | None = None
        self.owner_pid = os.getpid()  # a forked child must not end its parent's runs at exit

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            _end_through(self, RunStatus.FINISHED)
            return
        status = RunStatus.KILLED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        try:
            _end_through(self, status)
        except Exception as end_error:  # the user's exception matters more; this one was logged already
            _log.error("mltrail: error while ending run %s: %s", self.info.run_id, end_error)


# --- process and thread state --------------------------------------------------------------------------
class _RunStack(list):  # type: ignore[type-arg]
    """A thread's active runs (a list subclass so the process-wide set can hold it weakly)."""


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.stack: list[ActiveRun] = _RunStack()
        self.last_run_id: str | None = None
        self.last_client: TrackingClient | None = None
        with _stacks_lock:
            _all_stacks[id(self.stack)] = self.stack


_stacks_lock = threading.Lock()
#: Every thread's stack, to end open runs at exit; a finished thread's stack disappears with it.
_all_stacks: weakref.WeakValueDictionary[int, _RunStack] = weakref.WeakValueDictionary()
_state = _ThreadState()
_active_experiment_id: str | None = None
_active_experiment_uri: str | None = None
_clients: dict[tuple[str, bool], TrackingClient] = {}


def _client() -> TrackingClient:
    """The client of the current tracking URI (and synchronous-logging setting)."""
    key = (config.get_tracking_uri(), config.get_env_bool("SYNCHRONOUS_LOGGING"))
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = TrackingClient(key[0])
    return client


def set_tracking_uri(uri: str | None) -> None:
    config.set_tracking_uri(uri)


def get_tracking_uri() -> str:
    return config.get_tracking_uri()


# --- experiments ---------------------------------------------------------------------------------------
def _ensure_active(experiment: Experiment) -> Experiment:
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise MltrailException.invalid_parameter(
            f"Cannot set a deleted experiment '{experiment.name}' as the active experiment. "
            "You can restore the experiment, or permanently delete the experiment to create a new one."
        )
    return experiment


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment active for new runs: by name (created if missing) or by id. Returns it."""
    global _active_experiment_id, _active_experiment_uri
    if (experiment_name is None) == (experiment_id is None):
        raise MltrailException.invalid_parameter("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    client = _client()
    if experiment_id is not None:
        experiment = _ensure_active(client.get_experiment(str(experiment_id)))
    else:
        experiment = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
        if experiment is None:
            try:
                client.create_experiment(experiment_name)  # type: ignore[arg-type]
            except MltrailException as exc:  # created meanwhile by another process
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            experiment = client.get_experiment_by_name(experiment_name)  # type: ignore[arg-type]
            assert experiment is not None
        _ensure_active(experiment)
    _active_experiment_id, _active_experiment_uri = experiment.experiment_id, client.tracking_uri
    return experiment


def _experiment_id(client: TrackingClient) -> str:
    """Active experiment (set for this tracking URI) > env experiment name (created if missing) > env id > 0."""
    if _active_experiment_id is not None and _active_experiment_uri == client.tracking_uri:
        return _active_experiment_id
    name = config.get_env("EXPERIMENT_NAME")
    if name:
        experiment = client.get_experiment_by_name(name)
        return experiment.experiment_id if experiment else client.create_experiment(name)
    return config.get_env("EXPERIMENT_ID") or DEFAULT_EXPERIMENT_ID


def create_experiment(name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None) -> str:
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _client().get_experiment_by_name(name)


def delete_experiment(experiment_id: str) -> None:
    _client().delete_experiment(experiment_id)


def search_experiments(
    view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[Experiment]:
    """All matching experiments (every page), up to ``max_results`` if given."""
    client = _client()
    found: list[Experiment] = []
    token: str | None = None
    while max_results is None or len(found) < max_results:
        page_size = SEARCH_MAX_RESULTS_DEFAULT if max_results is None else min(max_results - len(found), 50_000)
        page = client.search_experiments(view_type, page_size, filter_string, order_by, token)
        found.extend(page)
        token = page.token
        if not token:
            break
    return found


# --- runs ----------------------------------------------------------------------------------------------
def active_run() -> ActiveRun | None:
    stack = _state.stack
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the last run this thread ended (fetched fresh), else ``None``."""
    run = active_run()
    if run is not None:
        return run
    if _state.last_run_id is None or _state.last_client is None:
        return None
    return _state.last_client.get_run(_state.last_run_id)


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a new run, or resume ``run_id`` (or ``MLTRAIL_RUN_ID``/``MLFLOW_RUN_ID``), and make it active."""
    stack = _state.stack
    if stack and not nested:
        raise MltrailException(
            f"Run with UUID {stack[-1].info.run_id} is already active. To start a new run, first end the "
            "current run with mltrail.end_run(). To start a nested run, call start_run with nested=True",
            "INVALID_STATE",
        )
    if parent_run_id is not None and stack and stack[-1].info.run_id != parent_run_id:
        raise MltrailException.invalid_parameter(
            f"Current run with UUID {stack[-1].info.run_id} does not match the specified parent_run_id "
            f"{parent_run_id}. To start a new nested run under the parent run with UUID {parent_run_id}, "
            "first end the current run with mltrail.end_run()."
        )
    client = _client()
    extra_tags = {str(k): str(v) for k, v in (tags or {}).items()}
    if description is not None:
        extra_tags[context.MLFLOW_NOTE] = description
    parent = parent_run_id or (stack[-1].info.run_id if stack and nested else None)
    if parent is not None:
        extra_tags[context.MLFLOW_PARENT_RUN_ID] = parent
    resume_id = run_id or config.get_env("RUN_ID")
    if resume_id:
        run = _resume(client, resume_id, experiment_id, run_name, extra_tags)
    else:
        run = client.create_run(
            experiment_id=str(experiment_id) if experiment_id is not None else _experiment_id(client),
            tags={**context.system_tags(), **extra_tags},
            run_name=run_name,
        )
    active = ActiveRun(run, client, system_metrics.enabled(log_system_metrics))
    if active.log_system_metrics:
        active.system_metrics_monitor = system_metrics.SystemMetricsMonitor(client, run.info.run_id).start()
    stack.append(active)
    return active


def _resume(
    client: TrackingClient, run_id: str, experiment_id: str | None, run_name: str | None, tags: dict[str, str]
) -> Run:
    run = client.get_run(run_id)
    if experiment_id is not None and str(experiment_id) != run.info.experiment_id:
        raise MltrailException.invalid_parameter(
            f"The run {run_id} belongs to experiment {run.info.experiment_id}, not {experiment_id}."
        )
    if run.info.lifecycle_stage == LifecycleStage.DELETED:
        raise MltrailException.invalid_parameter(
            f"Cannot start run with ID {run_id} because it is in the deleted state."
        )
    client.update_run(run_id, RunStatus.RUNNING, run_name)
    for key, value in tags.items():
        client.set_tag(run_id, key, value, synchronous=True)
    return client.get_run(run_id)


def _terminate(run: ActiveRun, status: RunStatus | str) -> None:
    """Terminate ``run`` after its queued data is stored. A background logging error is raised after the run
    is ended, so the run never stays RUNNING because of it."""
    if run.system_metrics_monitor is not None:
        run.system_metrics_monitor.stop()
    try:
        run.client.flush()
    finally:
        run.client.set_terminated(run.info.run_id, status)


def _end_top(status: RunStatus | str) -> None:
    run = _state.stack.pop()
    _state.last_run_id, _state.last_client = run.info.run_id, run.client
    _terminate(run, status)


def _end_through(run: ActiveRun, status: RunStatus | str) -> None:
    """End ``run`` and any nested runs still open above it in this thread's stack."""
    stack = _state.stack
    if not any(r is run for r in stack):
        return
    while stack and stack[-1] is not run:
        _end_top(status)
    _end_top(status)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (no-op without one)."""
    if _state.stack:
        _end_top(status)


def _run_and_client(run_id: str | None) -> tuple[str, TrackingClient]:
    if run_id is not None:
        run = active_run()
        if run is not None and run.info.run_id == run_id:
            return run_id, run.client
        return run_id, _client()
    run = active_run() or start_run()
    return run.info.run_id, run.client


def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)


def delete_run(run_id: str) -> None:
    _client().delete_run(run_id)


# --- logging -------------------------------------------------------------------------------------------
def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    stack = _state.stack
    if run_id is None and stack:  # the hot path
        run = stack[-1]
        run.client.log_metric(run.info.run_id, key, value, timestamp, step, synchronous)
        return
    target, client = _run_and_client(run_id)
    client.log_metric(target, key, value, timestamp, step, synchronous)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
) -> None:
    target, client = _run_and_client(run_id)
    timestamp = timestamp if timestamp is not None else now_millis()  # one timestamp for all, like MLflow
    for key, value in metrics.items():
        client.log_metric(target, key, value, timestamp, step, synchronous)


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    target, client = _run_and_client(None)
    return client.log_param(target, key, value, synchronous)


def log_params(params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None) -> None:
    target, client = _run_and_client(run_id)
    for key, value in params.items():
        client.log_param(target, key, value, synchronous)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    target, client = _run_and_client(None)
    client.set_tag(target, key, value, synchronous)


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    target, client = _run_and_client(None)
    for key, value in tags.items():
        client.set_tag(target, key, value, synchronous)


def delete_tag(key: str) -> None:
    target, client = _run_and_client(None)
    client.delete_tag(target, key)


def log_input(
    dataset: Any, context: str | None = None, tags: Mapping[str, str] | None = None, run_id: str | None = None
) -> None:
    """Record a dataset the run used (our ``Dataset`` entity or an MLflow-style dataset object)."""
    target, client = _run_and_client(run_id)
    client.log_inputs(target, [dataset_input(dataset, context, tags)])


def flush() -> None:
    """Store everything logged so far; raise the first background logging error since the last flush."""
    batching.flush_all()


# --- artifacts -----------------------------------------------------------------------------------------
def log_artifact(local_path: str, artifact_path: str | None = None, run_id: str | None = None) -> None:
    target, client = _run_and_client(run_id)
    client.log_artifact(target, local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None, run_id: str | None = None) -> None:
    target, client = _run_and_client(run_id)
    client.log_artifacts(target, local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    target, client = _run_and_client(run_id)
    client.log_text(target, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    target, client = _run_and_client(run_id)
    client.log_dict(target, dictionary, artifact_file)


def log_image(image: Any, artifact_file: str | None = None, run_id: str | None = None) -> None:
    target, client = _run_and_client(run_id)
    client.log_image(target, image, artifact_file)


def list_artifacts(path: str | None = None, run_id: str | None = None) -> list[FileInfo]:
    target, client = _run_and_client(run_id)
    return client.list_artifacts(target, path)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """URI of the active run's artifact root, or of ``artifact_path`` under it."""
    target, client = _run_and_client(None)
    root = client.get_run(target).info.artifact_uri
    if not artifact_path:
        return root
    return posixpath.join(root.rstrip("/"), artifact_path.lstrip("/"))


# --- search --------------------------------------------------------------------------------------------
def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
    max_results: int = _SEARCH_ALL_MAX,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs of the given experiments (default: the active one; every experiment with
    ``search_all_experiments``), all pages up to ``max_results``: a pandas DataFrame or a list of Run."""
    if output_format not in ("pandas", "list"):
        raise MltrailException.invalid_parameter(
            f"Unsupported output format: {output_format}. Supported string values are 'pandas' or 'list'"
        )
    client = _client()
    ids = [str(i) for i in experiment_ids or ()]
    for name in experiment_names or ():
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            ids.append(experiment.experiment_id)
    if not ids and not experiment_names:
        if search_all_experiments:
            ids = [e.experiment_id for e in search_experiments(view_type=ViewType.ALL)]
        else:
            ids = [_experiment_id(client)]
    runs: list[Run] = []
    token: str | None = None
    while ids and len(runs) < max_results:
        page: PagedList[Run] = client.search_runs(
            ids, filter_string, run_view_type, min(max_results - len(runs), 50_000), order_by, token
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    if output_format == "list":
        return runs
    from mltrail.client.frames import runs_to_dataframe

    return runs_to_dataframe(runs)


# --- interpreter exit ----------------------------------------------------------------------------------
def _exit_status() -> RunStatus:
    """FAILED (KILLED for Ctrl-C) when the interpreter is exiting because of an uncaught exception."""
    last = getattr(sys, "last_value", None) or getattr(sys, "last_exc", None)
    if last is None or isinstance(last, SystemExit):
        return RunStatus.FINISHED
    return RunStatus.KILLED if isinstance(last, KeyboardInterrupt) else RunStatus.FAILED


def _end_runs_at_exit() -> None:
    status = _exit_status()
    with _stacks_lock:
        stacks = [stack for stack in _all_stacks.values() if stack]
    for stack in stacks:
        while stack:
            run = stack.pop()
            if run.owner_pid != os.getpid():
                continue
            try:
                _terminate(run, status)
            except Exception as exc:
                _log.error("mltrail: could not end run %s at exit: %s", run.info.run_id, exc)


def _reset_after_fork() -> None:
    global _stacks_lock
    _stacks_lock = threading.Lock()


atexit.register(_end_runs_at_exit)
os.register_at_fork(after_in_child=_reset_after_fork)
