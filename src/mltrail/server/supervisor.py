"""Run N uvicorn workers forked from one preloaded parent (``mltrail server --workers N``).

uvicorn's own multi-worker mode *spawns* each worker, so every worker imports FastAPI, SQLAlchemy and the
application again: startup takes seconds and each worker holds private copies of the same modules. Here the parent
imports all of that once, binds the listening socket, freezes the garbage collector's view of its objects (so the
children's collections do not write to, and thereby copy, the pages they share) and forks the workers. Each worker
then builds the application with the app factory, which opens the worker's own database connections.

The parent serves nothing. It waits for signals: SIGINT or SIGTERM stops the workers (a second one makes them drop
open connections) and it returns once they are gone; a worker that dies otherwise is replaced. The parent owns no
threads, event loop or database connection, so a worker inherits none.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from types import FrameType

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS, LIFESPAN, STARTUP_FAILURE, WS_PROTOCOLS
from uvicorn.importer import import_from_string

# uvicorn's server logger, so that these lines share the workers' format and level.
_log = logging.getLogger("uvicorn.error")

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_WAITED_SIGNALS = _STOP_SIGNALS | {signal.SIGCHLD}


def serve(config: uvicorn.Config, workers: int) -> int:
    """Serve ``config`` (an app given as an import string) with ``workers`` forked processes until SIGINT or
    SIGTERM, and return the exit status. Stop signals stay blocked on return: the caller is expected to exit."""
    _preload(config)
    supervisor = _Supervisor(config, config.bind_socket())
    try:
        return supervisor.run(workers)
    finally:
        supervisor.sock.close()


def _preload(config: uvicorn.Config) -> None:
    """Import in the parent what each worker's ``Config.load()`` would otherwise import for itself: the app's
    module (the factory itself runs in each worker), the protocol and lifespan classes, and the event loop."""
    import_from_string(config.app)
    for name, known in ((config.http, HTTP_PROTOCOLS), (config.ws, WS_PROTOCOLS)):
        target = known.get(name, name) if isinstance(name, str) else None
        if target:
            import_from_string(target)
    import_from_string(LIFESPAN[config.lifespan])
    config.get_loop_factory()


class _Supervisor:
    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        self.config = config
        self.sock = sock
        self.workers: set[int] = set()
        self.stop_requests = 0
        self.status = 0

    def run(self, workers: int) -> int:
        # Signals wait in the queue until sigwait() takes them, so none is lost between two looks. Blocked before
        # the first fork: a worker that dies at once leaves its SIGCHLD pending for the loop.
        signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED_SIGNALS)
        _log.info("Started parent process [%d]", os.getpid())
        gc.freeze()
        for _ in range(workers):
            self.workers.add(_fork_worker(self.config, self.sock))
        while self.workers:
            received = signal.sigwait(_WAITED_SIGNALS)
            if received == signal.SIGCHLD:
                for pid, wait_status in _reaped():
                    self._ended(pid, os.waitstatus_to_exitcode(wait_status))
            else:
                self._stop()
        _log.info("Finished parent process [%d]", os.getpid())
        return self.status

    def _stop(self) -> None:
        self.stop_requests += 1
        if self.stop_requests == 1:
            _log.info("Stopping %d workers", len(self.workers))
        # uvicorn finishes open requests on SIGTERM; a SIGINT after that makes it stop at once.
        self._signal_all(signal.SIGTERM if self.stop_requests == 1 else signal.SIGINT)

    def _ended(self, pid: int, code: int) -> None:
        if pid not in self.workers:
            return
        self.workers.discard(pid)
        if self.stop_requests:
            return
        if code == STARTUP_FAILURE:
            # The application cannot start (a bad setting, an unreachable database): a replacement would fail the
            # same way, so stop as a single worker that fails to start does.
            _log.error("Worker [%d] failed to start; stopping", pid)
            self.status = STARTUP_FAILURE
            self._stop()
            return
        replacement = _fork_worker(self.config, self.sock)
        self.workers.add(replacement)
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        _log.warning("Worker [%d] ended (%s); started worker [%d] in its place", pid, how, replacement)

    def _signal_all(self, signum: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile; reaped on its SIGCHLD
                os.kill(pid, signum)


def _reaped() -> list[tuple[int, int]]:
    """``(pid, wait status)`` of every child that has ended (one SIGCHLD can stand for several)."""
    ended = []
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, wait_status))


def _fork_worker(config: uvicorn.Config, sock: socket.socket) -> int:
    pid = os.fork()
    if pid:
        return pid
    # In the worker: never return into the parent's stack (its finally blocks, atexit handlers, the CLI).
    code = 1
    try:
        code = _run_worker(config, sock)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class _Stopped(Exception):
    """A stop signal arrived while uvicorn was not handling signals (before it started or after it finished)."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _run_worker(config: uvicorn.Config, sock: socket.socket) -> int:
    """Serve until stopped. 0 after a stop signal, :data:`STARTUP_FAILURE` if the app never started."""
    for signum in _STOP_SIGNALS:
        # uvicorn installs its own handlers while it serves; afterwards it puts these back and raises the signal
        # it received again, which ends up here.
        signal.signal(signum, _raise_stopped)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _WAITED_SIGNALS)
    server = uvicorn.Server(config)
    failed = True
    try:
        server.run(sockets=[sock])
        failed = False
    except _Stopped:
        return 0
    except SystemExit:  # uvicorn logged why the app could not be loaded or started
        pass
    except BaseException:
        _log.exception("Worker [%d] failed", os.getpid())
    if not server.started:
        return STARTUP_FAILURE
    return 1 if failed else 0
