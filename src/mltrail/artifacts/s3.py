"""Artifacts in Amazon S3 or any S3-compatible store (MinIO, Ceph, R2, moto...): ``s3://bucket/prefix``.

Configuration (``MLTRAIL_*`` first, then MLflow's ``MLFLOW_*`` name):
- ``S3_ENDPOINT_URL``: endpoint of an S3-compatible store; ``S3_IGNORE_TLS``: skip certificate checks;
  ``BOTO_CLIENT_ADDRESSING_STYLE``: ``auto`` (default), ``path`` or ``virtual``;
  ``S3_UPLOAD_EXTRA_ARGS``: JSON of extra upload arguments, e.g. ``{"ServerSideEncryption": "aws:kms"}``.
- ``S3_MULTIPART_THRESHOLD`` (default 100 MiB): files at least this big are uploaded and downloaded in parts,
  concurrently; ``S3_MULTIPART_CHUNK_SIZE`` (default 16 MiB, at least 5 MiB): the part size.
- Credentials: the standard AWS chain (environment, shared config/credentials files and profiles, SSO,
  container and instance roles).

boto3 is imported only when an S3 repository is first used.
"""

from __future__ import annotations

import json
import mimetypes
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any, BinaryIO, cast

from mltrail import config
from mltrail.artifacts import transfer
from mltrail.artifacts.base import PartUploadCredential, PresignedDownload, UploadedPart
from mltrail.artifacts.object_store import ObjectStoreRepository, shared_client
from mltrail.errors import ErrorCode, MltrailException

MiB = 1024 * 1024
DEFAULT_MULTIPART_THRESHOLD = 100 * MiB
DEFAULT_PART_SIZE = 16 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound", "404"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "403"}
_INVALID = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "EntityTooLarge", "InvalidArgument", "InvalidRequest"}
_BUSY = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "503"}


def s3_client() -> Any:
    """A boto3 S3 client for the current settings, shared by the repositories of this process."""
    endpoint = config.get_env("S3_ENDPOINT_URL")
    verify = not config.get_env_bool("S3_IGNORE_TLS")
    style = config.get_env("BOTO_CLIENT_ADDRESSING_STYLE") or "auto"
    credentials = (os.environ.get(n) for n in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_REGION", "AWS_DEFAULT_REGION"))

    def make() -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise MltrailException(
                "s3:// artifact URIs need boto3: pip install 'mltrail[s3]'", ErrorCode.NOT_IMPLEMENTED
            ) from None
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            verify=verify,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": style},
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=transfer.max_workers() + 8,
            ),
        )

    return shared_client(("s3", endpoint, verify, style, *credentials), make)


def _upload_extra_args() -> dict[str, Any]:
    raw = config.get_env("S3_UPLOAD_EXTRA_ARGS")
    if not raw:
        return {}
    try:
        extra = json.loads(raw)
    except ValueError:
        raise MltrailException.invalid_parameter(f"S3_UPLOAD_EXTRA_ARGS must be a JSON object, got {raw!r}") from None
    if not isinstance(extra, dict):
        raise MltrailException.invalid_parameter(f"S3_UPLOAD_EXTRA_ARGS must be a JSON object, got {raw!r}")
    return extra


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


@contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Turn boto errors into :class:`MltrailException` with the matching MLflow error code."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    try:
        yield
    except ClientError as exc:
        code = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or code
        if code in _NOT_FOUND:
            error = ErrorCode.RESOURCE_DOES_NOT_EXIST
        elif code in _DENIED:
            error = ErrorCode.PERMISSION_DENIED
        elif code in _INVALID:
            error = ErrorCode.INVALID_PARAMETER_VALUE
        elif code in _BUSY:
            error = ErrorCode.TEMPORARILY_UNAVAILABLE
        else:
            error = ErrorCode.INTERNAL_ERROR
        raise MltrailException(f"{what}: {code}: {message}", error) from None
    except NoCredentialsError:
        raise MltrailException(
            f"{what}: no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role)",
            ErrorCode.UNAUTHENTICATED,
        ) from None
    except EndpointConnectionError as exc:
        raise MltrailException(f"{what}: {exc}", ErrorCode.TEMPORARILY_UNAVAILABLE) from None
    except BotoCoreError as exc:
        raise MltrailException(f"{what}: {exc}", ErrorCode.INTERNAL_ERROR) from None


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key prefix)`` of ``s3://bucket/prefix``."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme.lower() != "s3" or not parsed.netloc:
        raise MltrailException.invalid_parameter(f"Not an S3 URI: '{uri}' (expected s3://bucket/path)")
    return parsed.netloc, parsed.path.strip("/")


