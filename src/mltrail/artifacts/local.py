"""Artifacts in a local directory (a ``file://`` URI or a plain path).

Every path a caller gives is checked twice: :func:`validate_path_is_safe` refuses ``..``, absolute paths and
encoded tricks, and the resolved path (symlinks followed) must still lie under the root. Writes go to a
temporary file in the destination directory and are renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from mltrail.artifacts.paths import validate_path_is_safe
from mltrail.entities import FileInfo
from mltrail.errors import MltrailException

_TMP_PREFIX = ".mltrail-tmp-"


def local_path_from_uri(uri: str) -> str:
    """Absolute local path of a ``file:`` URI or a plain path."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise MltrailException.invalid_parameter(f"File URI '{uri}' must not name a remote host")
        return os.path.abspath(urllib.request.url2pathname(parsed.path))
    return os.path.abspath(uri)


class LocalArtifactRepository:
    """:class:`~mltrail.artifacts.base.ArtifactRepository` over a local directory."""

    def __init__(self, root_uri: str) -> None:
        self.root_uri = root_uri
        self.root = local_path_from_uri(root_uri)

    # --- path handling -----------------------------------------------------------------------------
    def _resolve(self, artifact_path: str | None) -> str:
        """Local path of ``artifact_path`` under the root; refuses anything that would leave it."""
        if not artifact_path:
            return self.root
        validate_path_is_safe(artifact_path)
        parts = [p for p in artifact_path.split("/") if p not in ("", ".")]
        path = os.path.join(self.root, *parts)
        real_root = os.path.realpath(self.root)
        real_path = os.path.realpath(path)
        if real_path != real_root and not real_path.startswith(real_root.rstrip(os.sep) + os.sep):
            raise MltrailException.invalid_parameter("Invalid path")
        return path

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.root).replace(os.sep, "/")

    @staticmethod
    def _missing(artifact_path: str) -> MltrailException:
        return MltrailException.not_found(f"Artifact '{artifact_path}' does not exist")

    # --- writing -----------------------------------------------------------------------------------
    @contextmanager
    def _atomic_file(self, dest: str) -> Iterator[BinaryIO]:
        if os.path.isdir(dest):
            raise MltrailException.invalid_parameter(f"Cannot write file '{self._relative(dest)}': it is a directory")
        parent = os.path.dirname(dest)
        os.makedirs(parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=parent)
        try:
            with os.fdopen(fd, "wb") as sink:
                yield sink
            os.replace(tmp, dest)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @contextmanager
    def open_write(self, artifact_path: str) -> Iterator[BinaryIO]:
        if not artifact_path or artifact_path.endswith("/"):
            raise MltrailException.invalid_parameter(f"Invalid artifact file path '{artifact_path}'")
        with self._atomic_file(self._resolve(artifact_path)) as sink:
            yield sink

    def _copy_file(self, src: str, dest: str) -> None:
        with open(src, "rb") as source, self._atomic_file(dest) as sink:
            shutil.copyfileobj(source, sink, 1024 * 1024)

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        if not os.path.isfile(local_file):
            raise MltrailException.invalid_parameter(f"'{local_file}' is not a file")
        dest_dir = self._resolve(artifact_path)
        self._copy_file(local_file, os.path.join(dest_dir, os.path.basename(local_file)))

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        if not os.path.isdir(local_dir):
            raise MltrailException.invalid_parameter(f"'{local_dir}' is not a directory")
        dest_root = self._resolve(artifact_path)
        os.makedirs(dest_root, exist_ok=True)
        for dirpath, _dirnames, filenames in os.walk(local_dir):
            rel = os.path.relpath(dirpath, local_dir)
            dest_dir = dest_root if rel == "." else os.path.join(dest_root, rel)
            os.makedirs(dest_dir, exist_ok=True)
            for name in filenames:
                self._copy_file(os.path.join(dirpath, name), os.path.join(dest_dir, name))

    # --- reading -----------------------------------------------------------------------------------
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        directory = self._resolve(path)
        if not os.path.isdir(directory):
            return []
        infos = []
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith(_TMP_PREFIX):
                    continue
                rel = self._relative(entry.path)
                if entry.is_dir():
                    infos.append(FileInfo(rel, True, None))
                else:
                    infos.append(FileInfo(rel, False, entry.stat().st_size))
        return sorted(infos, key=lambda info: info.path)

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str:
        source = self._resolve(artifact_path)
        if not os.path.exists(source):
            raise self._missing(artifact_path)
        dst_root = os.path.abspath(dst_path) if dst_path else tempfile.mkdtemp(prefix="mltrail-download-")
        rel = self._relative(source)
        dest = dst_root if rel == "." else os.path.join(dst_root, *rel.split("/"))
        if os.path.isdir(source):
            shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(_TMP_PREFIX + "*"))
        else:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(source, dest)
        return dest

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        path = self._resolve(artifact_path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)

    def open_read(self, artifact_path: str) -> BinaryIO:
        path = self._resolve(artifact_path)
        if not os.path.isfile(path):
            raise self._missing(artifact_path)
        return open(path, "rb")

    def file_size(self, artifact_path: str) -> int | None:
        path = self._resolve(artifact_path)
        if os.path.isdir(path):
            return None
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            raise self._missing(artifact_path) from None
