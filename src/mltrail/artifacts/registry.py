"""Pick the artifact repository for a URI by its scheme. Back ends are imported only when first used, so a
local-only user never pays for ``requests`` or an S3 client."""

from __future__ import annotations

import importlib
import urllib.parse

from mltrail.artifacts.base import ArtifactRepository
from mltrail.errors import MltrailException

#: scheme -> (module, class). ``""`` is a plain local path.
_REPOSITORIES: dict[str, tuple[str, str]] = {
    "": ("mltrail.artifacts.local", "LocalArtifactRepository"),
    "file": ("mltrail.artifacts.local", "LocalArtifactRepository"),
    "mlflow-artifacts": ("mltrail.artifacts.proxied", "ProxiedArtifactRepository"),
    "http": ("mltrail.artifacts.proxied", "ProxiedArtifactRepository"),
    "https": ("mltrail.artifacts.proxied", "ProxiedArtifactRepository"),
    "s3": ("mltrail.artifacts.s3", "S3ArtifactRepository"),
    "gs": ("mltrail.artifacts.gcs", "GCSArtifactRepository"),
    "wasbs": ("mltrail.artifacts.azure", "AzureBlobArtifactRepository"),
    "wasb": ("mltrail.artifacts.azure", "AzureBlobArtifactRepository"),
}


def uri_scheme(uri: str) -> str:
    """Lower-case scheme of ``uri``; ``""`` for plain paths, including Windows paths such as ``C:\\runs``."""
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    return "" if len(scheme) == 1 else scheme


def get_artifact_repository(uri: str, tracking_uri: str | None = None) -> ArtifactRepository:
    """The repository rooted at ``uri``. An unknown scheme raises INVALID_PARAMETER_VALUE.

    ``tracking_uri`` names the server an ``mlflow-artifacts:`` URI is relative to (default: the current
    tracking URI); a client talking to a specific server passes its own."""
    scheme = uri_scheme(uri)
    target = _REPOSITORIES.get(scheme)
    if target is None:
        supported = ", ".join(sorted(s for s in _REPOSITORIES if s))
        raise MltrailException.invalid_parameter(
            f"Could not find an artifact repository for '{uri}'. "
            f"Supported URI schemes are: {supported}, or a local path"
        )
    module_name, class_name = target
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MltrailException(
            f"Artifact repository for scheme '{scheme}' is not available: {exc}", "NOT_IMPLEMENTED"
        ) from None
    repository_class = getattr(module, class_name)
    if scheme == "mlflow-artifacts":
        return repository_class(uri, tracking_uri)
    return repository_class(uri)
