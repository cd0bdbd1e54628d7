"""Artifact endpoints: the proxied ``mlflow-artifacts`` service and the tracking-side run artifact views.

Bodies are streamed both ways: uploads are written chunk by chunk into ``repo.open_write`` (blocking writes
run in the threadpool), downloads read ``repo.open_read`` in chunks with HTTP Range support. Memory use does
not grow with file size. Every client-supplied path passes ``validate_path_is_safe`` first. Downloads are
attachments; ``X-Content-Type-Options: nosniff`` is added to every response by the security middleware.

When the artifacts destination is a :class:`~mltrail.artifacts.base.MultipartArtifactRepository` (S3), the
``mpu/*`` endpoints hand out presigned part URLs so big uploads go straight to the store, and ``presigned/*``
hands out a presigned download URL; otherwise they answer 501 with MLflow's messages, which MLflow clients
recognise and fall back to plain uploads and downloads through the server.
"""

from __future__ import annotations

import ctypes
import logging
import mimetypes
import posixpath
import re
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from mltrail import config
from mltrail.artifacts.base import ArtifactRepository, MultipartArtifactRepository, UploadedPart
from mltrail.artifacts.paths import join_artifact_path, validate_path_is_safe
from mltrail.errors import ErrorCode, MltrailException
from mltrail.server import wire
from mltrail.server.context import ServerContext, under
from mltrail.server.tracking import run_id_of

_log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: MLflow's messages: its clients compare the 501 message prefix to decide to fall back to a plain upload.
MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
MULTIPART_DOWNLOAD_UNSUPPORTED = "Multipart download is not supported for the current artifact repository"
DEFAULT_PRESIGNED_DOWNLOAD_TTL_S = 300

