"""The part of the artifact repository protocol that every object store shares (S3, GCS, Azure Blob).

An object store has flat keys; ``/`` in a key plays the directory separator, a "directory" exists while some
key lies below it, and the repository's root is a key prefix. A concrete store implements a handful of
primitives on keys (stat, walk, list children, upload, download, delete a batch, ranged read, streamed write)
and inherits the protocol methods, with the same path checks and the same semantics on every store.
"""

from __future__ import annotations

import os
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any, BinaryIO, cast

from mltrail.artifacts import transfer
from mltrail.artifacts.paths import join_artifact_path, validate_path_is_safe
from mltrail.entities import FileInfo
from mltrail.errors import MltrailException

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def shared_client(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """The service client ``make()`` returns, made once per ``key`` and process and shared by the repositories of
    the process (the SDK clients are thread-safe, and making one takes tens of milliseconds). A forked child
    makes its own: connection pools must not cross processes."""
    full_key = (os.getpid(), *key)
    with _clients_lock:
        client = _clients.get(full_key)
        if client is None:
            client = _clients[full_key] = make()
    return client


class ObjectStoreRepository(ABC):
    """Base of the object store repositories. ``prefix`` is the root's key prefix (no leading or trailing ``/``)."""

    #: Most keys one ``_delete_keys`` call takes.
    delete_batch_size = 1000
    #: Bytes per part of multipart and streamed uploads (set by each store).
    part_size: int

    def __init__(self, root_uri: str, prefix: str) -> None:
        self.root_uri = root_uri
        self.prefix = prefix.strip("/")

    # --- primitives a store implements ---------------------------------------------------------------
    @abstractmethod
    def _stat(self, key: str) -> int | None:
        """Size of the object with exactly this key, ``None`` if there is none."""

    @abstractmethod
    def _walk(self, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object whose key starts with ``prefix``, in any order."""

    @abstractmethod
    def _children(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        """Direct children of the directory ``prefix`` (ends with ``/`` or is empty): ``(key, size)`` of objects
        and ``(sub-prefix without trailing '/', None)`` of sub-directories."""

    @abstractmethod
    def _upload_file(self, local_file: str, key: str, show_progress: bool) -> None: ...

    @abstractmethod
    def _download_file(self, key: str, size: int, local_path: str) -> None:
        """Write the object to ``local_path`` so that a failure leaves no partial file under that name."""

    @abstractmethod
    def _delete_keys(self, keys: list[str]) -> None:
        """Delete up to :attr:`delete_batch_size` objects; keys that do not exist are ignored."""

    @abstractmethod
    def _open_at(self, key: str, offset: int) -> IO[bytes]:
        """A readable stream of the object from byte ``offset`` to its end."""

    @abstractmethod
    def _open_sink(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A streamed upload that publishes the object only if the block ends without an exception."""

    def _has_objects_below(self, prefix: str) -> bool:
        return next(iter(self._walk(prefix)), None) is not None

    def _after_delete(self, key: str) -> None:
        """Hook run after a delete (S3 aborts unfinished multipart uploads there)."""
        return None

    # --- keys --------------------------------------------------------------------------------------
    def _key(self, artifact_path: str | None) -> str:
        """Object key of a root-relative artifact path, after the client-input checks (no ``..``, absolute
        paths, encoded tricks)."""
        if not artifact_path:
            return self.prefix
        validate_path_is_safe(artifact_path)
        return join_artifact_path(self.prefix, *(p for p in artifact_path.split("/") if p not in ("", ".")))

    def _file_key(self, artifact_path: str) -> str:
        key = self._key(artifact_path)
        if key == self.prefix or artifact_path.endswith("/"):
            raise MltrailException.invalid_parameter(f"Invalid artifact file path '{artifact_path}'")
        return key

    @staticmethod
    def _dir_prefix(key: str) -> str:
        return f"{key}/" if key else ""

    def _relative(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    @staticmethod
    def _missing(artifact_path: str | None) -> MltrailException:
        return MltrailException.not_found(f"Artifact '{artifact_path}' does not exist")

    # --- writing -----------------------------------------------------------------------------------
    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        if not os.path.isfile(local_file):
            raise MltrailException.invalid_parameter(f"'{local_file}' is not a file")
        self._upload_file(local_file, join_artifact_path(self._key(artifact_path), os.path.basename(local_file)), True)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Uploads the files concurrently (see :mod:`mltrail.artifacts.transfer`), one progress bar for all."""

        def upload(local_file: str, artifact_dir: str | None) -> None:
            key = join_artifact_path(self._key(artifact_dir), os.path.basename(local_file))
            self._upload_file(local_file, key, False)

        transfer.upload_directory(local_dir, artifact_path, upload)

    @contextmanager
    def open_write(self, artifact_path: str) -> Iterator[BinaryIO]:
        with self._open_sink(self._file_key(artifact_path)) as sink:
            yield sink

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Delete a file or a whole tree (the root if ``None``), in batches, listing as it goes."""
        key = self._key(artifact_path)
        batch = [key] if key else []
        for name, _size in self._walk(self._dir_prefix(key)):
            batch.append(name)
            if len(batch) >= self.delete_batch_size:
                self._delete_keys(batch)
                batch = []
        if batch:
            self._delete_keys(batch)
        self._after_delete(key)

    # --- reading -----------------------------------------------------------------------------------
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        prefix = self._dir_prefix(self._key(path))
        infos = [
            FileInfo(self._relative(key), size is None, size)
            for key, size in self._children(prefix)
            if key != prefix  # a zero-byte "directory marker" object some tools create
        ]
        return sorted(infos, key=lambda info: info.path)

    def file_size(self, artifact_path: str) -> int | None:
        key = self._key(artifact_path)
        if key == self.prefix:
            return None
        size = self._stat(key)
        if size is not None:
            return size
        if self._has_objects_below(self._dir_prefix(key)):
            return None
        raise self._missing(artifact_path)

    def open_read(self, artifact_path: str) -> BinaryIO:
        """A seekable stream: after a seek the next read is one ranged request from the new offset, so HTTP
        Range requests on the proxy do not read the skipped bytes."""
        key = self._key(artifact_path)
        size = self._stat(key) if key != self.prefix else None
        if size is None:
            raise self._missing(artifact_path)
        return cast(BinaryIO, transfer.RangedReader(size, lambda offset: self._open_at(key, offset)))

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str:
        """Download a file, or a tree with its files fetched concurrently; return the local path."""
        dst_root = os.path.abspath(dst_path) if dst_path else tempfile.mkdtemp(prefix="mltrail-download-")
        key = self._key(artifact_path)
        rel = self._relative(key) if key != self.prefix else ""
        size = self._stat(key) if rel else None
        if size is not None:
            local = transfer.local_destination(dst_root, rel)
            self._download_file(key, size, local)
            return local
        sizes = {self._relative(k): s for k, s in self._walk(self._dir_prefix(key)) if not k.endswith("/")}
        if rel and not sizes:
            raise self._missing(artifact_path)
        local_dir = transfer.local_destination(dst_root, rel) if rel else dst_root
        os.makedirs(local_dir, exist_ok=True)
        transfer.download_files(
            sorted(sizes), dst_root, lambda path, local: self._download_file(self._key(path), sizes[path], local)
        )
        return local_dir
