"""Start ``mltrail server`` or ``mlflow server`` on a free local port, time it until ``/health`` answers,
measure the process tree's memory, and stop the whole tree (its own process group) afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.environment import Impl, subprocess_env
from bench.runner import WorkloadError

HEALTH_TIMEOUT_S = 120
STOP_TIMEOUT_S = 15


@dataclass(frozen=True)
class RunningServer:
    url: str
    pid: int
    start_seconds: float  # process start until /health answered 200


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


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 1024 / 1024


def _errors_in_log(log_path: Path, lines: int = 25) -> str:
    """The end of the server's log, skipping its access-log lines, which say nothing about a failure."""
    text = [line for line in log_path.read_text(errors="replace").splitlines() if '" 200' not in line]
    return "\n".join(text[-lines:])


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def serve(impl: Impl, workdir: Path, workers: int) -> Iterator[RunningServer]:
    """Run ``<impl> server`` on a fresh SQLite database in ``workdir`` with proxied artifacts."""
    port = _free_port()
    command = [
        str(impl.executable(impl.name)),
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'server.db'}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    with log_path.open("w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=workdir, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while not _healthy(url):
                if process.poll() is not None or time.perf_counter() - started > HEALTH_TIMEOUT_S:
                    tail = "\n".join(log_path.read_text().splitlines()[-15:])
                    raise WorkloadError(f"`{' '.join(command)}` did not answer /health:\n{tail}")
                time.sleep(0.02)
            try:
                yield RunningServer(url, process.pid, time.perf_counter() - started)
            except WorkloadError as exc:
                raise WorkloadError(f"{exc}\n--- server log, last lines ---\n{_errors_in_log(log_path)}") from exc
        finally:
            _stop(process)
