"""``mltrail experiments {create,search,delete,restore,rename}``."""

from __future__ import annotations

import click

from mltrail.client.cli_support import (
    done,
    echo_json,
    experiment_dict,
    format_time,
    handle_errors,
    json_option,
    table,
    tracking_uri_option,
)
from mltrail.client.client import TrackingClient
from mltrail.entities import Experiment

_VIEWS = click.Choice(["active_only", "deleted_only", "all"], case_sensitive=False)


@click.group()
def experiments() -> None:
    """Create, list, delete, restore and rename experiments."""


@experiments.command()
@click.option("--experiment-name", "-n", required=True, help="Name of the new experiment.")
@click.option("--artifact-location", "-l", default=None, help="Where its runs store artifacts.")
@tracking_uri_option
@json_option
@handle_errors
def create(experiment_name: str, artifact_location: str | None, tracking_uri: str | None, as_json: bool) -> None:
    """Create an experiment."""
    experiment_id = TrackingClient(tracking_uri).create_experiment(experiment_name, artifact_location)
    if as_json:
        echo_json({"experiment_id": experiment_id})
    else:
        click.echo(f"Created experiment '{experiment_name}' with id {experiment_id}")


@experiments.command()
@click.option("--view", "-v", "view", type=_VIEWS, default="active_only", show_default=True)
@click.option("--filter", "filter_string", default=None, help="Search filter, e.g. \"name LIKE 'exp%'\".")
@click.option("--order-by", multiple=True, help="Order key, e.g. 'name ASC' (repeatable).")
@click.option("--max-results", type=int, default=None, help="Stop after this many experiments.")
@tracking_uri_option
@json_option
@handle_errors
def search(
    view: str,
    filter_string: str | None,
    order_by: tuple[str, ...],
    max_results: int | None,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """List experiments (all pages)."""
    client = TrackingClient(tracking_uri)
    found: list[Experiment] = []
    token: str | None = None
    while max_results is None or len(found) < max_results:
        page_size = 1000 if max_results is None else min(max_results - len(found), 1000)
        page = client.search_experiments(view, page_size, filter_string, list(order_by) or None, token)
        found.extend(page)
        token = page.token
        if not token:
            break
    if as_json:
        echo_json([experiment_dict(e) for e in found])
        return
    rows = [
        (e.experiment_id, e.name, e.lifecycle_stage, format_time(e.creation_time), e.artifact_location) for e in found
    ]
    click.echo(table(["Experiment Id", "Name", "Stage", "Created", "Artifact Location"], rows))


def _experiment_id_option(command: click.decorators.FC) -> click.decorators.FC:
    return click.option("--experiment-id", "-x", required=True, help="Id of the experiment.")(command)


@experiments.command()
@_experiment_id_option
@tracking_uri_option
@json_option
@handle_errors
def delete(experiment_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Mark an experiment (and its runs) deleted; `restore` undoes it."""
    TrackingClient(tracking_uri).delete_experiment(experiment_id)
    done(as_json, f"Experiment with id {experiment_id} has been deleted.", experiment_id=experiment_id)


@experiments.command()
@_experiment_id_option
@tracking_uri_option
@json_option
@handle_errors
def restore(experiment_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Restore a deleted experiment."""
    TrackingClient(tracking_uri).restore_experiment(experiment_id)
    done(as_json, f"Experiment with id {experiment_id} has been restored.", experiment_id=experiment_id)


@experiments.command()
@_experiment_id_option
@click.option("--new-name", required=True, help="The new name.")
@tracking_uri_option
@json_option
@handle_errors
def rename(experiment_id: str, new_name: str, tracking_uri: str | None, as_json: bool) -> None:
    """Rename an experiment."""
    TrackingClient(tracking_uri).rename_experiment(experiment_id, new_name)
    done(
        as_json,
        f"Experiment with id {experiment_id} has been renamed to '{new_name}'.",
        experiment_id=experiment_id,
        name=new_name,
    )
