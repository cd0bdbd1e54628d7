"""The queue that an SQLite database's writers wait in, within one process and across processes.

SQLite lets one writer in at a time. A writer that finds the write lock taken does not wait for it to be
released: SQLite's busy handler sleeps and retries (1, 2, 5, 10 ... up to 100 ms at a time). Under load the unlucky
writer keeps sleeping through other writers' turns, so a server's requests sat idle for milliseconds, and with
several worker processes the slowest writes took seconds while the median took 0.1 s.

So every writing transaction first takes a :class:`WriterLock`: a thread lock for the writers of this process, then
an exclusive ``flock`` on a file beside the database (``<database>-writer.lock``) for the other processes. A writer
blocked on either is woken the moment the previous one commits. Other programs writing the database (without this
lock) are still kept out by SQLite's own lock and busy timeout.

A process that dies releases its ``flock`` (the kernel drops it with the file), so a crash never leaves the
database locked. Where ``flock`` is missing (Windows) or the lock file cannot be created (a read-only directory),
only the thread lock is used.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE_SUFFIX = "-writer.lock"


class WriterLock:
    """Re-entrant within a thread; the file lock is taken by the outermost acquisition only.

    The lock file is opened for each acquisition and closed on release: a few microseconds next to a write
    transaction, and no long-lived descriptor for a forked child to share (with it, the ``flock``) or to leak
    when the engine goes away."""

    def __init__(self, database_path: str | None) -> None:
        self._threads = threading.RLock()
        self._path = database_path + LOCK_FILE_SUFFIX if database_path and fcntl is not None else None
        self._fd: int | None = None
        self._depth = 0

    def __enter__(self) -> WriterLock:
        self._threads.acquire()
        if self._depth == 0 and self._path is not None:
            try:
                self._fd = self._lock_file(self._path)
            except BaseException:
                self._threads.release()
                raise
        self._depth += 1
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _error: BaseException | None, _trace: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            # Unlocked explicitly: closing alone would keep the lock while a child forked meanwhile holds a copy
            # of the descriptor.
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._threads.release()

    def _lock_file(self, path: str) -> int | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            # E.g. a read-only directory (where SQLite could not write its WAL either): the thread lock only.
            self._path = None
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        except BaseException:
            os.close(fd)
            raise
        return fd
