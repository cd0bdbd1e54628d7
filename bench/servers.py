"""Start ``mltrail server`` or ``mlflow server`` on a local port, time it until ``/health`` answers, measure the
process tree's memory, and stop the whole tree (its own process group) afterwards. A :class:`Server` can also be
killed like a crash and started again on the same port and database (the ``logging`` suite's restart test)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from bench.environment import Impl, subprocess_env
from bench.runner import WorkloadError

HEALTH_TIMEOUT_S = 120
STOP_TIMEOUT_S = 15


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tree_memory_mb(pid: int) -> dict[str, float]:
    """Memory of a process and all its descendants, in MiB: ``rss`` (resident pages of each process, summed:
    pages shared between processes count once per process) and ``pss`` (each shared page split between the
    processes sharing it: what the tree takes from the machine)."""
    import psutil

    root = psutil.Process(pid)
    rss = pss = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        rss += info.rss
        pss += info.pss
    return {"rss": rss / 1024 / 1024, "pss": pss / 1024 / 1024}


class Server:
    """``<impl> server`` on a SQLite database in ``workdir`` with proxied artifacts, on one fixed port."""

    def __init__(self, impl: Impl, workdir: Path, workers: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.start_seconds = 0.0  # process start until /health answered 200, for the last start
        self._workdir = workdir
        self._command = [
            str(impl.executable(impl.name)),
            "server",
            "--backend-store-uri",
            f"sqlite:///{workdir / 'server.db'}",
            "--artifacts-destination",
            str(workdir / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def start(self) -> None:
        """Launch the server (again: same port, same database; the log is appended) and wait for /health."""
        with self.log_path.open("a") as log:
            started = time.perf_counter()
            self._process = subprocess.Popen(
                self._command,
                cwd=self._workdir,
                env=subprocess_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while not _healthy(self.url):
            if self._process.poll() is not None or time.perf_counter() - started > HEALTH_TIMEOUT_S:
                self.stop()
                tail = "\n".join(self.log_path.read_text().splitlines()[-15:])
                raise WorkloadError(f"`{' '.join(self._command)}` did not answer /health:\n{tail}")
            time.sleep(0.02)
        self.start_seconds = time.perf_counter() - started

    def kill(self) -> None:
        """SIGKILL the whole process group at once, like a crash: no graceful shutdown, requests cut off."""
        self._signal(signal.SIGKILL, wait=None)

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it lingers."""
        try:
            self._signal(signal.SIGTERM, wait=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def _signal(self, signum: int, wait: float | None) -> None:
        if self._process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)
        self._process.wait(timeout=wait)
        self._process = None

    def errors_in_log(self, lines: int = 25) -> str:
        """The end of the server's log, skipping its access-log lines, which say nothing about a failure."""
        text = [line for line in self.log_path.read_text(errors="replace").splitlines() if '" 200' not in line]
        return "\n".join(text[-lines:])


@contextmanager
def serve(impl: Impl, workdir: Path, workers: int) -> Iterator[Server]:
    """A started :class:`Server`, stopped on exit; a failure inside quotes the end of the server's log."""
    server = Server(impl, workdir, workers)
    server.start()
    try:
        yield server
    except WorkloadError as exc:
        raise WorkloadError(f"{exc}\n--- server log, last lines ---\n{server.errors_in_log()}") from exc
    finally:
        server.stop()