class _MultipartSink:
    """:class:`~mltrail.artifacts.transfer.PartSink` over one S3 multipart upload."""

    def __init__(self, client: Any, bucket: str, key: str, extra: dict[str, Any]) -> None:
        self._client, self._bucket, self._key, self._extra = client, bucket, key, extra
        self._upload_id = ""
        self._parts: list[dict[str, Any]] = []

    def put_whole(self, data: bytes) -> None:
        with s3_errors(f"Cannot write '{self._key}'"):
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=data, **self._extra)

    def start(self) -> None:
        with s3_errors(f"Cannot start a multipart upload of '{self._key}'"):
            response = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key, **self._extra)
        self._upload_id = response["UploadId"]

    def upload_part(self, part_number: int, data: bytes) -> None:
        with s3_errors(f"Cannot upload part {part_number} of '{self._key}'"):
            response = self._client.upload_part(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=part_number, Body=data
            )
        self._parts.append({"PartNumber": part_number, "ETag": response["ETag"]})

    def complete(self) -> None:
        with s3_errors(f"Cannot complete the upload of '{self._key}'"):
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )

    def abort(self) -> None:
        with s3_errors(f"Cannot abort the upload of '{self._key}'"):
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)


class S3ArtifactRepository(ObjectStoreRepository):
    """:class:`~mltrail.artifacts.base.ArtifactRepository` and
    :class:`~mltrail.artifacts.base.MultipartArtifactRepository` over ``s3://bucket/prefix``."""

    delete_batch_size = 1000  # DeleteObjects limit

    def __init__(self, root_uri: str) -> None:
        bucket, prefix = parse_s3_uri(root_uri)
        super().__init__(root_uri, prefix)
        self.bucket = bucket
        self.multipart_threshold = max(1, config.get_env_int("S3_MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD))
        self.part_size = max(MIN_PART_SIZE, config.get_env_int("S3_MULTIPART_CHUNK_SIZE", DEFAULT_PART_SIZE))
        self._extra = _upload_extra_args()
        self._client = s3_client()

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.part_size,
            max_concurrency=transfer.max_workers(),
        )

    # --- ObjectStoreRepository primitives ----------------------------------------------------------
    def _stat(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        with s3_errors(f"Cannot read {self._where(key)}"):
            try:
                return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    return None
                raise

    def _pages(self, prefix: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        with s3_errors(f"Cannot list {self._where(prefix)}"):
            yield from paginator.paginate(Bucket=self.bucket, Prefix=prefix, **kwargs)

    def _walk(self, prefix: str) -> Iterator[tuple[str, int]]:
        for page in self._pages(prefix):
            for obj in page.get("Contents", ()):
                yield obj["Key"], int(obj["Size"])

    def _children(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        for page in self._pages(prefix, Delimiter="/"):
            for sub in page.get("CommonPrefixes", ()):
                yield sub["Prefix"].rstrip("/"), None
            for obj in page.get("Contents", ()):
                yield obj["Key"], int(obj["Size"])

    def _has_objects_below(self, prefix: str) -> bool:
        with s3_errors(f"Cannot list {self._where(prefix)}"):
            return bool(self._client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"))

    def _upload_file(self, local_file: str, key: str, show_progress: bool) -> None:
        """One PUT below the multipart threshold; above it boto3 uploads parts concurrently, each part retried
        by botocore's retry policy."""
        extra = dict(self._extra)
        content_type = mimetypes.guess_type(local_file)[0]
        if content_type and "ContentType" not in extra:
            extra["ContentType"] = content_type
        size = os.path.getsize(local_file)
        with s3_errors(f"Cannot upload '{local_file}' to {self._where(key)}"):
            if size < self.multipart_threshold:
                with open(local_file, "rb") as body:
                    self._client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
                return
            desc = f"Uploading {os.path.basename(local_file)}"
            with transfer.progress_bar(size if show_progress else 0, desc, unit="B") as advance:
                self._client.upload_file(
                    local_file, self.bucket, key, ExtraArgs=extra, Config=self._transfer_config(), Callback=advance
                )

    def _download_file(self, key: str, size: int, local_path: str) -> None:
        with s3_errors(f"Cannot download {self._where(key)}"):
            if size >= self.multipart_threshold:  # concurrent ranged GETs into a temporary file, then a rename
                os.makedirs(os.path.dirname(local_path), exist_ok=True)
                desc = f"Downloading {os.path.basename(local_path)}"
                with transfer.progress_bar(size, desc, unit="B") as advance:
                    self._client.download_file(
                        self.bucket, key, local_path, Config=self._transfer_config(), Callback=advance
                    )
                return
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with body, transfer.atomic_local_file(local_path) as sink:
                for chunk in body.iter_chunks(1024 * 1024):
                    sink.write(chunk)

    def _delete_keys(self, keys: list[str]) -> None:
        with s3_errors(f"Cannot delete artifacts in s3://{self.bucket}"):
            response = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise MltrailException(
                f"Cannot delete {len(errors)} object(s) in s3://{self.bucket}, e.g. '{first.get('Key')}': "
                f"{first.get('Code')}: {first.get('Message')}",
                ErrorCode.PERMISSION_DENIED if first.get("Code") == "AccessDenied" else ErrorCode.INTERNAL_ERROR,
            )

    def _after_delete(self, key: str) -> None:
        """Abort unfinished multipart uploads below the deleted path: their parts are billed but invisible."""
        paginator = self._client.get_paginator("list_multipart_uploads")
        with s3_errors(f"Cannot abort unfinished uploads in {self._where(key)}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
                for upload in page.get("Uploads", ()):
                    name = upload["Key"]
                    if name == key or name.startswith(self._dir_prefix(key)):
                        self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload["UploadId"])

    def _open_at(self, key: str, offset: int) -> IO[bytes]:
        with s3_errors(f"Cannot read {self._where(key)}"):
            response = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-")
        return cast(IO[bytes], response["Body"])

    def _open_sink(self, key: str) -> AbstractContextManager[BinaryIO]:
        """Streams into a multipart upload, one part in memory at a time; aborted if the block raises."""
        return transfer.streamed_parts(_MultipartSink(self._client, self.bucket, key, self._extra), self.part_size)

    # --- multipart with presigned URLs (MultipartArtifactRepository) --------------------------------
    def create_multipart_upload(
        self, artifact_path: str, num_parts: int, expiration: int = 900
    ) -> tuple[str, list[PartUploadCredential]]:
        if not 1 <= num_parts <= MAX_PARTS:
            raise MltrailException.invalid_parameter(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")
        key = self._file_key(artifact_path)
        with s3_errors(f"Cannot start a multipart upload of '{artifact_path}'"):
            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=key, **self._extra)["UploadId"]
            credentials = [
                PartUploadCredential(
                    part_number=number,
                    url=self._client.generate_presigned_url(
                        "upload_part",
                        Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                        ExpiresIn=expiration,
                    ),
                )
                for number in range(1, num_parts + 1)
            ]
        return upload_id, credentials

    def complete_multipart_upload(self, artifact_path: str, upload_id: str, parts: list[UploadedPart]) -> None:
        key = self._file_key(artifact_path)
        ordered = sorted(parts, key=lambda part: part.part_number)
        with s3_errors(f"Cannot complete the multipart upload of '{artifact_path}'"):
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag} for p in ordered]},
            )

    def abort_multipart_upload(self, artifact_path: str, upload_id: str) -> None:
        key = self._file_key(artifact_path)
        with s3_errors(f"Cannot abort the multipart upload of '{artifact_path}'"):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def presigned_download(self, artifact_path: str, expiration: int = 300) -> PresignedDownload:
        key = self._file_key(artifact_path)
        size = self._stat(key)
        if size is None:
            raise self._missing(artifact_path)
        with s3_errors(f"Cannot presign a download of '{artifact_path}'"):
            url = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expiration
            )
        return PresignedDownload(url=url, headers={}, file_size=size)
