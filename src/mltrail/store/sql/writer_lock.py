"""The queue that an SQLite database's writers wait in, within one process and across processes.

SQLite lets one writer in at a time. A writer that finds the write lock taken does not wait for it to be
released: SQLite's busy handler sleeps and retries, up to 100 ms at a time. Under load the unlucky writer keeps
sleeping through other writers' turns, so a server's requests sat idle for milliseconds, and with several worker
processes the slowest writes took seconds while the median took 0.1 s.

So every writing transaction first takes a :class:`WriterLock`: a thread lock for the writers of this process
(woken the moment the previous one commits), then an exclusive ``flock`` on a file beside the database
(``<database>-writer.lock``) for the other processes, retried every few hundred microseconds. Only one thread per
process polls the file, and the timeout is SQLite's busy timeout: a writer never waits forever on a process that
stopped while holding it. Other programs writing the database (without this lock) are still kept out by SQLite's
own lock and busy timeout.

A process that dies releases its ``flock`` (the kernel drops it with the file), so a crash never leaves the
database locked. Where ``flock`` is missing (Windows) or the lock file cannot be created (a read-only or missing
directory, where SQLite could not write its WAL either), only the thread lock is used.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from types import TracebackType

from mltrail.errors import ErrorCode, MltrailException

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE_SUFFIX = "-writer.lock"
#: Seconds between two attempts at a lock file held by another process: first short, then up to the cap.
_FIRST_RETRY_S, _MAX_RETRY_S = 0.0002, 0.002
#: Errors opening the lock file that mean it cannot exist there, rather than a passing failure.
_NO_LOCK_FILE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT})

_log = logging.getLogger(__name__)


class WriterLock:
    """Re-entrant within a thread; the file lock is taken by the outermost acquisition only.

    The lock file is opened for each acquisition and closed on release: a few microseconds next to a write
    transaction, and no long-lived descriptor to leak when the engine goes away."""

    def __init__(self, database_path: str | None, timeout_s: float) -> None:
        self._database_path = database_path
        self._path = database_path + LOCK_FILE_SUFFIX if database_path and fcntl is not None else None
        self._timeout_s = timeout_s
        self._threads = threading.RLock()
        self._fd: int | None = None
        self._depth = 0

    def for_forked_child(self) -> WriterLock:
        """The lock a forked child uses instead of this one (which another thread of the parent may have held at
        the fork). The child's copy of a held lock file is closed: the parent still holds the ``flock`` through
        its own descriptor, and releases it, or loses it when it dies."""
        if self._fd is not None:
            os.close(self._fd)
        return WriterLock(self._database_path, self._timeout_s)

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
        try:
            if self._depth == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                # Unlocked explicitly: closing alone would keep the lock while a child forked meanwhile holds a
                # copy of the descriptor.
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
        finally:
            self._threads.release()

    def _lock_file(self, path: str) -> int | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            if error.errno not in _NO_LOCK_FILE:
                raise
            _log.warning("No writer lock file %s (%s); writers of other processes wait on SQLite", path, error)
            self._path = None
            return None
        try:
            self._wait_for(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _wait_for(self, fd: int, path: str) -> None:
        deadline = time.monotonic() + self._timeout_s
        pause = _FIRST_RETRY_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MltrailException(
                        f"The SQLite database is locked: another process held {path} for {self._timeout_s:g} s",
                        ErrorCode.TEMPORARILY_UNAVAILABLE,
                    ) from None
                time.sleep(pause)
                pause = min(_MAX_RETRY_S, pause * 2)
