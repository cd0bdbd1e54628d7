"""Artifacts proxied through a tracking server (MLflow's ``mlflow-artifacts`` service).

Root URIs:
- ``mlflow-artifacts:/<path>``: resolved against the tracking URI (``mlflow-artifacts://host:port/<path>``
  names the server host explicitly and keeps the tracking URI's scheme);
- ``http(s)://host[/prefix]/api/2.0/mlflow-artifacts/artifacts/<path>``.

How files move (settings ``MLTRAIL_<NAME>`` first, then MLflow's ``MLFLOW_<NAME>``):
- Directories: files go up and down concurrently on a bounded pool (:mod:`mltrail.artifacts.transfer`,
  ``ARTIFACT_TRANSFER_WORKERS``), with the connection pool to the server sized to it.
- Uploads: one streamed ``PUT`` of the open file. A file of at least ``MULTIPART_UPLOAD_MINIMUM_FILE_SIZE``
  (500 MiB) goes in parts of ``MULTIPART_UPLOAD_CHUNK_SIZE`` (10 MiB) when the server's destination can do it
  (server-info ``multipart_uploads_enabled``, or forced with ``ENABLE_PROXY_MULTIPART_UPLOAD``):
  ``mpu/create`` gives presigned part URLs, the parts are ``PUT`` there in parallel (each retried on its own),
  then ``mpu/complete``; any failure sends ``mpu/abort``. A server answering "Multipart upload is not
  supported" gets the single ``PUT``.
- Downloads: one streamed ``GET``. A file of at least ``MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE`` (500 MiB)
  comes as parallel ranged ``GET``s of ``MULTIPART_DOWNLOAD_CHUNK_SIZE`` (100 MiB) written in place into a
  temporary file: from a presigned URL of the store when the server offers one (``multipart_downloads_enabled``
  or ``ENABLE_PROXY_MULTIPART_DOWNLOAD``), else from the server itself with HTTP Range.
Downloads appear under their final name only when complete. Memory stays bounded by the pool size times
one network buffer, whatever the file size.

The HTTP session, retries and auth towards the server are those of :mod:`mltrail.store.rest`; presigned
URLs are fetched with a separate session that sends no tracking-server credentials.
"""

from __future__ import annotations

import logging
import math
import mimetypes
import os
import posixpath
import tempfile
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import requests
from requests.adapters import HTTPAdapter

from mltrail import config
from mltrail.artifacts import transfer
from mltrail.artifacts.paths import join_artifact_path, validate_path_is_safe
from mltrail.entities import FileInfo
from mltrail.errors import ErrorCode, MltrailException
from mltrail.store.rest import RestClient, client_for

_log = logging.getLogger(__name__)
T = TypeVar("T")

SERVICE_PATH = "/api/2.0/mlflow-artifacts/artifacts"
MPU_PATH = "/api/2.0/mlflow-artifacts/mpu"
PRESIGNED_PATH = "/api/2.0/mlflow-artifacts/presigned"
SERVER_INFO_PATH = "/api/3.0/mlflow/server-info"
#: Prefix of the 501 message of servers whose destination cannot do multipart uploads (MLflow's wording).
MULTIPART_UNSUPPORTED = "Multipart upload is not supported"

MiB = 1024 * 1024
DEFAULT_MULTIPART_UPLOAD_MINIMUM = 500 * MiB
DEFAULT_MULTIPART_UPLOAD_CHUNK = 10 * MiB
DEFAULT_MULTIPART_DOWNLOAD_MINIMUM = 500 * MiB
DEFAULT_MULTIPART_DOWNLOAD_CHUNK = 100 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
#: Bytes per socket write when sending a body, and per read when receiving one (urllib3's default is 16 KiB).
_IO_BLOCK = MiB
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


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


# --- HTTP plumbing ------------------------------------------------------------------------------------


class TransferAdapter(HTTPAdapter):
    """An adapter for bulk transfers: a connection pool as big as the transfer pool, and 1 MiB socket writes
    for streamed bodies."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, blocksize=_IO_BLOCK, **pool_kwargs)


_sizing_lock = threading.Lock()
#: Connection pool size already mounted on each server's shared session.
_sized_pools: weakref.WeakKeyDictionary[requests.Session, int] = weakref.WeakKeyDictionary()


def _size_server_pool(client: RestClient, workers: int) -> None:
    """Mount a transfer adapter with ``workers`` connections on the server's shared session (for this server
    only, keeping the client's retry policy), unless one at least as big is there."""
    with _sizing_lock:
        if _sized_pools.get(client.session, 0) >= workers:
            return
        retries = getattr(client.session.get_adapter(client.base_url), "max_retries", 0)
        adapter = TransferAdapter(pool_connections=1, pool_maxsize=max(workers, 1), max_retries=retries)
        client.session.mount(client.base_url + "/", adapter)
        _sized_pools[client.session] = workers


