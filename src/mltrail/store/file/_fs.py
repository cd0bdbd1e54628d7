"""Atomic file primitives of the directory store.

Every write is one of three kinds, so a reader never sees half a file and concurrent writers never lose data:
- whole-file replace (meta.yaml, tags): write a temporary file next to the target, then ``os.replace``;
- exclusive create (params): the complete file is linked into place with ``os.link``, which fails if the
  target exists, so of two writers with different values exactly one wins;
- append (metrics): one ``os.write`` of whole lines on an ``O_APPEND`` descriptor.

Temporary names contain ``~``, a character no metric/param/tag key may contain, so readers can tell them apart
from data files (:func:`is_temporary`).
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress

try:  # POSIX only; on other systems locking degrades to nothing.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

TEMP_MARK = ".~tmp"


def is_temporary(name: str) -> bool:
    return TEMP_MARK in name


def temporary_sibling(path: str) -> str:
    """A unique name in the directory of ``path`` that no reader mistakes for data (and within NAME_MAX)."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f"{name[:64]}{TEMP_MARK}{secrets.token_hex(6)}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_new(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def make_dirs(base: str, relative_dir: str) -> None:
    """Create ``relative_dir`` (posix) below ``base``, which must already exist.

    Unlike ``os.makedirs`` on the full path, this never re-creates ``base`` itself, so a writer racing with an
    experiment being moved to ``.trash`` fails instead of resurrecting a half-empty experiment folder.
    """
    path = base
    for part in relative_dir.split("/"):
        if not part:
            continue
        path = os.path.join(path, part)
        with suppress(FileExistsError):
            os.mkdir(path)


def replace_file(path: str, data: bytes) -> None:
    """Atomically make ``path`` contain exactly ``data``."""
    temp = temporary_sibling(path)
    _write_new(temp, data)
    try:
        os.replace(temp, path)
    except BaseException:
        _remove_quietly(temp)
        raise


def create_exclusive(path: str, data: bytes) -> bool:
    """Create ``path`` with ``data`` unless it exists. Returns False (and writes nothing) if it existed."""
    temp = temporary_sibling(path)
    _write_new(temp, data)
    try:
        os.link(temp, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:  # file systems without hard links: exclusive create, then write
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        try:
            _write_new(path, data)
        except FileExistsError:
            return False
        return True
    finally:
        _remove_quietly(temp)


def append(path: str, data: bytes) -> None:
    """Append whole lines with a single write on an O_APPEND descriptor (no interleaving between writers)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


_READ_CHUNK = 1 << 16


def read_bytes(path: str) -> bytes | None:
    """The file's content, or None if absent. Plain os.read calls: several times faster than open() for the
    many small files a search reads."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = os.read(fd, _READ_CHUNK)
        if len(data) < _READ_CHUNK:  # a short read of a regular file is its end
            return data
        chunks = [data]
        while chunk := os.read(fd, _READ_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)
    except IsADirectoryError:
        return None
    finally:
        os.close(fd)


def read_text(path: str) -> str | None:
    """File content decoded as UTF-8, byte for byte (no newline translation); None if absent."""
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8")


def list_keys(directory: str) -> list[str]:
    """Relative posix paths of all data files below ``directory`` (keys with ``/`` live in sub-folders)."""
    keys: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return keys
    for entry in entries:
        if is_temporary(entry.name):
            continue
        if entry.is_dir():
            keys.extend(f"{entry.name}/{sub}" for sub in list_keys(entry.path))
        else:
            keys.append(entry.name)
    return keys


def list_subdirs(directory: str) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(directory) if entry.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def remove_file(path: str) -> bool:
    """Remove ``path``; False if it did not exist. Empty key sub-folders are left (MLflow does the same)."""
    try:
        os.unlink(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False


@contextmanager
def locked(directory: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``directory`` (flock on the directory itself, no lock file)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
