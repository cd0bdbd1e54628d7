"""``mltrail runs {list,describe,delete,restore}``."""

from __future__ import annotations

import click

from mltrail.client.cli_support import (
    done,
    echo_json,
    format_time,
    handle_errors,
    json_option,
    run_dict,
    table,
    tracking_uri_option,
)
from mltrail.client.client import TrackingClient
from mltrail.entities import Run

_VIEWS = click.Choice(["active_only", "deleted_only", "all"], case_sensitive=False)


@click.group()
def runs() -> None:
    """List, describe, delete and restore runs."""


def _run_id_option(command: click.decorators.FC) -> click.decorators.FC:
    return click.option("--run-id", required=True, help="Id of the run.")(command)


@runs.command("list")
@click.option("--experiment-id", "-x", required=True, help="Experiment whose runs to list.")
@click.option("--view", "-v", "view", type=_VIEWS, default="active_only", show_default=True)
@click.option("--filter", "filter_string", default="", help='Search filter, e.g. "metrics.loss < 0.1".')
@click.option("--order-by", multiple=True, help="Order key, e.g. 'metrics.loss ASC' (repeatable).")
@click.option("--max-results", type=int, default=1000, show_default=True)
@tracking_uri_option
@json_option
@handle_errors
def list_runs(
    experiment_id: str,
    view: str,
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """List the runs of an experiment, newest first."""
    client = TrackingClient(tracking_uri)
    found: list[Run] = []
    token: str | None = None
    while len(found) < max_results:
        page = client.search_runs(
            [experiment_id], filter_string, view, min(max_results - len(found), 1000), list(order_by) or None, token
        )
        found.extend(page)
        token = page.token
        if not token:
            break
    if as_json:
        echo_json([run_dict(r) for r in found])
        return
    rows = [
        (format_time(r.info.start_time), r.info.run_name, r.info.run_id, r.info.status, r.info.lifecycle_stage)
        for r in found
    ]
    click.echo(table(["Date", "Name", "ID", "Status", "Stage"], rows))


@runs.command()
@_run_id_option
@tracking_uri_option
@json_option
@handle_errors
def describe(run_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Show a run: info, latest metrics, params and tags."""
    run = TrackingClient(tracking_uri).get_run(run_id)
    if as_json:
        echo_json(run_dict(run))
        return
    info = run.info
    fields = [
        ("Run ID", info.run_id),
        ("Name", info.run_name),
        ("Experiment ID", info.experiment_id),
        ("Status", info.status),
        ("Stage", info.lifecycle_stage),
        ("User", info.user_id),
        ("Start", format_time(info.start_time)),
        ("End", format_time(info.end_time)),
        ("Artifact URI", info.artifact_uri),
    ]
    click.echo(table(["Field", "Value"], fields))
    for title, values in (("Metric", run.data.metrics), ("Param", run.data.params), ("Tag", run.data.tags)):
        if values:
            click.echo()
            click.echo(table([title, "Value"], sorted(values.items())))


@runs.command()
@_run_id_option
@tracking_uri_option
@json_option
@handle_errors
def delete(run_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Mark a run deleted; `restore` undoes it."""
    TrackingClient(tracking_uri).delete_run(run_id)
    done(as_json, f"Run with id {run_id} has been deleted.", run_id=run_id, lifecycle_stage="deleted")


@runs.command()
@_run_id_option
@tracking_uri_option
@json_option
@handle_errors
def restore(run_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Restore a deleted run."""
    TrackingClient(tracking_uri).restore_run(run_id)
    done(as_json, f"Run with id {run_id} has been restored.", run_id=run_id, lifecycle_stage="active")
