"""What a request handler needs: the tracking store, the artifacts destination, and the server's settings."""

from __future__ import annotations

import threading

from mltrail.artifacts.base import ArtifactRepository
from mltrail.artifacts.paths import join_artifact_path
from mltrail.errors import ErrorCode, MltrailException
from mltrail.server import uris
from mltrail.server.config import ServerConfig
from mltrail.store.base import TrackingStore


def _artifact_repository(uri: str) -> ArtifactRepository:
    from mltrail.artifacts.registry import get_artifact_repository

    return get_artifact_repository(uri)


class ServerContext:
    def __init__(self, config: ServerConfig, store: TrackingStore | None = None) -> None:
        self.config = config
        if store is None and not config.artifacts_only:
            from mltrail.store.registry import get_tracking_store

            store = get_tracking_store(config.backend_store_uri, config.default_artifact_root)
        self._store = store
        self._destination: ArtifactRepository | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> TrackingStore:
        if self._store is None:
            raise MltrailException(
                "Endpoint disabled due to the server running in `--artifacts-only` mode.",
                ErrorCode.TEMPORARILY_UNAVAILABLE,
            )
        return self._store

    @property
    def store_type(self) -> str | None:
        return type(self._store).__name__ if self._store is not None else None

    @property
    def destination(self) -> ArtifactRepository:
        """The repository behind ``mlflow-artifacts`` (the ``--artifacts-destination``)."""
        if not self.config.serve_artifacts or not self.config.artifacts_destination:
            raise MltrailException(
                "Endpoint disabled due to the server running with `--no-serve-artifacts`.",
                ErrorCode.TEMPORARILY_UNAVAILABLE,
            )
        with self._lock:
            if self._destination is None:
                self._destination = _artifact_repository(self.config.artifacts_destination)
            return self._destination

    @property
    def trusted_artifact_roots(self) -> tuple[str | None, ...]:
        return (self.config.default_artifact_root, self.config.artifacts_destination)

    def run_artifacts(self, artifact_uri: str) -> tuple[ArtifactRepository, str]:
        """The repository holding a run's artifacts and the run root's path inside it. Proxied URIs resolve
        against the artifacts destination; the server never connects to a host named in a stored URI."""
        proxied = uris.proxied_path(artifact_uri)
        if proxied is not None:
            return self.destination, proxied
        if uris.is_host_addressed(artifact_uri):
            uris.check_artifact_location(artifact_uri, self.trusted_artifact_roots)
        return _artifact_repository(artifact_uri), ""


def under(base: str, path: str | None) -> str:
    """``path`` (relative to a run root) as a path relative to the repository holding that root."""
    return join_artifact_path(base, path)
