"""Real tracking servers for tests: uvicorn in a background thread (fast, in-process) or the ``mltrail server``
command in a subprocess (for CLI, worker and socket behaviour)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
import uvicorn

from mltrail.server.nodelay import HttpProtocol


class ThreadServer:
    """Serve an ASGI app on a free loopback port until :meth:`stop`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", http=HttpProtocol, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> ThreadServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@contextlib.contextmanager
def thread_server(app: Any) -> Iterator[ThreadServer]:
    server = ThreadServer(app).start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CliServer(str):
    """The URL of a running ``mltrail server`` subprocess, with its process id."""

    pid: int


@contextlib.contextmanager
def cli_server(
    *args: str, cwd: str, env: dict[str, str] | None = None, health_path: str = "/health", timeout: float = 30
) -> Iterator[CliServer]:
    """Run ``mltrail server <args> --port <free>`` and yield its URL once ``health_path`` answers."""
    port = free_port()
    command = [sys.executable, "-c", "from mltrail.cli import main; main()", "server", "--port", str(port), *args]
    log_path = os.path.join(cwd, f"server-{port}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=log)
    url = CliServer(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                with open(log_path) as f:
                    raise RuntimeError(f"server exited with {proc.returncode}:\n{f.read()}")
            try:
                if requests.get(url + health_path, timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become healthy")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
