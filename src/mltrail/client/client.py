"""``TrackingClient``: MLflow's ``MlflowClient`` methods over any tracking store.

Run data (metrics, params, tags) goes through the store's :class:`~mltrail.client.batching.BackgroundLogger`:
calls validate their input, enqueue and return. Reads (``get_run``, ``search_runs``, metric history) first
wait for what this process enqueued, so a client always reads its own writes. ``synchronous=True`` (or
``MLTRAIL_SYNCHRONOUS_LOGGING=true``) writes before returning and raises store errors at the call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mltrail import config
from mltrail.artifacts import logging_helpers
from mltrail.artifacts.base import ArtifactRepository
from mltrail.artifacts.registry import get_artifact_repository
from mltrail.client import batching, spool
from mltrail.client.context import MLFLOW_DATASET_CONTEXT, MLFLOW_RUN_NAME, MLFLOW_USER
from mltrail.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    FileInfo,
    InputTag,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import MltrailException
from mltrail.store import registry
from mltrail.store.base import TrackingStore
from mltrail.validation import (
    MAX_INT64,
    SEARCH_MAX_RESULTS_DEFAULT,
    validate_key,
    validate_metric,
    validate_metrics,
    validate_param,
    validate_tag,
)

_MIN_INT64 = -MAX_INT64 - 1

#: Metric keys already validated in this process: the hot path skips the regex for them.
_valid_metric_keys: set[str] = set()


def now_millis() -> int:
    return time.time_ns() // 1_000_000


def _run_tags(tags: Mapping[str, Any] | None) -> list[RunTag]:
    return [validate_tag(RunTag(key, str(value))) for key, value in (tags or {}).items()]


def dataset_input(dataset: Any, context: str | None = None, tags: Mapping[str, str] | None = None) -> DatasetInput:
    """A :class:`DatasetInput` from our :class:`Dataset`, or any object with MLflow's dataset attributes
    (``name``, ``digest``, ``source_type``/``source``, optional ``schema``/``profile``), e.g. an
    ``mlflow.data`` dataset's ``_to_mlflow_entity()``."""
    if not isinstance(dataset, Dataset):
        entity = dataset._to_mlflow_entity() if hasattr(dataset, "_to_mlflow_entity") else dataset
        try:
            dataset = Dataset(
                name=str(entity.name),
                digest=str(entity.digest),
                source_type=str(entity.source_type),
                source=str(entity.source),
                schema=getattr(entity, "schema", None),
                profile=getattr(entity, "profile", None),
            )
        except AttributeError as exc:
            raise MltrailException.invalid_parameter(f"Not a dataset: {exc}") from None
    input_tags = [InputTag(key, str(value)) for key, value in (tags or {}).items()]
    if context:
        input_tags.append(InputTag(MLFLOW_DATASET_CONTEXT, context))
    return DatasetInput(dataset, tuple(input_tags))


#: Entities from which a ``log_batch`` call is written directly (see :meth:`TrackingClient.log_batch`).
DIRECT_BATCH_ENTITIES = 500


