"""``mltrail artifacts {list,download,log-artifact,log-artifacts}``: a run's files, in whichever artifact store
its ``artifact_uri`` names (local directory, S3, GCS, Azure Blob, or proxied through a tracking server).

Transfers of many or big files are concurrent and show progress bars on a terminal. Errors print one line,
``Error (CODE): message``, and exit with status 1.
"""

from __future__ import annotations

import click

from mltrail import config
from mltrail.artifacts.base import ArtifactRepository
from mltrail.client.cli_support import echo_json, handle_errors, json_option, table, tracking_uri_option
from mltrail.errors import MltrailException

_run_id = click.option("--run-id", "-r", default=None, help="Id of the run whose artifacts to use.")
_artifact_path = click.option(
    "--artifact-path", "-a", default=None, help="Path inside the run's artifact root (default: the root)."
)
_artifact_uri = click.option(
    "--artifact-uri", "-u", default=None, help="An artifact URI to use instead of a run, e.g. s3://bucket/path."
)


def _repository(run_id: str | None, artifact_uri: str | None, tracking_uri: str | None) -> ArtifactRepository:
    """The repository of the run (or of the URI). A given tracking URI is made the process's tracking URI so
    that proxied (``mlflow-artifacts:``) roots resolve against the same server."""
    from mltrail.artifacts.registry import get_artifact_repository
    from mltrail.client.client import TrackingClient

    if (run_id is None) == (artifact_uri is None):
        raise MltrailException.invalid_parameter("Give exactly one of --run-id and --artifact-uri")
    if tracking_uri:
        config.set_tracking_uri(tracking_uri)
    if artifact_uri is None:
        artifact_uri = TrackingClient(tracking_uri).get_run(run_id or "").info.artifact_uri
    return get_artifact_repository(artifact_uri)


@click.group()
def artifacts() -> None:
    """List, download and upload the artifacts of runs."""


@artifacts.command("list")
@_run_id
@_artifact_uri
@_artifact_path
@tracking_uri_option
@json_option
@handle_errors
def list_artifacts(
    run_id: str | None, artifact_uri: str | None, artifact_path: str | None, tracking_uri: str | None, as_json: bool
) -> None:
    """List the direct children of a directory of a run's artifacts."""
    infos = _repository(run_id, artifact_uri, tracking_uri).list_artifacts(artifact_path)
    if as_json:
        echo_json([{"path": f.path, "is_dir": f.is_dir, "file_size": f.file_size} for f in infos])
        return
    rows = [(f.path, "dir" if f.is_dir else "file", "" if f.file_size is None else f.file_size) for f in infos]
    click.echo(table(["Path", "Type", "Size"], rows))


@artifacts.command()
@_run_id
@_artifact_uri
@_artifact_path
@click.option("--dst-path", "-d", default=None, help="Local directory to download into (default: a new temp dir).")
@tracking_uri_option
@handle_errors
def download(
    run_id: str | None,
    artifact_uri: str | None,
    artifact_path: str | None,
    dst_path: str | None,
    tracking_uri: str | None,
) -> None:
    """Download a file or directory of a run's artifacts (everything if no --artifact-path); print its local path."""
    repository = _repository(run_id, artifact_uri, tracking_uri)
    click.echo(repository.download_artifacts(artifact_path or "", dst_path))


@artifacts.command("log-artifact")
@click.option("--local-file", "-l", required=True, type=click.Path(exists=True, dir_okay=False), help="File to log.")
@click.option("--run-id", "-r", required=True, help="Id of the run to log to.")
@_artifact_path
@tracking_uri_option
@handle_errors
def log_artifact(local_file: str, run_id: str, artifact_path: str | None, tracking_uri: str | None) -> None:
    """Upload one file to <artifact-path>/<file name> of a run."""
    _repository(run_id, None, tracking_uri).log_artifact(local_file, artifact_path)
    click.echo(f"Logged artifact from local file {local_file} to artifact_path={artifact_path}")


@artifacts.command("log-artifacts")
@click.option("--local-dir", "-l", required=True, type=click.Path(exists=True, file_okay=False), help="Directory.")
@click.option("--run-id", "-r", required=True, help="Id of the run to log to.")
@_artifact_path
@tracking_uri_option
@handle_errors
def log_artifacts(local_dir: str, run_id: str, artifact_path: str | None, tracking_uri: str | None) -> None:
    """Upload a directory's contents (recursively, concurrently) under <artifact-path> of a run."""
    _repository(run_id, None, tracking_uri).log_artifacts(local_dir, artifact_path)
    click.echo(f"Logged artifact from local dir {local_dir} to artifact_path={artifact_path}")
