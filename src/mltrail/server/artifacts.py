"""Artifact endpoints: the proxied ``mlflow-artifacts`` service and the tracking-side run artifact views.

Bodies are streamed both ways: uploads are written chunk by chunk into ``repo.open_write`` (blocking writes
run in the threadpool), downloads read ``repo.open_read`` in chunks with HTTP Range support. Memory use does
not grow with file size. Every client-supplied path passes ``validate_path_is_safe`` first. Downloads are
attachments; ``X-Content-Type-Options: nosniff`` is added to every response by the security middleware.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mltrail.artifacts.base import ArtifactRepository
from mltrail.artifacts.paths import validate_path_is_safe
from mltrail.errors import ErrorCode, MltrailException
from mltrail.server import wire
from mltrail.server.context import ServerContext, under
from mltrail.server.tracking import run_id_of

CHUNK_SIZE = 1024 * 1024
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")

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
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= CHUNK_SIZE:
                await run_in_threadpool(sink.write, bytes(pending))
                pending.clear()
        if pending:
            await run_in_threadpool(sink.write, bytes(pending))
    except BaseException as exc:
        await run_in_threadpool(sink_cm.__exit__, type(exc), exc, exc.__traceback__)
        raise
    await run_in_threadpool(sink_cm.__exit__, None, None, None)
    return Response(status_code=200)


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


def multipart_unsupported(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    validate_path_is_safe(req["artifact_path"])
    raise MltrailException(
        "Multipart upload is not supported for the current artifact repository", ErrorCode.NOT_IMPLEMENTED
    )


def presigned_unsupported(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    validate_path_is_safe(req["artifact_path"])
    raise MltrailException(
        "Presigned download URLs are not supported for the current artifact repository", ErrorCode.NOT_IMPLEMENTED
    )


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
