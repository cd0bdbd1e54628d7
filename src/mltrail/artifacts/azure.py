"""Artifacts in Azure Blob Storage: ``wasbs://<container>@<account>.blob.core.windows.net/<path>``.

Needs ``pip install mltrail[azure]`` (azure-storage-blob). Credentials, first found wins (as in MLflow):
``AZURE_STORAGE_CONNECTION_STRING`` (its endpoint wins over the URI's host, e.g. for Azurite),
``AZURE_STORAGE_ACCESS_KEY`` (shared key of the URI's account), else ``DefaultAzureCredential`` from the
``azure-identity`` package (environment, managed identity, Azure CLI login...).

Big files are uploaded as concurrent blocks by the SDK; ``open_write`` stages blocks and commits the block list
only when the block ends without an exception (uncommitted blocks are never visible and expire on their own).
"""

from __future__ import annotations

import base64
import mimetypes
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any, BinaryIO, cast

from mltrail.artifacts import transfer
from mltrail.artifacts.object_store import ObjectStoreRepository, shared_client
from mltrail.errors import ErrorCode, MltrailException

DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024
_BATCH_LIMIT = 256  # Blob Batch API limit


def parse_wasbs_uri(uri: str) -> tuple[str, str, str]:
    """``(container, account host, path)`` of ``wasbs://container@account.blob.core.windows.net/path``."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme.lower() not in ("wasbs", "wasb") or "@" not in parsed.netloc:
        raise MltrailException.invalid_parameter(
            f"Not an Azure Blob URI: '{uri}' (expected wasbs://<container>@<account>.blob.core.windows.net/<path>)"
        )
    container, host = parsed.netloc.split("@", 1)
    if not container or not host:
        raise MltrailException.invalid_parameter(f"Azure Blob URI '{uri}' needs both a container and an account")
    return container, host, parsed.path.strip("/")


def _service_client(host: str) -> Any:
    """A ``BlobServiceClient`` for the account, shared by the repositories of this process."""
    connection_string = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    access_key = os.environ.get("AZURE_STORAGE_ACCESS_KEY")

    def make() -> Any:
        try:
            from azure.storage.blob import BlobServiceClient
        except ImportError:
            raise MltrailException(
                "wasbs:// artifact URIs need azure-storage-blob: pip install 'mltrail[azure]'",
                ErrorCode.NOT_IMPLEMENTED,
            ) from None
        if connection_string:
            return BlobServiceClient.from_connection_string(connection_string)
        return BlobServiceClient(f"https://{host}", credential=access_key or _default_credential())

    return shared_client(("azure", host, connection_string, access_key), make)


def _default_credential() -> Any:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise MltrailException(
            "No Azure credentials: set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCESS_KEY, "
            "or pip install azure-identity to use DefaultAzureCredential",
            ErrorCode.UNAUTHENTICATED,
        ) from None
    return DefaultAzureCredential()


@contextmanager
def azure_errors(what: str) -> Iterator[None]:
    """Turn Azure SDK errors into :class:`MltrailException` with the matching MLflow error code."""
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    try:
        yield
    except ResourceNotFoundError as exc:
        raise MltrailException(f"{what}: {exc.reason or exc.message}", ErrorCode.RESOURCE_DOES_NOT_EXIST) from None
    except ClientAuthenticationError as exc:
        raise MltrailException(f"{what}: {exc.reason or exc.message}", ErrorCode.PERMISSION_DENIED) from None
    except HttpResponseError as exc:
        code = ErrorCode.TEMPORARILY_UNAVAILABLE if exc.status_code in (500, 503) else ErrorCode.INTERNAL_ERROR
        raise MltrailException(f"{what}: {exc.reason or exc.message}", code) from None
    except ServiceRequestError as exc:
        raise MltrailException(f"{what}: {exc.message}", ErrorCode.TEMPORARILY_UNAVAILABLE) from None
    except AzureError as exc:
        raise MltrailException(f"{what}: {exc.message}", ErrorCode.INTERNAL_ERROR) from None


class _BlockSink:
    """:class:`~mltrail.artifacts.transfer.PartSink` over Put Block / Put Block List."""

    def __init__(self, blob: Any) -> None:
        self._blob = blob
        self._block_ids: list[str] = []

    def put_whole(self, data: bytes) -> None:
        with azure_errors(f"Cannot write '{self._blob.blob_name}'"):
            self._blob.upload_blob(data, overwrite=True)

    def start(self) -> None:
        """Nothing to create: staged blocks live with the blob name until committed or expired."""

    def upload_part(self, part_number: int, data: bytes) -> None:
        block_id = base64.b64encode(f"{part_number:08d}".encode()).decode()  # ids of one blob have one length
        with azure_errors(f"Cannot upload block {part_number} of '{self._blob.blob_name}'"):
            self._blob.stage_block(block_id, data)
        self._block_ids.append(block_id)

    def complete(self) -> None:
        from azure.storage.blob import BlobBlock

        with azure_errors(f"Cannot commit '{self._blob.blob_name}'"):
            self._blob.commit_block_list([BlobBlock(block_id=i) for i in self._block_ids])

    def abort(self) -> None:
        """Uncommitted blocks are never visible and the service discards them; nothing to undo."""


class AzureBlobArtifactRepository(ObjectStoreRepository):
    """:class:`~mltrail.artifacts.base.ArtifactRepository` over an Azure Blob container."""

    delete_batch_size = _BATCH_LIMIT

    def __init__(self, root_uri: str) -> None:
        container, host, prefix = parse_wasbs_uri(root_uri)
        super().__init__(root_uri, prefix)
        self.container = container
        self._container = _service_client(host).get_container_client(container)
        self.part_size = DEFAULT_BLOCK_SIZE

    def _blob(self, key: str) -> Any:
        return self._container.get_blob_client(key)

    def _where(self, key: str) -> str:
        return f"{self.container}/{key}"

    # --- ObjectStoreRepository primitives ----------------------------------------------------------
    def _stat(self, key: str) -> int | None:
        from azure.core.exceptions import ResourceNotFoundError

        with azure_errors(f"Cannot read {self._where(key)}"):
            try:
                return int(self._blob(key).get_blob_properties().size)
            except ResourceNotFoundError:
                return None

    def _walk(self, prefix: str) -> Iterator[tuple[str, int]]:
        with azure_errors(f"Cannot list {self._where(prefix)}"):
            for blob in self._container.list_blobs(name_starts_with=prefix or None):
                yield blob.name, int(blob.size)

    def _children(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        with azure_errors(f"Cannot list {self._where(prefix)}"):
            for item in self._container.walk_blobs(name_starts_with=prefix or None, delimiter="/"):
                if item.name.endswith("/"):  # a BlobPrefix: a sub-directory
                    yield item.name.rstrip("/"), None
                else:
                    yield item.name, int(item.size)

    def _upload_file(self, local_file: str, key: str, show_progress: bool) -> None:
        from azure.storage.blob import ContentSettings

        content_type = mimetypes.guess_type(local_file)[0] or "application/octet-stream"
        size = os.path.getsize(local_file)
        desc = f"Uploading {os.path.basename(local_file)}"
        with (
            azure_errors(f"Cannot upload '{local_file}' to {self._where(key)}"),
            transfer.progress_bar(size if show_progress else 0, desc, unit="B") as advance,
            open(local_file, "rb") as body,
        ):
            done = [0]

            def hook(current: int, _total: int | None) -> None:
                advance(current - done[0])
                done[0] = current

            self._blob(key).upload_blob(
                body,
                length=size,
                overwrite=True,
                max_concurrency=transfer.max_workers(),
                content_settings=ContentSettings(content_type=content_type),
                progress_hook=hook,
            )

    def _download_file(self, key: str, size: int, local_path: str) -> None:
        with azure_errors(f"Cannot download {self._where(key)}"), transfer.atomic_local_file(local_path) as sink:
            self._blob(key).download_blob(max_concurrency=transfer.max_workers()).readinto(sink)

    def _delete_keys(self, keys: list[str]) -> None:
        with azure_errors(f"Cannot delete artifacts in {self.container}"):
            responses = self._container.delete_blobs(*keys, raise_on_any_failure=False)
            failed = [r for r in responses if r.status_code not in (200, 202, 404)]
        if failed:
            raise MltrailException(
                f"Cannot delete {len(failed)} blob(s) in {self.container}: HTTP {failed[0].status_code}",
                ErrorCode.PERMISSION_DENIED if failed[0].status_code == 403 else ErrorCode.INTERNAL_ERROR,
            )

    def _open_at(self, key: str, offset: int) -> IO[bytes]:
        with azure_errors(f"Cannot read {self._where(key)}"):
            return cast(IO[bytes], self._blob(key).download_blob(offset=offset))

    def _open_sink(self, key: str) -> AbstractContextManager[BinaryIO]:
        return transfer.streamed_parts(_BlockSink(self._blob(key)), self.part_size)
