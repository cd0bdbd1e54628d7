"""``mltrail sync SOURCE --to URI``: push an ``mlruns`` directory into a server, a database or another directory."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mltrail.client.cli_support import echo_json, handle_errors, json_option


@click.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--to",
    "target_uri",
    required=True,
    help="Target tracking URI: http(s)://server, sqlite:///…, postgresql://…, mysql://… or a directory.",
)
@click.option("--experiment", "-e", "experiments", multiple=True, help="Only this experiment name (repeatable).")
@click.option("--no-artifacts", is_flag=True, help="Do not copy artifacts.")
@click.option("--full", is_flag=True, help="Ignore the progress record: look at every run again.")
@click.option(
    "--default-artifact-root",
    default=None,
    help="Artifact root of experiments created in a SQL or directory target (default: the store's).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where progress records are kept (default: $MLTRAIL_SYNC_STATE_DIR or ~/.cache/mltrail/sync).",
)
@json_option
@handle_errors
def sync(
    source: str,
    target_uri: str,
    experiments: tuple[str, ...],
    no_artifacts: bool,
    full: bool,
    default_artifact_root: str | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Push the runs of the mlruns directory SOURCE (written by mltrail or MLflow) into the store at --to.

    Runs keep their ids, names, times, status, metric history, params, tags, dataset inputs and artifacts;
    experiments are matched by name and created when missing. Run it again at any time: runs unchanged since
    the last sync are skipped, runs that changed (still running) send only what is new, and nothing is ever
    stored twice. Deleted runs and experiments are not pushed.
    """
    from mltrail import sync as syncing

    result = syncing.sync(
        source,
        target_uri,
        experiment_names=experiments or None,
        artifacts=not no_artifacts,
        full=full,
        artifact_root=default_artifact_root,
        state_dir=state_dir,
    )
    if as_json:
        echo_json(
            {
                "runs_pushed": result.runs_pushed,
                "runs_skipped": result.runs_skipped,
                "metrics": result.metrics,
                "artifacts": result.artifacts,
                "experiments_created": result.experiments_created,
                "failures": [{"id": what, "message": message} for what, message in result.failures],
            }
        )
    else:
        click.echo(
            f"Pushed {result.runs_pushed} run(s) ({result.metrics} metric points, {result.artifacts} artifact "
            f"files), skipped {result.runs_skipped} unchanged; created {len(result.experiments_created)} "
            "experiment(s)."
        )
        for what, message in result.failures:
            click.echo(f"Not synced: {what}: {message}", err=True)
    if result.failures:
        sys.exit(1)
