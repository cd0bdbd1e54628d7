"""Artifact URIs as the server sees them: which ones it proxies, and which hosts it refuses to contact.

A client may store any artifact location on an experiment. Schemes whose repository connects to the host
named in the URI (http, ftp, sftp, ...) would let a client make the server reach arbitrary hosts (SSRF), so
the server only accepts hosts of its own ``--default-artifact-root``/``--artifacts-destination``, unless the
operator allows a scheme with ``MLTRAIL_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES`` (``MLFLOW_*`` fallback).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable

from mltrail.errors import MltrailException
from mltrail.validation import validate_artifact_location

#: Path under which a server proxies artifacts; also how ``http(s)://`` proxied URIs are recognised.
PROXY_PATH = "/api/2.0/mlflow-artifacts/artifacts"

_HOST_ADDRESSED = frozenset({"ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts", "r2", "b2", "abfss"})
_FAMILY = {"viewfs": "hdfs", "https": "http", "mlflow-artifacts": "http"}
_DEFAULT_PORTS = {"ftp": (21,), "sftp": (22,), "http": (80,), "https": (443,), "mlflow-artifacts": (80, 443)}
_ALLOW_ENV = ("MLTRAIL_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES", "MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES")

Target = tuple[str, str, int | None]


def _scheme(uri: str) -> str:
    return urllib.parse.urlsplit(uri).scheme.lower()


def _targets(uri: str) -> frozenset[Target] | None:
    """The (scheme family, host, port) endpoints ``uri`` would make a repository connect to, or None."""
    scheme = _scheme(uri)
    if scheme not in _HOST_ADDRESSED:
        return None
    parsed = urllib.parse.urlsplit(uri)
    if scheme == "mlflow-artifacts" and not parsed.netloc:
        return None
    try:
        port = parsed.port
    except ValueError:
        port = -1  # malformed: matches no trusted root
    if "\\" in parsed.netloc or any(c.isspace() for c in parsed.netloc):
        port = -1
    family = _FAMILY.get(scheme, scheme)
    host = (parsed.hostname or "").lower()
    ports = (port,) if port is not None else _DEFAULT_PORTS.get(scheme, (None,))
    return frozenset((family, host, p) for p in ports)


def _allowed_schemes() -> set[str]:
    for name in _ALLOW_ENV:
        raw = os.environ.get(name)
        if raw:
            return {s.strip().lower() for s in raw.split(",") if s.strip()}
    return set()


def check_artifact_location(location: str | None, trusted_roots: Iterable[str | None]) -> None:
    """Refuse an experiment artifact location the server must not store (see module docstring)."""
    validate_artifact_location(location)
    if not location:
        return
    scheme = _scheme(location)
    if scheme == "file":
        netloc = urllib.parse.urlsplit(location).netloc.lower()
        if netloc not in ("", "localhost"):
            raise MltrailException.invalid_parameter(
                f"'artifact_location' cannot use the 'file' scheme with a remote host ('{netloc}')."
            )
        return
    targets = _targets(location)
    if targets is None or scheme in _allowed_schemes():
        return
    trusted: set[Target] = set()
    for root in trusted_roots:
        if root:
            trusted |= _targets(root) or set()
    if targets & trusted:
        return
    raise MltrailException.invalid_parameter(
        f"'artifact_location' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host other "
        "than the tracking server's configured artifact storage, so the server would connect to the host named "
        f"in the URI. Set the {_ALLOW_ENV[0]} environment variable on the server to allow it."
    )


def proxied_path(uri: str) -> str | None:
    """The path under the artifacts destination of a proxied artifact URI (``mlflow-artifacts:/p`` or
    ``http(s)://host/api/2.0/mlflow-artifacts/artifacts/p``); None for any other URI."""
    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.lower()
    if scheme == "mlflow-artifacts":
        return urllib.parse.unquote(parsed.path).strip("/")
    if scheme in ("http", "https"):
        path = urllib.parse.unquote(parsed.path)
        marker = path.find(PROXY_PATH)
        if marker >= 0:
            rest = path[marker + len(PROXY_PATH) :]
            if rest == "" or rest.startswith("/"):
                return rest.strip("/")
    return None


def is_host_addressed(uri: str) -> bool:
    """True when a repository for ``uri`` would connect to a host named in the URI."""
    return _targets(uri) is not None