#: Blocks at least this big are mmap-ed by glibc (see :func:`return_big_buffers_to_the_os`).
MMAP_THRESHOLD = 4 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def return_big_buffers_to_the_os(threshold: int = MMAP_THRESHOLD) -> None:
    """Make glibc allocate blocks of at least ``threshold`` bytes with mmap, so they go back to the OS as soon
    as they are freed.

    Streamed uploads to an object store hold one part (16 MiB by default) at a time. By default glibc raises
    its mmap threshold to the size of the biggest block freed so far (up to 32 MiB), so after the first upload
    every part is carved from the heaps of the threadpool's threads, which keep it: the server's resident
    memory grew by ~80 MB after a few uploads and never came down. A fixed threshold (which also turns the
    adjustment off) keeps it at its idle level between transfers. Only on glibc; elsewhere nothing happens."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, threshold)


# --- proxied artifact service (mlflow-artifacts) ----------------------------------------------------


async def download(ctx: ServerContext, request: Request, req: dict[str, Any]) -> Response:
    path = validate_path_is_safe(req["artifact_path"])
    repo = await run_in_threadpool(lambda: ctx.destination)
    return await stream_file(repo, path, request.headers.get("range"))


async def upload(ctx: ServerContext, request: Request, req: dict[str, Any]) -> Response:
    path = validate_path_is_safe(req["artifact_path"])
    if not posixpath.basename(path):
        raise MltrailException.invalid_parameter("Artifact path must include a filename (cannot end with '/').")
    repo = await run_in_threadpool(lambda: ctx.destination)
    sink_cm = await run_in_threadpool(repo.open_write, path)
    sink = await run_in_threadpool(sink_cm.__enter__)
    try:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size >= CHUNK_SIZE:
                await run_in_threadpool(_write_all, sink, chunks)
                chunks, size = [], 0
        await run_in_threadpool(_write_all, sink, chunks)
    except ClientDisconnect as exc:  # nothing to answer; the partial upload is discarded, not an error to log
        await run_in_threadpool(sink_cm.__exit__, type(exc), exc, exc.__traceback__)
        _log.info("Upload of '%s' discarded: the client disconnected", path)
        return Response(status_code=400)
    except BaseException as exc:
        await run_in_threadpool(sink_cm.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await run_in_threadpool(sink_cm.__exit__, None, None, None)
    return Response(status_code=200)


def _write_all(sink: BinaryIO, chunks: list[bytes]) -> None:
    """One thread hop per ~1 MiB of body, without joining the chunks into one more copy."""
    for chunk in chunks:
        sink.write(chunk)


def delete(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    path = validate_path_is_safe(req["artifact_path"]).strip("/")
    if not path:
        raise MltrailException.invalid_parameter("Refusing to delete the root of the artifacts destination.")
    ctx.destination.delete_artifacts(path)
    return {}


def list_destination(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    """Children of ``path`` in the destination; like MLflow, entries carry their basename only."""
    path = req.get("path") or None
    if path:
        validate_path_is_safe(path)
    files = ctx.destination.list_artifacts(path)
    return wire.paged("files", [wire.file_info_json(f, posixpath.basename(f.path)) for f in files], None)


def multipart_capable(ctx: ServerContext) -> MultipartArtifactRepository | None:
    """The destination if it can do presigned multipart uploads and downloads, else None (also when artifacts
    are not served or the destination cannot be opened: server-info must answer regardless)."""
    if not ctx.config.serve_artifacts:
        return None
    try:
        repo = ctx.destination
    except MltrailException:
        return None
    return repo if isinstance(repo, MultipartArtifactRepository) else None


def _multipart_target(ctx: ServerContext, req: dict[str, Any]) -> tuple[MultipartArtifactRepository, str]:
    """The repository and ``<url path>/<basename of 'path'>``. MLflow clients send the local path of the file
    in ``path`` (``/home/me/model.bin``, ``C:\\data\\model.bin``); only its last segment names the object."""
    directory = validate_path_is_safe(req["artifact_path"])
    name = re.split(r"[\\/]", req["path"])[-1]
    if name in ("", ".", ".."):
        raise MltrailException.invalid_parameter("Invalid path")
    validate_path_is_safe(name)
    repo = ctx.destination
    if not isinstance(repo, MultipartArtifactRepository):
        raise MltrailException(MULTIPART_UNSUPPORTED, ErrorCode.NOT_IMPLEMENTED)
    return repo, join_artifact_path(directory, name)


def create_multipart_upload(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    repo, target = _multipart_target(ctx, req)
    upload_id, credentials = repo.create_multipart_upload(target, int(req.get("num_parts") or 1))
    return {
        "upload_id": upload_id,
        "credentials": [{"url": c.url, "part_number": c.part_number, "headers": c.headers} for c in credentials],
    }


def complete_multipart_upload(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    repo, target = _multipart_target(ctx, req)
    parts = [UploadedPart(int(p["part_number"]), p["etag"], p.get("url")) for p in req["parts"]]
    repo.complete_multipart_upload(target, req["upload_id"], parts)
    return {}


def abort_multipart_upload(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    repo, target = _multipart_target(ctx, req)
    repo.abort_multipart_upload(target, req["upload_id"])
    return {}


def presigned_download(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    """``{url, headers, file_size}`` of a presigned GET; the TTL is ``MLTRAIL_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS``
    (MLflow's ``MLFLOW_…`` name works too), default 300 s."""
    path = validate_path_is_safe(req["artifact_path"])
    repo = ctx.destination
    if not isinstance(repo, MultipartArtifactRepository):
        raise MltrailException(MULTIPART_DOWNLOAD_UNSUPPORTED, ErrorCode.NOT_IMPLEMENTED)
    ttl = config.get_env_int("PRESIGNED_DOWNLOAD_URL_TTL_SECONDS", DEFAULT_PRESIGNED_DOWNLOAD_TTL_S)
    if not 1 <= ttl <= 604800:
        raise MltrailException.invalid_parameter(f"The presigned URL TTL must be 1..604800 seconds, got {ttl}")
    presigned = repo.presigned_download(path, expiration=ttl)
    return {"url": presigned.url, "headers": presigned.headers, "file_size": presigned.file_size}


# --- tracking-side run artifacts --------------------------------------------------------------------


def list_run_artifacts(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    run = ctx.store.get_run(run_id_of(req))
    path = req.get("path") or None
    if path:
        validate_path_is_safe(path)
    repo, base = ctx.run_artifacts(run.info.artifact_uri)
    prefix = base.strip("/") + "/" if base.strip("/") else ""
    files = [
        wire.file_info_json(f, f.path[len(prefix) :] if f.path.startswith(prefix) else f.path)
        for f in repo.list_artifacts(under(base, path) or None)
    ]
    out: dict[str, Any] = {"root_uri": run.info.artifact_uri}
    out.update(wire.paged("files", files, None))
    return out


async def get_run_artifact(ctx: ServerContext, request: Request, req: dict[str, Any]) -> Response:
    path = req.get("path")
    if not path:
        raise wire.missing("path")
    validate_path_is_safe(path)
    run = await run_in_threadpool(ctx.store.get_run, run_id_of(req))
    repo, base = await run_in_threadpool(ctx.run_artifacts, run.info.artifact_uri)
    return await stream_file(repo, under(base, path), request.headers.get("range"))


# --- streaming --------------------------------------------------------------------------------------


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and, for non-ASCII names, an RFC 5987 ``filename*``."""
    ascii_name = filename.encode("ascii", "ignore").decode().replace('"', "").replace("\\", "") or "download"
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{urllib.parse.quote(filename)}"
    return value


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` of a single satisfiable ``bytes=`` range, None to send the whole file. Raises
    for an unsatisfiable range (the caller answers 416)."""
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # malformed or multi-range: RFC 9110 lets us ignore it
    first_s, last_s = match.groups()
    if first_s == "":
        first, last = max(size - int(last_s), 0), size - 1
    else:
        first = int(first_s)
        last = min(int(last_s), size - 1) if last_s else size - 1
    if first >= size or first > last:
        raise _Unsatisfiable()
    return first, last


class _Unsatisfiable(Exception):
    pass


def _read_span(stream: BinaryIO, first: int, length: int) -> Iterator[bytes]:
    with stream:
        if first:
            if stream.seekable():
                stream.seek(first)
            else:
                skip = first
                while skip and (chunk := stream.read(min(CHUNK_SIZE, skip))):
                    skip -= len(chunk)
        remaining = length
        while remaining > 0 and (chunk := stream.read(min(CHUNK_SIZE, remaining))):
            remaining -= len(chunk)
            yield chunk


async def stream_file(repo: ArtifactRepository, path: str, range_header: str | None) -> Response:
    size = await run_in_threadpool(repo.file_size, path)
    if size is None:
        raise MltrailException.invalid_parameter(f"Artifact path refers to a directory, not a file: '{path}'")
    filename = posixpath.basename(path)
    headers = {
        "Content-Disposition": content_disposition(filename),  # never rendered inline by a browser
        "Accept-Ranges": "bytes",
    }
    try:
        span = _byte_range(range_header, size)
    except _Unsatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(status_code=416, headers=headers)
    first, last = span if span else (0, size - 1)
    length = max(last - first + 1, 0)
    headers["Content-Length"] = str(length)
    if span:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    stream = await run_in_threadpool(repo.open_read, path)
    media_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return StreamingResponse(
        _read_span(stream, first, length), status_code=206 if span else 200, headers=headers, media_type=media_type
    )
