"""Real storage servers for the artifact tests, each a child process on a free loopback port:

- S3: moto's standalone server (``python -m moto.server``, from ``moto[server]``);
- GCS: ``gcp-storage-emulator`` (PyPI), in memory;
- Azure Blob: Azurite (npm), installed on first use into ``$MLTRAIL_TEST_TOOLS_DIR`` (default
  ``~/.cache/mltrail-test-tools``) with ``npm install``, in memory, telemetry off.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import requests

AZURITE_VERSION = "3.35.0"
#: Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server_process(name: str, argv: list[str], url: str, timeout: float = 60.0) -> Iterator[str]:
    """Start ``argv``, wait until ``url`` answers any HTTP status, yield ``url``; stop the process afterwards."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_until_answering(name, process, log, url, timeout)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_answering(
    name: str, process: subprocess.Popen[bytes], log: IO[bytes], url: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{name} exited with {process.returncode}: {log.read().decode(errors='replace')}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer on {url} within {timeout:.0f} s") from None
            time.sleep(0.1)


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with server_process("moto", argv, f"http://127.0.0.1:{port}") as url:
        yield url


@contextmanager
def gcs_emulator() -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port)]
    with server_process("gcp-storage-emulator", [*argv, "--in-memory"], f"http://127.0.0.1:{port}") as url:
        yield url


def azurite_executable() -> str:
    """Path of ``azurite-blob``, installing the pinned Azurite with npm into the tools directory if needed."""
    tools = Path(os.environ.get("MLTRAIL_TEST_TOOLS_DIR") or Path.home() / ".cache" / "mltrail-test-tools")
    prefix = tools / f"azurite-{AZURITE_VERSION}"
    executable = prefix / "node_modules" / ".bin" / "azurite-blob"
    if not executable.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("The Azure Blob tests need Node.js and npm to install Azurite")
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", f"azurite@{AZURITE_VERSION}"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return str(executable)


@contextmanager
def azurite() -> Iterator[str]:
    """Yield an ``AZURE_STORAGE_CONNECTION_STRING`` for a fresh in-memory Azurite blob service."""
    port = free_port()
    argv = [
        azurite_executable(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
    ]
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    with server_process("azurite", argv, endpoint):
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={endpoint};"
        )
