"""The interface every artifact repository implements.

A repository is bound to one root URI (a run's ``artifact_uri``, or a server's artifacts destination).
All ``artifact_path`` arguments are relative to that root, use ``/`` separators, and are checked with
:func:`mltrail.artifacts.paths.validate_path_is_safe` before use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

from mltrail.entities import FileInfo


@runtime_checkable
class ArtifactRepository(Protocol):
    root_uri: str

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        """Copy one local file to ``<artifact_path>/<basename>``."""
        ...

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        """Copy a local directory's contents (recursively) under ``artifact_path``."""
        ...

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``path`` (root if None), with paths relative to the root, sorted by path.
        Directories have ``file_size=None``. A missing path lists as empty."""
        ...

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str:
        """Download a file or a directory tree; return the local path of what was downloaded."""
        ...

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Delete a file or a directory tree (everything under the root if None)."""
        ...

    def open_read(self, artifact_path: str) -> BinaryIO:
        """A binary stream of one file, for streaming downloads. Missing file: RESOURCE_DOES_NOT_EXIST."""
        ...

    def open_write(self, artifact_path: str) -> AbstractContextManager[BinaryIO]:
        """A binary sink for one file, for streaming uploads. The file appears under its final name only
        when the context exits without an exception (no half-written files are ever visible)."""
        ...

    def file_size(self, artifact_path: str) -> int | None:
        """Size in bytes of a file, ``None`` if it is a directory; RESOURCE_DOES_NOT_EXIST if missing."""
        ...


def iter_chunks(stream: BinaryIO, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
    """Read a binary stream in chunks until it ends, then close it."""
    with stream:
        while chunk := stream.read(chunk_size):
            yield chunk


@dataclass(frozen=True, slots=True)
class PartUploadCredential:
    """Where a client PUTs one part of a multipart upload (a presigned URL and the headers it needs)."""

    part_number: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UploadedPart:
    part_number: int
    etag: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class PresignedDownload:
    url: str
    headers: dict[str, str]
    file_size: int


@runtime_checkable
class MultipartArtifactRepository(ArtifactRepository, Protocol):
    """Optional capability of cloud repositories (S3...): multipart uploads with presigned part URLs and
    presigned downloads. The proxy's ``mpu/*`` and ``presigned/*`` endpoints use it when the destination has
    it and answer 501 NOT_IMPLEMENTED otherwise."""

    def create_multipart_upload(
        self, artifact_path: str, num_parts: int, expiration: int = 900
    ) -> tuple[str, list[PartUploadCredential]]:
        """Start an upload of ``artifact_path`` in ``num_parts`` parts; return (upload_id, one credential per part)."""
        ...

    def complete_multipart_upload(self, artifact_path: str, upload_id: str, parts: list[UploadedPart]) -> None: ...

    def abort_multipart_upload(self, artifact_path: str, upload_id: str) -> None: ...

    def presigned_download(self, artifact_path: str, expiration: int = 300) -> PresignedDownload: ...
