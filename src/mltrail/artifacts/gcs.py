"""Artifacts in Google Cloud Storage: ``gs://<bucket>/<path>``.

Needs ``pip install mltrail[gcs]`` (google-cloud-storage). Credentials come from Application Default
Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth application-default login``, the metadata server);
``STORAGE_EMULATOR_HOST`` points the client at an emulator (anonymous). ``MLTRAIL_GCS_CHUNK_SIZE`` (default
16 MiB, a multiple of 256 KiB) is the chunk of resumable uploads, used for files above 8 MiB and for
``open_write``, whose resumable upload is finalized only when the block ends without an exception and
cancelled otherwise.
"""

from __future__ import annotations

import mimetypes
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any, BinaryIO, cast

from mltrail import config
from mltrail.artifacts import transfer
from mltrail.artifacts.object_store import ObjectStoreRepository, shared_client
from mltrail.errors import ErrorCode, MltrailException

_CHUNK_QUANTUM = 256 * 1024  # resumable upload chunks must be multiples of this
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key prefix)`` of ``gs://bucket/prefix``."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme.lower() != "gs" or not parsed.netloc:
        raise MltrailException.invalid_parameter(f"Not a GCS URI: '{uri}' (expected gs://bucket/path)")
    return parsed.netloc, parsed.path.strip("/")


@contextmanager
def gcs_errors(what: str) -> Iterator[None]:
    """Turn Google client errors into :class:`MltrailException` with the matching MLflow error code."""
    from google.api_core import exceptions as api
    from google.auth.exceptions import DefaultCredentialsError

    try:
        yield
    except api.NotFound as exc:
        raise MltrailException(f"{what}: {exc.message}", ErrorCode.RESOURCE_DOES_NOT_EXIST) from None
    except (api.Forbidden, api.Unauthorized) as exc:
        raise MltrailException(f"{what}: {exc.message}", ErrorCode.PERMISSION_DENIED) from None
    except (api.ServiceUnavailable, api.TooManyRequests) as exc:
        raise MltrailException(f"{what}: {exc.message}", ErrorCode.TEMPORARILY_UNAVAILABLE) from None
    except api.GoogleAPIError as exc:
        raise MltrailException(f"{what}: {exc}", ErrorCode.INTERNAL_ERROR) from None
    except DefaultCredentialsError as exc:
        raise MltrailException(f"{what}: no Google Cloud credentials: {exc}", ErrorCode.UNAUTHENTICATED) from None


def gcs_client() -> Any:
    """A ``google.cloud.storage.Client``, shared by the repositories of this process."""

    def make() -> Any:
        try:
            from google.cloud import storage
        except ImportError:
            raise MltrailException(
                "gs:// artifact URIs need google-cloud-storage: pip install 'mltrail[gcs]'",
                ErrorCode.NOT_IMPLEMENTED,
            ) from None
        with gcs_errors("Cannot create a Google Cloud Storage client"):
            return storage.Client()

    environment = (os.environ.get("STORAGE_EMULATOR_HOST"), os.environ.get("GOOGLE_CLOUD_PROJECT"))
    return shared_client(("gcs", *environment), make)


class GCSArtifactRepository(ObjectStoreRepository):
    """:class:`~mltrail.artifacts.base.ArtifactRepository` over a GCS bucket."""

    def __init__(self, root_uri: str) -> None:
        bucket, prefix = parse_gs_uri(root_uri)
        super().__init__(root_uri, prefix)
        self.bucket_name = bucket
        self._bucket = gcs_client().bucket(bucket)
        chunk = config.get_env_int("GCS_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)
        self.part_size = max(_CHUNK_QUANTUM, chunk // _CHUNK_QUANTUM * _CHUNK_QUANTUM)

    def _where(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{key}"

    # --- ObjectStoreRepository primitives ----------------------------------------------------------
    def _stat(self, key: str) -> int | None:
        with gcs_errors(f"Cannot read {self._where(key)}"):
            blob = self._bucket.get_blob(key)
        return None if blob is None else int(blob.size)

    def _walk(self, prefix: str) -> Iterator[tuple[str, int]]:
        with gcs_errors(f"Cannot list {self._where(prefix)}"):
            for blob in self._bucket.list_blobs(prefix=prefix or None):
                yield blob.name, int(blob.size)

    def _children(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        with gcs_errors(f"Cannot list {self._where(prefix)}"):
            blobs = self._bucket.list_blobs(prefix=prefix or None, delimiter="/")
            for blob in blobs:  # the sub-directories are known once the pages are read
                yield blob.name, int(blob.size)
            for sub in blobs.prefixes:
                yield sub.rstrip("/"), None

    def _upload_file(self, local_file: str, key: str, show_progress: bool) -> None:
        blob = self._bucket.blob(key, chunk_size=self.part_size)
        content_type = mimetypes.guess_type(local_file)[0]
        with gcs_errors(f"Cannot upload '{local_file}' to {self._where(key)}"):
            blob.upload_from_filename(local_file, content_type=content_type)

    def _download_file(self, key: str, size: int, local_path: str) -> None:
        with gcs_errors(f"Cannot download {self._where(key)}"), transfer.atomic_local_file(local_path) as sink:
            self._bucket.blob(key).download_to_file(sink)

    def _delete_keys(self, keys: list[str]) -> None:
        """One DELETE per object, concurrently (the JSON API's batch endpoint is not on every emulator)."""
        from google.api_core.exceptions import NotFound

        def delete(key: str) -> None:
            with gcs_errors(f"Cannot delete {self._where(key)}"), suppress(NotFound):
                self._bucket.blob(key).delete()

        transfer.run_concurrently(keys, delete, desc="Deleting artifacts")

    def _open_at(self, key: str, offset: int) -> IO[bytes]:
        reader = self._bucket.blob(key).open("rb", chunk_size=self.part_size)
        reader.seek(offset)
        return cast(IO[bytes], reader)

    @contextmanager
    def _open_sink(self, key: str) -> Iterator[BinaryIO]:
        blob = self._bucket.blob(key, chunk_size=self.part_size)
        with gcs_errors(f"Cannot write {self._where(key)}"), blob.open("wb", ignore_flush=True) as writer:
            yield writer  # BlobWriter finalizes on a clean exit and cancels the upload on an exception
