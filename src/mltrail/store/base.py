"""The one interface every backend store implements: directory, SQL and REST.

The tracking server's routes and the embedded client both call exactly these methods, so behaviour is the
same in every mode. The store contract suite (``tests/contract``) is the executable definition of what each
method must do; the docstrings below say it in words.

Rules every implementation follows:
- Validate the whole request (``mltrail.validation``) before writing anything: no partial writes.
- Raise :class:`mltrail.errors.MltrailException` with MLflow's error codes and messages.
- Writes into a deleted run, or a new run in a deleted experiment, raise ``INVALID_PARAMETER_VALUE``
  ``The run <id> must be in the 'active' state. Current state is deleted.``
- Idempotent writes: re-logging a param with the same value, the same metric point (key, value, timestamp,
  step) twice, or replaying a whole batch stores nothing twice and raises nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from mltrail.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)


@runtime_checkable
class TrackingStore(Protocol):
    # --- experiments -------------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] | None = None
    ) -> str:
        """Create an experiment and return its id. A name in use, even by a deleted experiment, raises
        RESOURCE_ALREADY_EXISTS ``Experiment(name=<name>) already exists.``. Default artifact location is
        ``<default_artifact_root>/<experiment_id>``."""
        ...

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Raises RESOURCE_DOES_NOT_EXIST ``No Experiment with id=<id> exists``."""
        ...

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The active experiment of that name, else a deleted one, else ``None``."""
        ...

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        """Default order ``creation_time DESC, experiment_id ASC``; max_results 1..50000 (default 1000)."""
        ...

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft delete; its runs become deleted too. Deleting a deleted experiment raises
        RESOURCE_DOES_NOT_EXIST."""
        ...

    def restore_experiment(self, experiment_id: str) -> None:
        """Undo delete_experiment (and restore the runs it deleted)."""
        ...

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Deleted experiments raise INVALID_STATE ``Cannot rename a non-active experiment.``"""
        ...

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None: ...

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...

    # --- runs --------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        """New RUNNING run with a 32-hex id. ``run_name`` (random if absent, or taken from a
        ``mlflow.runName`` tag) is stored as the run name and the ``mlflow.runName`` tag.

        ``run_id`` (an mltrail extension, for offline spools and ``mltrail sync``): create the run with this id
        (32 lowercase hex characters, else INVALID_PARAMETER_VALUE). If a run with this id already exists in
        the same experiment it is returned unchanged (idempotent replay); in another experiment,
        RESOURCE_ALREADY_EXISTS."""
        ...

    def get_run(self, run_id: str) -> Run:
        """Raises RESOURCE_DOES_NOT_EXIST ``Run with id=<id> not found``. Deleted runs are returned."""
        ...

    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Only given fields change; a new run_name also updates the ``mlflow.runName`` tag."""
        ...

    def delete_run(self, run_id: str) -> None:
        """Soft delete (records deleted_time); deleting twice is fine."""
        ...

    def restore_run(self, run_id: str) -> None: ...

    # --- run data ----------------------------------------------------------------------------------
    def log_metric(self, run_id: str, metric: Metric) -> None: ...

    def log_param(self, run_id: str, param: Param) -> None:
        """A different value for an existing key raises INVALID_PARAMETER_VALUE ``Changing param values is
        not allowed. Param with key='k' was already logged with value='v1' for run ID='<id>'. Attempted
        logging new value 'v2'.``"""
        ...

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        """Setting ``mlflow.runName`` renames the run."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None:
        """Missing key raises RESOURCE_DOES_NOT_EXIST ``No tag with name: <k> in run with id <id>``."""
        ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """All or nothing: validated first, then written in one transaction (SQL) or one pass."""
        ...

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] = ()) -> None: ...

    def get_metric_history(
        self, run_id: str, metric_key: str, max_results: int | None = None, page_token: str | None = None
    ) -> PagedList[Metric]:
        """Every point of one key, ordered by (timestamp, step, value) like MLflow. Unknown key → empty
        list. Points logged twice identically are returned once."""
        ...

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Filter with the search language; order by the given keys, then ``start_time DESC``,
        then ``run_id ASC``. NULL/NaN sort last in both directions."""
        ...
