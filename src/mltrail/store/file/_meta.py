"""The meta.yaml documents of experiments and runs, with exactly the keys MLflow 3.x writes."""

from __future__ import annotations

from typing import Any

from mltrail.entities import Experiment, LifecycleStage, RunInfo, RunStatus, SourceType

ACTIVE = LifecycleStage.ACTIVE.value
DELETED = LifecycleStage.DELETED.value


def new_experiment_meta(experiment_id: str, name: str, artifact_location: str, now: int) -> dict[str, Any]:
    return {
        "artifact_location": artifact_location,
        "creation_time": now,
        "effective_trace_archival_retention": None,
        "experiment_id": experiment_id,
        "last_update_time": now,
        "lifecycle_stage": ACTIVE,
        "name": name,
        "trace_location": None,
        "workspace": "default",
    }


def experiment_from_meta(meta: dict[str, Any], deleted: bool, tags: dict[str, str]) -> Experiment:
    """``deleted`` comes from where the folder is (``.trash`` or not), which is what MLflow's listing uses."""
    return Experiment(
        experiment_id=str(meta.get("experiment_id")),
        name=str(meta.get("name", "")),
        artifact_location=str(meta.get("artifact_location", "")),
        lifecycle_stage=DELETED if deleted else ACTIVE,
        tags=tags,
        creation_time=_optional_int(meta.get("creation_time")),
        last_update_time=_optional_int(meta.get("last_update_time")),
    )


def new_run_meta(info: RunInfo, user_id: str | None) -> dict[str, Any]:
    return {
        "artifact_uri": info.artifact_uri,
        "end_time": info.end_time,
        "entry_point_name": "",
        "experiment_id": info.experiment_id,
        "lifecycle_stage": info.lifecycle_stage,
        "run_id": info.run_id,
        "run_name": info.run_name,
        "source_name": "",
        "source_type": int(SourceType.LOCAL),
        "source_version": "",
        "start_time": info.start_time,
        "status": info.status.number,
        "tags": [],
        "user_id": user_id,
    }


def run_status(meta: dict[str, Any]) -> RunStatus:
    raw = meta.get("status")
    return RunStatus.RUNNING if raw is None else RunStatus.parse(raw)


def run_lifecycle(meta: dict[str, Any], in_trash: bool) -> str:
    """Runs of an experiment in ``.trash`` count as deleted whatever their own meta.yaml says."""
    return DELETED if in_trash else str(meta.get("lifecycle_stage") or ACTIVE)


def run_info_from_meta(meta: dict[str, Any], run_id: str, experiment_id: str, in_trash: bool) -> RunInfo:
    """``run_id``/``experiment_id`` come from the folder names (MLflow refuses runs whose meta disagrees)."""
    return RunInfo(
        run_id=run_id,
        experiment_id=experiment_id,
        run_name=str(meta.get("run_name") or ""),
        user_id=str(meta.get("user_id") or ""),
        status=run_status(meta),
        start_time=_optional_int(meta.get("start_time")) or 0,
        end_time=_optional_int(meta.get("end_time")),
        artifact_uri=str(meta.get("artifact_uri") or ""),
        lifecycle_stage=run_lifecycle(meta, in_trash),
    )


def _optional_int(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(value)  # type: ignore[call-overload]
