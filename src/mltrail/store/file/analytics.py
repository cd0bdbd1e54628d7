"""The directory store's :class:`~mltrail.store.analytics.AnalyticsStore` methods.

What is cheap on a folder tree, each returning what the generic computation would:
- ``count_runs`` and ``group_runs`` filter the lazy search rows and read only the files the filter and the
  grouping need (no ``Run`` is built: that would read every param, tag and metric file);
- ``list_keys`` lists the params/metrics/tags folders instead of reading the files;
- ``get_bucketed_metric_history`` parses a metric file with numpy when it is installed (the ``images`` extra) and
  downsamples with array operations; without numpy, or for files with legacy lines, it takes the generic path.

Metric summaries have no shortcut here (they need every point anyway), so the server uses the generic path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from mltrail.entities import ViewType
from mltrail.search.ast import Identifier
from mltrail.store import analytics as a
from mltrail.store.bucket_arrays import bucket_arrays, finite_columns
from mltrail.store.file import _fs
from mltrail.store.file._meta import run_info_from_meta
from mltrail.store.file._metrics import history, to_metric
from mltrail.store.file._runs import METRICS_DIR, PARAMS_DIR, TAGS_DIR, RunFolder, RunRow, key_path
from mltrail.validation import validate_key


class FileAnalytics:
    """Mixin of :class:`mltrail.store.file.FileStore`, whose ``_ensure_ready``, ``_run_rows`` (lazy search rows)
    and ``_find_run`` it uses."""

    _ensure_ready: Callable[[], None]
    _run_rows: Callable[[Sequence[str], tuple[str, ...]], Iterator[RunRow]]
    _find_run: Callable[[str], RunFolder]

    def _matching_rows(
        self, experiment_ids: Sequence[str], filter_string: str | None, run_view_type: ViewType
    ) -> Iterator[RunRow]:
        """The rows ``search_runs`` would return, unsorted."""
        from mltrail.search.in_memory import compile_filter
        from mltrail.search.parser import parse_run_filter

        predicate = compile_filter(parse_run_filter(filter_string))
        stages = ViewType.parse(run_view_type).stages()
        self._ensure_ready()
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        return (row for row in self._run_rows(experiment_ids, stages) if predicate(row))

    def count_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> int:
        return sum(1 for _ in self._matching_rows(experiment_ids, filter_string, run_view_type))

    def list_keys(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> a.RunKeys:
        """Keys are file names, so a metric file whose first line is still being written is already listed."""
        found: dict[str, set[str]] = {PARAMS_DIR: set(), METRICS_DIR: set(), TAGS_DIR: set()}
        count = 0
        for row in self._matching_rows(experiment_ids, filter_string, run_view_type):
            count += 1
            for subdir, keys in found.items():
                keys.update(_fs.list_keys(os.path.join(row.folder.path, subdir)))
        return a.RunKeys(sorted(found[PARAMS_DIR]), sorted(found[METRICS_DIR]), sorted(found[TAGS_DIR]), count)

    def group_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: ViewType,
        group_by: a.GroupBy,
        metric_keys: Sequence[str],
    ) -> list[a.RunGroup]:
        grouping = Identifier(group_by.kind, group_by.key)  # type: ignore[arg-type]
        metrics = [Identifier("metric", key) for key in dict.fromkeys(metric_keys)]
        counts: dict[str | None, int] = {}
        values: dict[str | None, dict[str, list[float]]] = {}
        for row in self._matching_rows(experiment_ids, filter_string, run_view_type):
            value: Any = row.value(grouping)
            if group_by.kind == "attribute":
                value = value or None  # like the generic grouping: an empty user id or run name is no value
            counts[value] = counts.get(value, 0) + 1
            per_key = values.setdefault(value, {})
            for metric in metrics:
                number = row.value(metric)
                if isinstance(number, float):
                    per_key.setdefault(metric.key, []).append(number)
        return a.make_groups(counts, values, list(dict.fromkeys(metric_keys)))

    def get_bucketed_metric_history(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str],
        x_axis: str = "step",
        x_min: float | None = None,
        x_max: float | None = None,
        buckets: int = 1000,
    ) -> list[a.Series]:
        axis = a.validate_axis(x_axis)
        for key in keys:
            validate_key(key, "metric_key")
        out = []
        for run_id in run_ids:
            folder = self._find_run(run_id)
            origin = 0
            if axis == "relative":
                origin = run_info_from_meta(
                    folder.meta, folder.run_id, folder.experiment_id, folder.in_trash
                ).start_time
            for key in keys:
                data = _fs.read_bytes(key_path(folder.path, METRICS_DIR, key))
                out.append(_downsample(data or b"", key, folder, axis, origin, buckets, x_min, x_max))
        return out


def _downsample(
    data: bytes,
    key: str,
    folder: RunFolder,
    axis: str,
    origin: int,
    buckets: int,
    x_min: float | None,
    x_max: float | None,
) -> a.Series:
    columns = _numpy_columns(data)
    if columns is None:
        metrics = [to_metric(key, p) for p in history(data, key, folder.experiment_id)] if data else []
        return a.bucket_min_max(a.history_points(metrics, axis, origin), buckets, x_min, x_max)
    return bucket_arrays(*columns, axis, origin, buckets, x_min, x_max)


def _numpy_columns(data: bytes) -> tuple[Any, Any, Any, int] | None:
    """(timestamps, values, steps) of the finite points, and the number of distinct non-finite points; None
    without numpy or when the file has lines other than ``<ts> <value> <step>``."""
    try:
        import numpy as np
    except ImportError:
        return None
    data = data[: data.rfind(b"\n") + 1]
    tokens = data.split()
    if not tokens or len(tokens) != 3 * data.count(b"\n"):
        return None
    try:
        timestamps = np.array(tokens[0::3]).astype(np.int64)
        values = np.array(tokens[1::3]).astype(np.float64)
        steps = np.array(tokens[2::3]).astype(np.int64)
    except (ValueError, OverflowError):
        return None  # let the line-by-line reader report the malformed line
    return finite_columns(timestamps, values, steps)
