"""Runs as a pandas DataFrame, with the columns of MLflow's ``search_runs``. pandas is imported only here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mltrail.entities import Run
from mltrail.errors import MltrailException

BASE_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")


def runs_to_dataframe(runs: Sequence[Run]) -> Any:
    """One row per run: ``run_id, experiment_id, status, artifact_uri, start_time, end_time`` (UTC
    datetimes), then ``metrics.<key>`` (NaN when absent), ``params.<key>`` and ``tags.<key>`` (None)."""
    try:
        import pandas as pd
    except ImportError:
        raise MltrailException.invalid_parameter(
            "search_runs(output_format='pandas') needs pandas (pip install pandas); "
            "or pass output_format='list' to get Run objects"
        ) from None
    metric_keys = sorted({key for run in runs for key in run.data.metrics})
    param_keys = sorted({key for run in runs for key in run.data.params})
    tag_keys = sorted({key for run in runs for key in run.data.tags})
    columns: dict[str, list[Any]] = {
        "run_id": [r.info.run_id for r in runs],
        "experiment_id": [r.info.experiment_id for r in runs],
        "status": [str(r.info.status) for r in runs],
        "artifact_uri": [r.info.artifact_uri for r in runs],
        "start_time": pd.to_datetime([r.info.start_time for r in runs], unit="ms", utc=True),
        "end_time": pd.to_datetime([r.info.end_time for r in runs], unit="ms", utc=True),
    }
    for key in metric_keys:
        columns[f"metrics.{key}"] = [r.data.metrics.get(key, float("nan")) for r in runs]
    for key in param_keys:
        columns[f"params.{key}"] = [r.data.params.get(key) for r in runs]
    for key in tag_keys:
        columns[f"tags.{key}"] = [r.data.tags.get(key) for r in runs]
    return pd.DataFrame(columns)
