"""Shared pieces of the ``mltrail experiments`` / ``mltrail runs`` commands: options, error handling, plain
aligned tables and JSON shapes of entities (those of MLflow's ``to_dictionary``)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from mltrail.entities import Experiment, Run
from mltrail.errors import MltrailException

F = TypeVar("F", bound=Callable[..., Any])

tracking_uri_option = click.option(
    "--tracking-uri",
    envvar=["MLTRAIL_TRACKING_URI", "MLFLOW_TRACKING_URI"],
    default=None,
    help="Tracking URI (default: $MLTRAIL_TRACKING_URI, $MLFLOW_TRACKING_URI, else ./mlruns).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def handle_errors(command: F) -> F:
    """Print ``Error (CODE): message`` on stderr and exit 1 instead of a stack trace."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except MltrailException as exc:
            click.echo(f"Error ({exc.error_code}): {exc.message}", err=True)
        except Exception as exc:  # e.g. a database that cannot be reached
            click.echo(f"Error (INTERNAL_ERROR): {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)

    return wrapper  # type: ignore[return-value]


def format_time(millis: int | None) -> str:
    if millis is None:
        return ""
    return datetime.fromtimestamp(millis / 1000).strftime("%Y-%m-%d %H:%M:%S")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, two spaces apart, a dashed rule under the header."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def done(as_json: bool, message: str, **fields: str) -> None:
    """Report a completed change: ``fields`` as JSON, else the sentence."""
    if as_json:
        echo_json(fields)
    else:
        click.echo(message)


def experiment_dict(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": str(experiment.lifecycle_stage),
        "tags": dict(experiment.tags),
        "creation_time": experiment.creation_time,
        "last_update_time": experiment.last_update_time,
    }


def run_dict(run: Run) -> dict[str, Any]:
    info = run.info
    return {
        "info": {
            "run_id": info.run_id,
            "run_uuid": info.run_id,
            "run_name": info.run_name,
            "experiment_id": info.experiment_id,
            "user_id": info.user_id,
            "status": str(info.status),
            "start_time": info.start_time,
            "end_time": info.end_time,
            "artifact_uri": info.artifact_uri,
            "lifecycle_stage": str(info.lifecycle_stage),
        },
        "data": {"metrics": run.data.metrics, "params": dict(run.data.params), "tags": dict(run.data.tags)},
        "inputs": {
            "dataset_inputs": [
                {
                    "dataset": {
                        "name": d.dataset.name,
                        "digest": d.dataset.digest,
                        "source_type": d.dataset.source_type,
                        "source": d.dataset.source,
                    },
                    "tags": {t.key: t.value for t in d.tags},
                }
                for d in run.inputs.dataset_inputs
            ]
        },
    }
