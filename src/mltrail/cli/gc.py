"""``mltrail gc``: permanently delete runs and experiments in the deleted state, with their artifacts.

Works with any store that implements the gc methods (``get_deleted_runs``, ``hard_delete_run``,
``hard_delete_experiment``): the SQL store and the directory store.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Protocol, cast

import click

from mltrail.entities import LifecycleStage, ViewType
from mltrail.errors import MltrailException
from mltrail.store.base import TrackingStore

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_GC_METHODS = ("get_deleted_runs", "hard_delete_run", "hard_delete_experiment")


class GcStore(TrackingStore, Protocol):
    """A tracking store that can delete for good (SQL and directory stores)."""

    def get_deleted_runs(self, older_than_ms: int | None = None) -> list[str]: ...

    def hard_delete_run(self, run_id: str) -> None: ...

    def hard_delete_experiment(self, experiment_id: str) -> None: ...


def parse_duration_ms(text: str) -> int:
    """``1d2h3m4s`` (any subset, in that order) in milliseconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise click.BadParameter(f"'{text}' is not a duration such as 7d, 12h, 1d2h3m4s")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _all_runs(store: GcStore, experiment_id: str) -> Iterator[str]:
    token = None
    while True:
        page = store.search_runs([experiment_id], run_view_type=ViewType.ALL, max_results=50000, page_token=token)
        yield from (run.info.run_id for run in page)
        token = page.token
        if not token:
            return


def _deleted_experiments(store: GcStore, older_than_ms: int | None) -> list[str]:
    ids, token = [], None
    cutoff = None if older_than_ms is None else int(time.time() * 1000) - older_than_ms
    while True:
        page = store.search_experiments(view_type=ViewType.DELETED_ONLY, max_results=50000, page_token=token)
        ids += [e.experiment_id for e in page if cutoff is None or (e.last_update_time or 0) <= cutoff]
        token = page.token
        if not token:
            return ids


def _delete_run(store: GcStore, run_id: str) -> None:
    from mltrail.artifacts.registry import get_artifact_repository

    artifact_uri = store.get_run(run_id).info.artifact_uri
    get_artifact_repository(artifact_uri).delete_artifacts()
    store.hard_delete_run(run_id)
    click.echo(f"Run with ID {run_id} has been permanently deleted.")


@click.command()
@click.option(
    "--backend-store-uri",
    default=None,
    help="Tracking store to clean (default: MLTRAIL_TRACKING_URI / MLFLOW_TRACKING_URI, else ./mlruns).",
)
@click.option("--older-than", default=None, help="Only runs/experiments deleted at least this long ago, e.g. 7d2h.")
@click.option("--run-ids", default=None, help="Comma-separated ids of deleted runs to delete (default: all).")
@click.option("--experiment-ids", default=None, help="Comma-separated ids of deleted experiments to delete.")
def gc(backend_store_uri: str | None, older_than: str | None, run_ids: str | None, experiment_ids: str | None) -> None:
    """Permanently delete runs and experiments in the deleted state, and their artifacts.

    Without --run-ids and --experiment-ids, everything deleted (at least --older-than ago) goes. Deleting an
    experiment deletes all of its runs.
    """
    from mltrail.store.registry import get_tracking_store

    older_than_ms = parse_duration_ms(older_than) if older_than else None
    try:
        store = get_tracking_store(backend_store_uri)
        if not all(hasattr(store, name) for name in _GC_METHODS):
            raise click.ClickException(f"The tracking store {type(store).__name__} does not support gc.")
        _collect(cast(GcStore, store), older_than_ms, _ids(run_ids), _ids(experiment_ids))
    except MltrailException as error:
        raise click.ClickException(error.message) from None


def _collect(store: GcStore, older_than_ms: int | None, run_ids: list[str], experiment_ids: list[str]) -> None:
    deleted_runs = set(store.get_deleted_runs(older_than_ms))
    everything = not run_ids and not experiment_ids
    for run_id in run_ids:
        if run_id not in deleted_runs:
            stage = store.get_run(run_id).info.lifecycle_stage
            reason = "is not in the deleted state" if stage != LifecycleStage.DELETED else "was deleted too recently"
            raise click.ClickException(f"Run {run_id} {reason}: only deleted runs (older than --older-than) can go.")
    if experiment_ids:
        eligible = set(_deleted_experiments(store, older_than_ms))
        for experiment_id in experiment_ids:
            if experiment_id not in eligible:
                store.get_experiment(experiment_id)  # raises if it does not exist
                raise click.ClickException(
                    f"Experiment {experiment_id} is not deleted, or was deleted too recently (--older-than)."
                )
    elif everything:
        experiment_ids = _deleted_experiments(store, older_than_ms)
    for run_id in sorted(deleted_runs) if everything else run_ids:
        _delete_run(store, run_id)
    for experiment_id in experiment_ids:
        for run_id in list(_all_runs(store, experiment_id)):
            _delete_run(store, run_id)
        store.hard_delete_experiment(experiment_id)
        click.echo(f"Experiment with ID {experiment_id} has been permanently deleted.")
