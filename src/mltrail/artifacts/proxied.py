"""Artifacts proxied through a tracking server (MLflow's ``mlflow-artifacts`` service).

Root URIs:
- ``mlflow-artifacts:/<path>``: resolved against the tracking URI (``mlflow-artifacts://host:port/<path>``
  names the server host explicitly and keeps the tracking URI's scheme);
- ``http(s)://host[/prefix]/api/2.0/mlflow-artifacts/artifacts/<path>``.

Files are streamed both ways (uploads send the open file, downloads are written chunk by chunk), and the
HTTP session, retries and auth are those of :mod:`mltrail.store.rest`.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from mltrail import config
from mltrail.artifacts.paths import join_artifact_path, validate_path_is_safe
from mltrail.entities import FileInfo
from mltrail.errors import MltrailException
from mltrail.store.rest import RestClient, client_for

SERVICE_PATH = "/api/2.0/mlflow-artifacts/artifacts"
_CHUNK = 1024 * 1024


def resolve(root_uri: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """``(server base URL, root path inside the artifact service)`` of a proxied root URI."""
    parsed = urllib.parse.urlsplit(root_uri)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        path = parsed.path
        marker = path.find(SERVICE_PATH)
        if marker < 0:
            raise MltrailException.invalid_parameter(
                f"'{root_uri}' is not an artifact URI of a tracking server (expected a path containing {SERVICE_PATH})"
            )
        base = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path[:marker], "", ""))
        return base, urllib.parse.unquote(path[marker + len(SERVICE_PATH) :]).strip("/")
    if scheme != "mlflow-artifacts":
        raise MltrailException.invalid_parameter(f"Not a proxied artifact URI: '{root_uri}'")
    tracking = urllib.parse.urlsplit(tracking_uri or config.get_tracking_uri())
    if tracking.scheme not in ("http", "https"):
        raise MltrailException.invalid_parameter(
            "An mlflow-artifacts URI needs the tracking URI to be the http(s) URI of the tracking server, but it is "
            f"'{tracking.scheme}://...'. Set MLTRAIL_TRACKING_URI (or call set_tracking_uri) to the server's URL."
        )
    netloc = parsed.netloc or tracking.netloc
    prefix = tracking.path.rstrip("/") if not parsed.netloc else ""
    return f"{tracking.scheme}://{netloc}{prefix}", urllib.parse.unquote(parsed.path).strip("/")


class ProxiedArtifactRepository:
    """:class:`~mltrail.artifacts.base.ArtifactRepository` talking to a server's ``mlflow-artifacts`` API."""

    def __init__(self, root_uri: str, tracking_uri: str | None = None) -> None:
        self.root_uri = root_uri
        base_url, self._root = resolve(root_uri, tracking_uri)
        self._client: RestClient = client_for(base_url)

    # --- addressing --------------------------------------------------------------------------------
    def _full_path(self, artifact_path: str | None) -> str:
        if artifact_path:
            validate_path_is_safe(artifact_path)
        return join_artifact_path(self._root, artifact_path)

    def _url(self, artifact_path: str | None) -> str:
        return f"{SERVICE_PATH}/{urllib.parse.quote(self._full_path(artifact_path))}"

    # --- writing -----------------------------------------------------------------------------------
    def _put(self, artifact_path: str, body: BinaryIO) -> None:
        content_type = mimetypes.guess_type(artifact_path)[0] or "application/octet-stream"
        self._client.request("PUT", self._url(artifact_path), data=body, headers={"Content-Type": content_type})

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        target = join_artifact_path(artifact_path, os.path.basename(local_file))
        with open(local_file, "rb") as body:
            self._put(target, body)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        for dirpath, _, filenames in os.walk(local_dir):
            rel = os.path.relpath(dirpath, local_dir)
            subdir = join_artifact_path(artifact_path, "" if rel == "." else rel.replace(os.sep, "/"))
            for name in sorted(filenames):
                self.log_artifact(os.path.join(dirpath, name), subdir or None)

    @contextmanager
    def open_write(self, artifact_path: str) -> Iterator[BinaryIO]:
        """Spools to a local temporary file, then uploads it in one PUT when the block ends without error."""
        validate_path_is_safe(artifact_path)
        with tempfile.TemporaryFile() as spool:
            yield spool  # type: ignore[misc]
            spool.seek(0)
            self._put(artifact_path, spool)  # type: ignore[arg-type]

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        self._client.request("DELETE", self._url(artifact_path))

    # --- reading -----------------------------------------------------------------------------------
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        response = self._client.call("GET", SERVICE_PATH, {"path": self._full_path(path)})
        infos = []
        for item in response.get("files", ()):
            name = item["path"]
            validate_path_is_safe(name)
            size = item.get("file_size")
            is_dir = bool(item.get("is_dir"))
            infos.append(
                FileInfo(join_artifact_path(path, name), is_dir, None if is_dir or size is None else int(size))
            )
        return sorted(infos, key=lambda info: info.path)

    def _entry(self, artifact_path: str) -> FileInfo | None:
        """The listing entry of ``artifact_path`` in its parent directory (None if absent)."""
        parent = posixpath.dirname(artifact_path.strip("/"))
        target = artifact_path.strip("/")
        return next((info for info in self.list_artifacts(parent or None) if info.path == target), None)

    def file_size(self, artifact_path: str) -> int | None:
        entry = self._entry(artifact_path)
        if entry is None:
            raise MltrailException.not_found(f"Artifact '{artifact_path}' does not exist")
        return None if entry.is_dir else (entry.file_size or 0)

    def open_read(self, artifact_path: str) -> BinaryIO:
        response = self._client.request("GET", self._url(artifact_path), stream=True)
        response.raw.decode_content = True
        return response.raw  # type: ignore[no-any-return]

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str:
        dst_root = os.path.abspath(dst_path or tempfile.mkdtemp())
        path = (artifact_path or "").strip("/")
        if path and (entry := self._entry(path)) is None:
            raise MltrailException.not_found(f"Artifact '{artifact_path}' does not exist")
        if path and not entry.is_dir:
            self._download_file(path, dst_root)
        else:
            self._download_tree(path, dst_root)
        return os.path.join(dst_root, *path.split("/")) if path else dst_root

    def _download_tree(self, path: str, dst_root: str) -> None:
        os.makedirs(os.path.join(dst_root, *path.split("/")) if path else dst_root, exist_ok=True)
        for info in self.list_artifacts(path or None):
            if info.is_dir:
                self._download_tree(info.path, dst_root)
            else:
                self._download_file(info.path, dst_root)

    def _download_file(self, path: str, dst_root: str) -> None:
        local = os.path.join(dst_root, *path.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(local), prefix=".mltrail-download-")
        try:
            with os.fdopen(fd, "wb") as sink, self.open_read(path) as source:
                while chunk := source.read(_CHUNK):
                    sink.write(chunk)
            os.replace(tmp, local)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
