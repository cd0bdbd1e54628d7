"""Reading one run folder: lazily, value by value (for search), or whole (for ``get_run`` and result pages)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from mltrail.entities import Metric, Run, RunData, RunInputs
from mltrail.errors import MltrailException
from mltrail.search.ast import Identifier
from mltrail.store.file import _fs
from mltrail.store.file._inputs import read_dataset_inputs
from mltrail.store.file._meta import run_info_from_meta, run_lifecycle, run_status
from mltrail.store.file._metrics import MetricSummary, summarize, to_metric
from mltrail.validation import validate_key

METRICS_DIR = "metrics"
PARAMS_DIR = "params"
TAGS_DIR = "tags"
ARTIFACTS_DIR = "artifacts"
RUN_NAME_TAG = "mlflow.runName"
_DATASET_CONTEXT_TAG = "mlflow.data.context"


def key_path(run_dir: str, subdir: str, key: str) -> str:
    return os.path.join(run_dir, subdir, *key.split("/"))


def is_safe_key(key: str) -> bool:
    """Whether ``key`` can name a file below a run (search identifiers are not validated by the parser)."""
    try:
        validate_key(key)
    except MltrailException:
        return False
    return True


def read_values(run_dir: str, subdir: str) -> dict[str, str]:
    directory = os.path.join(run_dir, subdir)
    values = {}
    for key in _fs.list_keys(directory):
        text = _fs.read_text(os.path.join(directory, *key.split("/")))
        if text is not None:
            values[key] = text
    return values


def read_value(run_dir: str, subdir: str, key: str) -> str | None:
    return _fs.read_text(key_path(run_dir, subdir, key)) if is_safe_key(key) else None


@dataclass(slots=True)
class RunFolder:
    """A run found on disk: where it is, and its parsed meta.yaml."""

    run_id: str
    experiment_id: str
    experiment_dir: str
    in_trash: bool
    meta: dict[str, Any]
    path: str = ""

    def __post_init__(self) -> None:
        self.path = os.path.join(self.experiment_dir, self.run_id)

    @property
    def lifecycle_stage(self) -> str:
        return run_lifecycle(self.meta, self.in_trash)

    def run_name(self) -> str:
        """MLflow falls back to the ``mlflow.runName`` tag when meta.yaml has no name (old runs)."""
        return str(self.meta.get("run_name") or read_value(self.path, TAGS_DIR, RUN_NAME_TAG) or "")

    def metric_summary(self, key: str, with_range: bool = False, listed: bool = False) -> MetricSummary | None:
        """``listed``: the key comes from listing the folder, so it needs no check before use as a path."""
        if not listed and not is_safe_key(key):
            return None
        data = _fs.read_bytes(key_path(self.path, METRICS_DIR, key))
        return None if data is None else summarize(data, key, self.experiment_id, with_range)

    def latest_metrics(self) -> list[Metric]:
        metrics = []
        for key in sorted(_fs.list_keys(os.path.join(self.path, METRICS_DIR))):
            summary = self.metric_summary(key, listed=True)
            if summary is not None:
                metrics.append(to_metric(key, summary.latest, self.run_id))
        return metrics

    def to_run(self) -> Run:
        info = run_info_from_meta(self.meta, self.run_id, self.experiment_id, self.in_trash)
        tags = read_values(self.path, TAGS_DIR)
        if not info.run_name:
            info.run_name = tags.get(RUN_NAME_TAG, "")
        data = RunData(self.latest_metrics(), read_values(self.path, PARAMS_DIR), tags)
        inputs = RunInputs(dataset_inputs=read_dataset_inputs(self.experiment_dir, self.path))
        return Run(info, data, inputs)


@dataclass(slots=True)
class RunRow:
    """A search row over one run folder that reads a file only when the query asks for its value."""

    folder: RunFolder
    _cache: dict[Identifier, object] = field(default_factory=dict)

    def value(self, identifier: Identifier) -> object | None:
        try:
            return self._cache[identifier]
        except KeyError:
            value = self._cache[identifier] = self._load(identifier)
            return value

    def _load(self, identifier: Identifier) -> object | None:
        kind, key, folder = identifier.kind, identifier.key, self.folder
        if kind == "attribute":
            return self._attribute(key)
        if kind == "metric":
            summary = folder.metric_summary(key, with_range=identifier.aggregate != "latest")
            if summary is None:
                return None
            return summary.latest[1] if identifier.aggregate == "latest" else getattr(summary, identifier.aggregate)
        if kind == "param":
            return read_value(folder.path, PARAMS_DIR, key)
        if kind == "tag":
            return read_value(folder.path, TAGS_DIR, key)
        if kind == "dataset":
            return self._dataset_values(key)
        return None

    def _attribute(self, key: str) -> object | None:
        meta, folder = self.folder.meta, self.folder
        if key == "run_id":
            return folder.run_id
        if key == "run_name":
            return folder.run_name()
        if key == "status":
            return run_status(meta).value
        if key == "lifecycle_stage":
            return folder.lifecycle_stage
        if key in ("start_time", "end_time"):
            raw = meta.get(key)
            return None if raw is None else int(raw)
        if key in ("user_id", "artifact_uri"):
            raw = meta.get(key)
            return None if raw is None else str(raw)
        return None

    def _dataset_values(self, key: str) -> tuple[str | None, ...]:
        inputs = read_dataset_inputs(self.folder.experiment_dir, self.folder.path)
        if key == "context":
            return tuple(next((t.value for t in i.tags if t.key == _DATASET_CONTEXT_TAG), None) for i in inputs)
        return tuple(getattr(i.dataset, key, None) for i in inputs)
