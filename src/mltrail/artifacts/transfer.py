"""Shared machinery for moving many files or big files between this machine and an artifact store.

- :func:`run_concurrently`: a bounded thread pool with a progress bar (tqdm, only when stderr is a terminal);
  the first failure cancels the work not yet started and is raised.
- :func:`upload_directory` / :func:`download_files`: the directory walk and local-path handling every
  repository needs, with the per-file transfer left to the repository.
- :func:`streamed_parts`: a write-only stream that cuts what it receives into parts and hands them to a
  :class:`PartSink` (S3 multipart upload, Azure blocks...). Memory stays bounded by one part; the object is
  published only when the block ends without an exception and abandoned otherwise.
- :class:`RangedReader`: a seekable read-only stream over a remote object, so that HTTP Range requests on the
  proxy become ranged requests to the store instead of reading and discarding the skipped bytes.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, Protocol, TypeVar

from mltrail import config
from mltrail.artifacts.paths import join_artifact_path, validate_path_is_safe
from mltrail.errors import MltrailException

T = TypeVar("T")

DEFAULT_WORKERS = 16
#: S3 allows at most 10,000 parts; a streamed upload doubles its part size every this many parts.
_PARTS_PER_SIZE_STEP = 1000


def max_workers() -> int:
    """Threads for concurrent transfers: ``MLTRAIL_ARTIFACT_TRANSFER_WORKERS`` (default 16)."""
    return max(1, config.get_env_int("ARTIFACT_TRANSFER_WORKERS", DEFAULT_WORKERS))


# --- progress ---------------------------------------------------------------------------------------


def _progress_enabled() -> bool:
    """Bars only for a person watching: stderr is a terminal and ``MLTRAIL_ENABLE_ARTIFACTS_PROGRESS_BAR``
    (MLflow's variable name) is not false."""
    try:
        return sys.stderr.isatty() and config.get_env_bool("ENABLE_ARTIFACTS_PROGRESS_BAR", True)
    except ValueError:
        return False


@contextmanager
def progress_bar(total: int, desc: str, unit: str = "file") -> Iterator[Callable[[int], object]]:
    """Yield ``advance(n)``; draws a tqdm bar on stderr when it is a terminal, else does nothing."""
    if total <= 0 or not _progress_enabled():
        yield lambda n: None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield lambda n: None
        return
    with tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", file=sys.stderr, leave=False) as bar:
        yield bar.update


# --- concurrency ------------------------------------------------------------------------------------


def run_concurrently(
    items: Sequence[T],
    work: Callable[[T], object],
    *,
    desc: str,
    workers: int | None = None,
) -> None:
    """Call ``work(item)`` for every item on at most ``workers`` threads (default :func:`max_workers`).

    The first exception cancels the items not yet started, waits for the running ones, and is raised."""
    workers = min(workers or max_workers(), len(items))
    with progress_bar(len(items), desc) as advance:
        if workers <= 1:
            for item in items:
                work(item)
                advance(1)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mltrail-transfer") as pool:
            futures = [pool.submit(work, item) for item in items]
            try:
                for future in as_completed(futures):
                    future.result()
                    advance(1)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


# --- directories ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file to upload: its local path and the artifact directory it goes to (``None`` for the root)."""

    path: str
    artifact_dir: str | None


def files_under(local_dir: str, artifact_path: str | None = None) -> list[LocalFile]:
    """Every file below ``local_dir`` (recursively, sorted), each with its destination directory."""
    if not os.path.isdir(local_dir):
        raise MltrailException.invalid_parameter(f"'{local_dir}' is not a directory")
    if artifact_path:
        validate_path_is_safe(artifact_path)
    files = []
    for dirpath, dirnames, filenames in os.walk(local_dir):
        dirnames.sort()
        rel = os.path.relpath(dirpath, local_dir)
        artifact_dir = join_artifact_path(artifact_path, "" if rel == "." else rel.replace(os.sep, "/")) or None
        files.extend(LocalFile(os.path.join(dirpath, name), artifact_dir) for name in sorted(filenames))
    return files


def upload_directory(
    local_dir: str,
    artifact_path: str | None,
    upload_file: Callable[[str, str | None], object],
    *,
    workers: int | None = None,
) -> None:
    """Upload a directory tree concurrently: ``upload_file(local_file, artifact_dir)`` runs for each file, as
    ``repo.log_artifact`` would be called (a repository passes its ``log_artifact`` or a quieter variant)."""
    files = files_under(local_dir, artifact_path)
    name = os.path.basename(os.path.normpath(local_dir)) or local_dir
    run_concurrently(files, lambda f: upload_file(f.path, f.artifact_dir), desc=f"Uploading {name}", workers=workers)


def local_destination(dst_root: str, artifact_path: str) -> str:
    """Local path of ``artifact_path`` below ``dst_root``. Paths come from a remote listing, so they are
    checked like client input: a key such as ``a/../../etc/x`` in a bucket must not escape ``dst_root``."""
    validate_path_is_safe(artifact_path)
    parts = [p for p in artifact_path.split("/") if p not in ("", ".")]
    return os.path.join(dst_root, *parts)


@contextmanager
def atomic_local_file(path: str) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file in the same directory, renamed into place on success."""
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".mltrail-download-")
    try:
        with os.fdopen(fd, "wb") as sink:
            yield sink
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def download_files(
    artifact_paths: Sequence[str],
    dst_root: str,
    download_file: Callable[[str, str], object],
    *,
    workers: int | None = None,
) -> None:
    """Download files concurrently: ``download_file(artifact_path, local_path)`` for each, with ``local_path``
    the mirror of the (root-relative) artifact path below ``dst_root``."""
    targets = [(path, local_destination(dst_root, path)) for path in artifact_paths]
    run_concurrently(targets, lambda t: download_file(*t), desc="Downloading artifacts", workers=workers)


# --- streamed multipart writes ----------------------------------------------------------------------


class PartSink(Protocol):
    """The store side of :func:`streamed_parts`. ``start`` is called once before the first part only when the
    data needs more than one part; small data goes in one ``put_whole`` call."""

    def put_whole(self, data: bytes) -> None: ...

    def start(self) -> None: ...

    def upload_part(self, part_number: int, data: bytes) -> None: ...

    def complete(self) -> None: ...

    def abort(self) -> None: ...


class _PartWriter(io.RawIOBase):
    def __init__(self, sink: PartSink, part_size: int) -> None:
        super().__init__()
        self._sink = sink
        self._part_size = part_size
        self._buffer = bytearray()
        self._parts = 0
        self._started = False

    def writable(self) -> bool:
        return True

    def _next_part_size(self) -> int:
        return self._part_size * 2 ** (self._parts // _PARTS_PER_SIZE_STEP)

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        while len(self._buffer) > self._next_part_size():  # keep a remainder so the last part is never empty
            self._send(self._next_part_size())
        return len(view)

    def _send(self, length: int) -> None:
        if not self._started:
            self._sink.start()
            self._started = True
        self._parts += 1
        with memoryview(self._buffer) as view:
            chunk = bytes(view[:length])
        del self._buffer[:length]
        self._sink.upload_part(self._parts, chunk)

    def finish(self) -> None:
        if not self._started:
            self._sink.put_whole(bytes(self._buffer))
        else:
            self._send(len(self._buffer))
            self._sink.complete()
        self._buffer.clear()

    def abandon(self) -> None:
        self._buffer.clear()
        if self._started:
            self._sink.abort()


@contextmanager
def streamed_parts(sink: PartSink, part_size: int) -> Iterator[BinaryIO]:
    """A binary sink that uploads through ``sink`` in parts of ``part_size`` bytes (doubling every 1,000
    parts so a stream of unknown length fits in 10,000 parts). Nothing is published if the block raises."""
    writer = _PartWriter(sink, part_size)
    try:
        yield writer  # type: ignore[misc]
        writer.finish()
    except BaseException:
        writer.abandon()
        raise


# --- ranged reads -----------------------------------------------------------------------------------


class RangedReader(io.RawIOBase):
    """A seekable binary stream over a remote object of known size.

    ``open_at(offset)`` returns a readable stream of the object from ``offset`` to its end (one ranged
    request). Reads continue that response; a seek only drops it, so the next read asks from the new
    offset. ``first`` is an already open stream from offset 0 (saves a request for whole-file reads)."""

    def __init__(self, size: int, open_at: Callable[[int], IO[bytes]], first: IO[bytes] | None = None) -> None:
        super().__init__()
        self.size = size
        self._open_at = open_at
        self._body = first
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        target = base + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target != self._pos:
            self._drop_body()
            self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.size - self._pos)
        if wanted <= 0:
            return 0
        if self._body is None:
            self._body = self._open_at(self._pos)
        data = self._body.read(wanted)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()