def _store_session(workers: int) -> requests.Session:
    """A session for presigned store URLs: no tracking-server credentials (a store refuses a request carrying
    both a signature and an ``Authorization`` header), TLS checks off only with ``S3_IGNORE_TLS``."""
    session = requests.Session()
    adapter = TransferAdapter(pool_connections=4, pool_maxsize=max(workers, 1), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = not config.get_env_bool("S3_IGNORE_TLS")
    return session


class _Retryable(Exception):
    """A failed attempt worth repeating (connection trouble, 408/429/5xx, a short body)."""


def _check(response: requests.Response) -> None:
    if response.status_code in _RETRY_STATUSES:
        raise _Retryable(f"HTTP {response.status_code} from {response.url.split('?')[0]}")
    if response.status_code >= 400:
        raise RestClient.error_for(response)


def _retrying(what: str, attempt: Callable[[], T]) -> T:
    """Run ``attempt`` up to 1 + ``HTTP_REQUEST_MAX_RETRIES`` times with exponential backoff
    (``HTTP_REQUEST_BACKOFF_FACTOR`` seconds, doubling) while it fails in a way worth repeating."""
    retries = max(0, config.get_env_int("HTTP_REQUEST_MAX_RETRIES", 5))
    backoff = float(config.get_env("HTTP_REQUEST_BACKOFF_FACTOR") or 1.0)
    failures = 0
    while True:
        try:
            return attempt()
        except (
            _Retryable,
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            if failures >= retries:
                raise MltrailException(
                    f"{what} failed after {failures + 1} attempt(s): {exc}", ErrorCode.TEMPORARILY_UNAVAILABLE
                ) from None
            _log.debug("%s failed (%s); retrying", what, exc)
            time.sleep(min(backoff * 2**failures, 60.0))
            failures += 1


class _FileSlice:
    """``length`` bytes of a file from ``offset``, as a request body: requests sends ``Content-Length`` from
    ``len()`` and streams ``read()``, so a part is never held in memory."""

    def __init__(self, path: str, offset: int, length: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._file.seek(offset)
        self._left = self._length = length

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


# --- the repository -----------------------------------------------------------------------------------


@dataclass
class _Capabilities:
    """What the server's artifacts destination can do (server-info), fetched once per repository."""

    uploads: bool = False
    downloads: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    known: bool = False


class ProxiedArtifactRepository:
    """:class:`~mltrail.artifacts.base.ArtifactRepository` talking to a server's ``mlflow-artifacts`` API."""

    def __init__(self, root_uri: str, tracking_uri: str | None = None) -> None:
        self.root_uri = root_uri
        base_url, self._root = resolve(root_uri, tracking_uri)
        self._client: RestClient = client_for(base_url)
        self._workers = transfer.max_workers()
        _size_server_pool(self._client, self._workers)
        self._capabilities = _Capabilities()

    # --- addressing --------------------------------------------------------------------------------
    def _full_path(self, artifact_path: str | None) -> str:
        if artifact_path:
            validate_path_is_safe(artifact_path)
        return join_artifact_path(self._root, artifact_path)

    def _url(self, artifact_path: str | None, service: str = SERVICE_PATH) -> str:
        return f"{service}/{urllib.parse.quote(self._full_path(artifact_path))}"

    # --- server capabilities -----------------------------------------------------------------------
    def _multipart_enabled(self, setting: str, downloads: bool) -> bool:
        """``setting`` (e.g. ``ENABLE_PROXY_MULTIPART_UPLOAD``) when set, else what server-info advertises."""
        if config.get_env(setting) is not None:
            return config.get_env_bool(setting)
        caps = self._capabilities
        with caps.lock:
            if not caps.known:
                try:
                    info = self._client.call("GET", SERVER_INFO_PATH)
                except MltrailException as exc:  # an older server: no multipart
                    _log.debug("server-info unavailable (%s); multipart transfers disabled", exc.message)
                    info = {}
                caps.uploads = bool(info.get("multipart_uploads_enabled"))
                caps.downloads = bool(info.get("multipart_downloads_enabled"))
                caps.known = True
        return caps.downloads if downloads else caps.uploads

    # --- writing -----------------------------------------------------------------------------------
    def _put(self, artifact_path: str, body: BinaryIO) -> None:
        content_type = mimetypes.guess_type(artifact_path)[0] or "application/octet-stream"
        self._client.request("PUT", self._url(artifact_path), data=body, headers={"Content-Type": content_type})

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        if not os.path.isfile(local_file):
            raise MltrailException.invalid_parameter(f"'{local_file}' is not a file")
        target = join_artifact_path(artifact_path, os.path.basename(local_file))
        validate_path_is_safe(target)
        size = os.path.getsize(local_file)
        minimum = config.get_env_int("MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", DEFAULT_MULTIPART_UPLOAD_MINIMUM)
        multipart = size >= minimum and self._multipart_enabled("ENABLE_PROXY_MULTIPART_UPLOAD", downloads=False)
        if multipart and self._multipart_upload(local_file, target, size):
            return
        with open(local_file, "rb") as body:
            self._put(target, body)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        transfer.upload_directory(local_dir, artifact_path, self.log_artifact, workers=self._workers)

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

    # --- multipart uploads through presigned URLs ----------------------------------------------------
    def _multipart_upload(self, local_file: str, target: str, size: int) -> bool:
        """Upload in parts straight to the store; False if the server's destination cannot do it."""
        chunk = max(
            MIN_PART_SIZE,
            config.get_env_int("MULTIPART_UPLOAD_CHUNK_SIZE", DEFAULT_MULTIPART_UPLOAD_CHUNK),
            math.ceil(size / MAX_PARTS),
        )
        num_parts = max(1, math.ceil(size / chunk))
        directory, name = posixpath.split(target)
        url = {
            action: self._url(directory or None, f"{MPU_PATH}/{action}") for action in ("create", "complete", "abort")
        }
        try:
            created = self._client.call("POST", url["create"], {"path": name, "num_parts": num_parts})
        except MltrailException as exc:
            if exc.error_code == ErrorCode.NOT_IMPLEMENTED.value and exc.message.startswith(MULTIPART_UNSUPPORTED):
                return False
            raise
        upload_id = created.get("upload_id", "")
        credentials = sorted(created.get("credentials", ()), key=lambda c: int(c["part_number"]))
        try:
            if [int(c["part_number"]) for c in credentials] != list(range(1, num_parts + 1)):
                raise MltrailException(
                    f"The server returned {len(credentials)} part URLs for {num_parts} parts of '{target}'",
                    ErrorCode.INTERNAL_ERROR,
                )
            parts = self._put_parts(local_file, name, credentials, chunk, size)
            self._client.call("POST", url["complete"], {"path": name, "upload_id": upload_id, "parts": parts})
        except BaseException:
            self._abort(url["abort"], name, upload_id)
            raise
        return True

    def _put_parts(
        self, local_file: str, name: str, credentials: list[dict[str, Any]], chunk: int, size: int
    ) -> list[dict[str, Any]]:
        workers = min(self._workers, len(credentials))
        session = _store_session(workers)
        timeout = self._client.timeout
        etags: dict[int, str] = {}

        def put_part(credential: dict[str, Any]) -> None:
            number = int(credential["part_number"])
            offset = (number - 1) * chunk
            length = min(chunk, size - offset)

            def attempt() -> str:
                body = _FileSlice(local_file, offset, length)
                try:
                    response = session.put(
                        credential["url"], data=body, headers=credential.get("headers") or {}, timeout=timeout
                    )
                finally:
                    body.close()
                _check(response)
                return response.headers.get("ETag", "")

            etags[number] = _retrying(f"Uploading part {number} of '{name}'", attempt)

        with session:
            transfer.run_concurrently(
                credentials, put_part, desc=f"Uploading {name} ({len(credentials)} parts)", workers=workers
            )
        return [
            {"part_number": c["part_number"], "etag": etags[int(c["part_number"])], "url": c["url"]}
            for c in credentials
        ]

    def _abort(self, url: str, name: str, upload_id: str) -> None:
        """Best effort: the original failure is what the caller needs to see."""
        try:
            self._client.call("POST", url, {"path": name, "upload_id": upload_id})
        except MltrailException as exc:
            _log.warning("Could not abort the multipart upload of '%s': %s", name, exc.message)

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
        """Download a file, or a tree with its files fetched concurrently; return the local path."""
        dst_root = os.path.abspath(dst_path) if dst_path else tempfile.mkdtemp(prefix="mltrail-download-")
        path = (artifact_path or "").strip("/")
        entry = self._entry(path) if path else None
        if path and entry is None:
            raise MltrailException.not_found(f"Artifact '{artifact_path}' does not exist")
        if entry is not None and not entry.is_dir:
            local = transfer.local_destination(dst_root, path)
            self._download_file(path, local, entry.file_size)
            return local
        sizes = self._tree(path, dst_root)
        transfer.download_files(
            sorted(sizes), dst_root, lambda p, local: self._download_file(p, local, sizes[p]), workers=self._workers
        )
        return transfer.local_destination(dst_root, path) if path else dst_root

    def _tree(self, path: str, dst_root: str) -> dict[str, int | None]:
        """Sizes of the files below ``path``; creates the local directories on the way (empty ones too)."""
        sizes: dict[str, int | None] = {}
        pending = [path]
        while pending:
            directory = pending.pop()
            os.makedirs(transfer.local_destination(dst_root, directory) if directory else dst_root, exist_ok=True)
            for info in self.list_artifacts(directory or None):
                if info.is_dir:
                    pending.append(info.path)
                else:
                    sizes[info.path] = info.file_size
        return sizes

    def _download_file(self, path: str, local: str, size: int | None) -> None:
        minimum = config.get_env_int("MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE", DEFAULT_MULTIPART_DOWNLOAD_MINIMUM)
        chunk = max(MiB, config.get_env_int("MULTIPART_DOWNLOAD_CHUNK_SIZE", DEFAULT_MULTIPART_DOWNLOAD_CHUNK))
        if size is not None and size >= minimum and size > chunk and self._ranged_download(path, local, size, chunk):
            return
        response = self._client.request("GET", self._url(path), stream=True)
        with response, transfer.atomic_local_file(local) as sink:
            for block in response.iter_content(_IO_BLOCK):
                sink.write(block)

    # --- parallel ranged downloads -----------------------------------------------------------------
    def _range_source(self, path: str) -> tuple[requests.Session, str, dict[str, str], bool]:
        """``(session, url, headers, owned)``: a presigned store URL when the server offers one, else the
        server's own download URL (it answers Range requests)."""
        if self._multipart_enabled("ENABLE_PROXY_MULTIPART_DOWNLOAD", downloads=True):
            try:
                presigned = self._client.call("GET", self._url(path, PRESIGNED_PATH))
                return _store_session(self._workers), presigned["url"], dict(presigned.get("headers") or {}), True
            except MltrailException as exc:  # a server without presigned downloads
                if exc.error_code not in (ErrorCode.NOT_IMPLEMENTED.value, ErrorCode.ENDPOINT_NOT_FOUND.value):
                    raise
        return self._client.session, self._client.base_url + self._url(path), {}, False

    def _ranged_download(self, path: str, local: str, size: int, chunk: int) -> bool:
        """Fetch ``size`` bytes in parallel ranges into a temporary file renamed to ``local`` at the end.
        False (nothing written) if the source ignores Range requests."""
        session, url, headers, owned = self._range_source(path)
        spans = [(first, min(first + chunk, size) - 1) for first in range(0, size, chunk)]
        timeout = self._client.timeout

        def fetch(span: tuple[int, int], fd: int) -> None:
            first, last = span

            def attempt() -> None:
                ranged = {**headers, "Range": f"bytes={first}-{last}"}
                with session.get(url, headers=ranged, stream=True, timeout=timeout) as response:
                    if response.status_code == 200:
                        raise _RangesIgnored()
                    _check(response)
                    offset = first
                    for block in response.iter_content(_IO_BLOCK):
                        os.pwrite(fd, block, offset)
                        offset += len(block)
                if offset != last + 1:
                    raise _Retryable(f"short read: bytes {first}-{offset - 1} of {first}-{last}")

            _retrying(f"Downloading bytes {first}-{last} of '{path}'", attempt)

        try:
            with _preallocated(local, size) as fd:
                transfer.run_concurrently(
                    spans,
                    lambda span: fetch(span, fd),
                    desc=f"Downloading {posixpath.basename(path)} ({len(spans)} parts)",
                    workers=min(self._workers, len(spans)),
                )
        except _RangesIgnored:
            return False
        finally:
            if owned:
                session.close()
        return True


class _RangesIgnored(Exception):
    """The source answered a Range request with the whole file (200)."""


@contextmanager
def _preallocated(path: str, size: int) -> Iterator[int]:
    """A file descriptor of a ``size``-byte temporary file next to ``path``, renamed to ``path`` on success
    and removed on failure."""
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".mltrail-download-")
    try:
        try:
            os.ftruncate(fd, size)
            yield fd
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
