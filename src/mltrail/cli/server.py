"""``mltrail server`` (alias ``mltrail ui``): run the tracking server with uvicorn.

Options mirror ``mlflow server``; each can also come from ``MLTRAIL_<NAME>`` or ``MLFLOW_<NAME>``. The
configuration reaches the worker processes as one environment variable read by the app factory
``mltrail.server.app:app_from_env``. Several workers are forked from this process by
:mod:`mltrail.server.supervisor`.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from mltrail.config import DEFAULT_LOCAL_STORE

if TYPE_CHECKING:
    from mltrail.server.config import ServerConfig

_APP_FACTORY = "mltrail.server.app:app_from_env"


def _env(name: str) -> list[str]:
    return [f"MLTRAIL_{name}", f"MLFLOW_{name}"]


@click.command()
@click.option(
    "--backend-store-uri",
    envvar=_env("BACKEND_STORE_URI"),
    default=None,
    help="Where metadata is stored: a directory (default ./mlruns) or a database URL such as sqlite:///mltrail.db.",
)
@click.option(
    "--default-artifact-root",
    envvar=_env("DEFAULT_ARTIFACT_ROOT"),
    default=None,
    help="Artifact root of new experiments (default: mlflow-artifacts:/ when serving artifacts, else the store's).",
)
@click.option(
    "--serve-artifacts/--no-serve-artifacts",
    envvar=_env("SERVE_ARTIFACTS"),
    default=True,
    show_default=True,
    help="Proxy artifact uploads and downloads through the server (mlflow-artifacts:/ URIs).",
)
@click.option(
    "--artifacts-destination",
    envvar=_env("ARTIFACTS_DESTINATION"),
    default="./mlartifacts",
    show_default=True,
    help="Where proxied artifacts are stored (a directory or s3:// URI).",
)
@click.option(
    "--artifacts-only", envvar=_env("ARTIFACTS_ONLY"), is_flag=True, help="Serve only the artifact endpoints."
)
@click.option("--host", "-h", envvar=_env("HOST"), default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", "-p", envvar=_env("PORT"), type=int, default=5000, show_default=True, help="Port to bind.")
@click.option(
    "--workers",
    "-w",
    envvar=_env("WORKERS"),
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Number of worker processes.",
)
@click.option("--static-prefix", envvar=_env("STATIC_PREFIX"), default="", help="Path prefix for every route.")
@click.option(
    "--allowed-hosts",
    envvar=_env("SERVER_ALLOWED_HOSTS"),
    default=None,
    help="Comma-separated Host header patterns to accept (default: localhost and private addresses; '*' = any).",
)
@click.option(
    "--cors-allowed-origins",
    envvar=_env("SERVER_CORS_ALLOWED_ORIGINS"),
    default=None,
    help="Comma-separated origins allowed to make cross-origin requests ('*' = any).",
)
@click.option(
    "--loop",
    envvar=_env("SERVER_LOOP"),
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    default="auto",
    show_default=True,
    help="Event loop implementation of the workers.",
)
@click.option("--dev", is_flag=True, help="Reload on code changes and log at debug level.")
def server(
    backend_store_uri: str | None,
    default_artifact_root: str | None,
    serve_artifacts: bool,
    artifacts_destination: str,
    artifacts_only: bool,
    host: str,
    port: int,
    workers: int,
    static_prefix: str,
    allowed_hosts: str | None,
    cors_allowed_origins: str | None,
    loop: str,
    dev: bool,
) -> None:
    """Run the tracking server (MLflow-compatible REST API)."""
    import uvicorn

    from mltrail.errors import MltrailException
    from mltrail.server.config import CONFIG_ENV_VAR, ServerConfig, split_list

    if dev and workers > 1:
        raise click.UsageError("--dev runs a single reloading worker; drop --workers.")
    destination = artifacts_destination
    if "://" not in destination:
        destination = os.path.abspath(destination)
    config = ServerConfig(
        backend_store_uri=backend_store_uri or os.path.abspath(DEFAULT_LOCAL_STORE),
        default_artifact_root=default_artifact_root,
        artifacts_destination=destination,
        serve_artifacts=serve_artifacts,
        artifacts_only=artifacts_only,
        static_prefix=static_prefix,
        allowed_hosts=split_list(allowed_hosts),
        cors_allowed_origins=split_list(cors_allowed_origins),
    )
    if not artifacts_only:
        try:
            _migrate(config)
        except MltrailException as exc:
            raise click.ClickException(exc.message) from None
    os.environ[CONFIG_ENV_VAR] = config.to_env()
    options = {
        "host": host,
        "port": port,
        "loop": loop,
        "log_level": "debug" if dev else "info",
        "http": "mltrail.server.nodelay:HttpProtocol",
        "server_header": False,
    }
    if workers > 1 and hasattr(os, "fork"):
        from mltrail.server import supervisor

        sys.exit(supervisor.serve(uvicorn.Config(_APP_FACTORY, factory=True, **options), workers))
    uvicorn.run(_APP_FACTORY, factory=True, workers=workers, reload=dev, **options)


def _migrate(config: ServerConfig) -> None:
    """Create or migrate the database once here, not concurrently in every worker. The connections this opened
    are closed: workers open their own, and forked ones must not inherit them."""
    from mltrail.store.registry import get_tracking_store

    store = get_tracking_store(config.backend_store_uri, config.default_artifact_root)
    close = getattr(store, "close", None)  # stores on a database pool their connections
    if close is not None:
        close()
