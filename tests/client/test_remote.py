"""The fluent API against a real ``mltrail server`` process (REST store, proxied ``mlflow-artifacts:`` URIs)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import mltrail
from mltrail.entities import RunStatus


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server_uri(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-c", "from mltrail.cli import main; main()", "server", "-p", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}"]
    command += ["--artifacts-destination", str(tmp_path / "artifacts")]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {process.stderr.read().decode()}") from None
                time.sleep(0.1)
        yield uri
    finally:
        process.terminate()
        process.wait(10)


def test_fluent_api_through_a_tracking_server(server_uri: str, tmp_path: Path) -> None:
    mltrail.set_tracking_uri(server_uri)
    experiment = mltrail.set_experiment("remote")
    with mltrail.start_run() as run:
        mltrail.log_params({"lr": 0.1, "layers": 2})
        for step in range(3000):
            mltrail.log_metric("loss", 1.0 / (step + 1), step=step)
        mltrail.log_text("hello", "notes/a.txt")
        mltrail.log_dict({"k": [1, 2]}, "config.json")
    assert run.info.experiment_id == experiment.experiment_id
    client = mltrail.MlflowClient()
    stored = client.get_run(run.info.run_id)
    assert stored.info.status == RunStatus.FINISHED
    assert stored.info.artifact_uri.startswith("mlflow-artifacts:")
    assert stored.data.params == {"lr": "0.1", "layers": "2"}
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(3000))
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["config.json", "notes"]
    downloaded = client.download_artifacts(run.info.run_id, "notes/a.txt", str(tmp_path / "dl"))
    assert Path(downloaded).read_text() == "hello"
    # a client bound to the server works even when the process-wide tracking URI points elsewhere
    mltrail.set_tracking_uri(str(tmp_path / "local-mlruns"))
    remote = mltrail.MlflowClient(server_uri)
    assert [f.path for f in remote.list_artifacts(run.info.run_id)] == ["config.json", "notes"]