class TrackingClient:
    """Client of one tracking store, named and behaving like MLflow's ``MlflowClient``."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        self._tracking_uri = os.fspath(tracking_uri) if tracking_uri else config.get_tracking_uri()
        self._synchronous = config.get_env_bool("SYNCHRONOUS_LOGGING")
        self._generation = -1
        self._store: TrackingStore | None = None
        self._logger: batching.BackgroundLogger | None = None
        self._accepted_runs: set[str] = set()

    @property
    def tracking_uri(self) -> str:
        return self._tracking_uri

    def _refresh(self) -> None:
        """(Re)bind the store and its logger: on first use and in a forked child."""
        self._store = spool.wrap(registry.get_tracking_store(self._tracking_uri))
        self._logger = batching.logger_for(self._store)
        self._accepted_runs = set()
        self._generation = registry.generation

    @property
    def store(self) -> TrackingStore:
        if self._generation != registry.generation:
            self._refresh()
        return self._store  # type: ignore[return-value]

    @property
    def logger(self) -> batching.BackgroundLogger:
        if self._generation != registry.generation:
            self._refresh()
        return self._logger  # type: ignore[return-value]

    def _wait(self) -> None:
        """Let queued writes of this process land before a read or an ordered write."""
        self.logger.wait()

    def flush(self) -> None:
        """Store everything logged so far; raise the first background logging error since the last flush."""
        self.logger.flush()

    # --- experiments -------------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> str:
        experiment_tags = [ExperimentTag(key, str(value)) for key, value in (tags or {}).items()]
        return self.store.create_experiment(name, artifact_location, experiment_tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
        max_results: int | None = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        return self.store.search_experiments(
            ViewType.parse(view_type), max_results, filter_string or None, order_by, page_token
        )

    def delete_experiment(self, experiment_id: str) -> None:
        self._wait()
        self.store.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.restore_experiment(str(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.store.rename_experiment(str(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.store.set_experiment_tag(str(experiment_id), ExperimentTag(key, str(value)))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.store.delete_experiment_tag(str(experiment_id), key)

    # --- runs --------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        run_tags = _run_tags(tags)
        user_id = next((t.value for t in run_tags if t.key == MLFLOW_USER), "unknown")
        run = self.store.create_run(str(experiment_id), user_id, start_time or now_millis(), run_tags, run_name)
        self._accepted_runs.add(run.info.run_id)
        return run

    def get_run(self, run_id: str) -> Run:
        self._wait()
        return self.store.get_run(run_id)

    def update_run(self, run_id: str, status: str | RunStatus | None = None, name: str | None = None) -> None:
        """Change status and/or name; a terminal status also records the end time."""
        self._wait()
        run_status = RunStatus.parse(status) if status is not None else None
        end_time = now_millis() if run_status is not None and run_status.is_terminated else None
        self.store.update_run_info(run_id, run_status, end_time, name)

    def set_terminated(self, run_id: str, status: str | RunStatus | None = None, end_time: int | None = None) -> None:
        self._wait()
        self.store.update_run_info(run_id, RunStatus.parse(status or RunStatus.FINISHED), end_time or now_millis())
        self.logger.forget_run(run_id)

    def delete_run(self, run_id: str) -> None:
        self._wait()
        self.store.delete_run(run_id)
        self._accepted_runs.discard(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: str | Sequence[str],
        filter_string: str = "",
        run_view_type: ViewType | int | str = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        ids = [experiment_ids] if isinstance(experiment_ids, str) else [str(i) for i in experiment_ids]
        self._wait()
        return self.store.search_runs(
            ids, filter_string or None, ViewType.parse(run_view_type), max_results, order_by, page_token
        )

    # --- run data ----------------------------------------------------------------------------------
    def _accept_run(self, run_id: str) -> None:
        """Refuse unknown or deleted runs at the call, once per run, instead of at the next flush."""
        if run_id in self._accepted_runs:
            return
        run = self.store.get_run(run_id)
        if run.info.lifecycle_stage != LifecycleStage.ACTIVE:
            raise MltrailException.invalid_parameter(
                f"The run {run_id} must be in the 'active' state. Current state is {run.info.lifecycle_stage}."
            )
        self._accepted_runs.add(run_id)

    def _log(
        self,
        run_id: str,
        synchronous: bool | None,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Write validated entities now, or queue them (in the order metrics, params, tags)."""
        self._accept_run(run_id)
        if synchronous or (synchronous is None and self._synchronous):
            self.logger.log_entities_now(run_id, metrics, params, tags)
        else:
            self.logger.log_entities(run_id, [*metrics, *params, *tags])

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        model_id: str | None = None,
    ) -> None:
        if step is None:
            step = 0
        if timestamp is None:
            timestamp = time.time_ns() // 1_000_000
        value_type = type(value)
        if (
            (value_type is float or value_type is int)
            and key in _valid_metric_keys
            and type(step) is int
            and _MIN_INT64 <= step <= MAX_INT64
            and type(timestamp) is int
            and 0 <= timestamp <= MAX_INT64
            and synchronous is not True
            and not self._synchronous
            and dataset_name is None
            and model_id is None
            and run_id in self._accepted_runs
            and self._generation == registry.generation
        ):
            # Hot path: everything is known valid, skip entity construction and validation.
            self._logger.log_metric(run_id, key, float(value), timestamp, step)  # type: ignore[union-attr]
            return
        validate_metric(Metric(key, value, timestamp, step, dataset_name, dataset_digest, model_id))
        # Store plain Python numbers (numpy scalars pass validation but not every store's encoder).
        metric = Metric(key, float(value), int(timestamp), int(step), dataset_name, dataset_digest, model_id)
        self._log(run_id, synchronous, metrics=(metric,))
        _valid_metric_keys.add(key)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self._log(run_id, synchronous, params=(validate_param(Param(key, str(value))),))
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        tag = validate_tag(RunTag(key, str(value)))
        if tag.key == MLFLOW_RUN_NAME:  # renames the run: a store operation of its own, in order
            self._accept_run(run_id)
            self._wait()
            self.store.set_tag(run_id, tag)
            return
        self._log(run_id, synchronous, tags=(tag,))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._wait()
        self.store.delete_tag(run_id, validate_key(key, "key"))

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric] = (),
        params: Iterable[Param] = (),
        tags: Iterable[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        """Any number of entities: split into batches within the store limits.

        A call of :data:`DIRECT_BATCH_ENTITIES` entities or more is a store batch already: unless ``synchronous``
        is False it is written by the calling thread (after what is queued), as handing it to the background
        worker entity by entity would cost more than the write itself; its errors raise here.
        """
        checked_metrics = validate_metrics(list(metrics), indexed=False)
        checked_params = [validate_param(p) for p in params]
        checked_tags = [validate_tag(t) for t in tags]
        other_tags = [t for t in checked_tags if t.key != MLFLOW_RUN_NAME]
        count = len(checked_metrics) + len(checked_params) + len(other_tags)
        if synchronous is None and count >= DIRECT_BATCH_ENTITIES:
            synchronous = True
        if count:
            self._log(run_id, synchronous, checked_metrics, checked_params, other_tags)
        for tag in checked_tags:
            if tag.key == MLFLOW_RUN_NAME:
                self.set_tag(run_id, tag.key, tag.value)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] | None = None) -> None:
        self._wait()
        self.store.log_inputs(run_id, list(datasets or ()))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of ``key`` (all pages)."""
        self._wait()
        points: list[Metric] = []
        token: str | None = None
        while True:
            page = self.store.get_metric_history(run_id, key, page_token=token)
            points.extend(page)
            token = page.token
            if not token:
                return points

    # --- artifacts ---------------------------------------------------------------------------------
    def _repository(self, run_id: str) -> ArtifactRepository:
        return get_artifact_repository(self.store.get_run(run_id).info.artifact_uri, self._tracking_uri)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """Upload a file, or a directory as ``<artifact_path>/<dir name>``, like MLflow."""
        repository = self._repository(run_id)
        if os.path.isdir(local_path):
            name = os.path.basename(os.path.normpath(local_path))
            repository.log_artifacts(local_path, "/".join(p for p in (artifact_path, name) if p))
        else:
            repository.log_artifact(local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        self._repository(run_id).log_artifacts(local_dir, artifact_path)

    def _write_artifact(self, run_id: str, artifact_file: str, data: bytes) -> None:
        with self._repository(run_id).open_write(artifact_file) as sink:
            sink.write(data)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._write_artifact(run_id, artifact_file, logging_helpers.text_bytes(text))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        self._write_artifact(run_id, artifact_file, logging_helpers.dict_bytes(dictionary, artifact_file))

    def log_image(self, run_id: str, image: Any, artifact_file: str | None = None) -> None:
        """Save a numpy array or PIL image as ``artifact_file`` (format from its extension, e.g. ``.png``)."""
        if not artifact_file:
            raise MltrailException.invalid_parameter("log_image needs 'artifact_file', e.g. 'plots/loss.png'")
        self._write_artifact(run_id, artifact_file, logging_helpers.image_bytes(image, artifact_file))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self._repository(run_id).list_artifacts(path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        return self._repository(run_id).download_artifacts(path, dst_path)


#: MLflow's name, for code ported from ``mlflow.MlflowClient``.
MlflowClient = TrackingClient
