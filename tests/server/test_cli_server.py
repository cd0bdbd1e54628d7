"""``mltrail server`` as users run it: a subprocess, with workers, options and environment variables."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from mltrail.cli import cli

from .live import cli_server


def test_defaults_start_fast_with_local_directories(tmp_path: Path) -> None:
    started = time.monotonic()
    with cli_server(cwd=str(tmp_path)) as url:
        startup = time.monotonic() - started
        created = requests.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "cli"})
        assert created.status_code == 200
        experiment_id = created.json()["experiment_id"]
        run = requests.post(f"{url}/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id}).json()["run"]
        path = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
        assert requests.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/{path}/a.txt", data=b"a").status_code == 200
        assert requests.get(f"{url}/version").text == "3.17.2"
    assert startup < 10, startup  # ~1-2 s in practice; generous for loaded CI machines
    assert (tmp_path / "mlruns" / experiment_id / "meta.yaml").exists()
    assert (tmp_path / "mlartifacts" / path / "a.txt").read_bytes() == b"a"


@pytest.mark.parametrize("loop", ["asyncio", "auto"])
def test_keep_alive_latency_with_two_workers(tmp_path: Path, loop: str) -> None:
    """Accepted sockets must have TCP_NODELAY at any worker count; without it (asyncio loop, workers > 1) each
    small keep-alive request waits ~44 ms for a delayed ACK."""
    with cli_server(
        "--workers", "2", "--loop", loop, "--backend-store-uri", f"sqlite:///{tmp_path}/db.sqlite", cwd=str(tmp_path)
    ) as url:
        session = requests.Session()
        created = session.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": "latency"}).json()
        run = session.post(f"{url}/api/2.0/mlflow/runs/create", json=created).json()["run"]["info"]["run_id"]
        timings = []
        for i in range(50):
            started = time.perf_counter()
            response = session.post(
                f"{url}/api/2.0/mlflow/runs/log-metric",
                json={"run_id": run, "key": "m", "value": i, "timestamp": i, "step": i},
            )
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200
        session.close()  # lets the server shut down without waiting for the keep-alive timeout
    assert statistics.median(timings) < 0.015, statistics.median(timings)


def test_environment_configuration_and_static_prefix(tmp_path: Path) -> None:
    env = {
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/env.db",
        "MLTRAIL_STATIC_PREFIX": "/tracking",
        "MLFLOW_SERVER_ALLOWED_HOSTS": "tracker.example.com",
    }
    with cli_server(cwd=str(tmp_path), env=env, health_path="/tracking/health") as url:
        get = f"{url}/tracking/api/2.0/mlflow/experiments/get?experiment_id=0"
        assert requests.get(get).status_code == 200
        assert requests.get(f"{url}/tracking/ajax-api/2.0/mlflow/experiments/get?experiment_id=0").status_code == 200
        assert requests.get(f"{url}/api/2.0/mlflow/experiments/get?experiment_id=0").status_code == 404
        assert requests.get(f"{url}/tracking/version").text == "3.17.2"
        assert requests.get(get, headers={"Host": "tracker.example.com"}).status_code == 200
        assert requests.get(get, headers={"Host": "192.168.0.9"}).status_code == 403
    assert (tmp_path / "env.db").exists()


def test_artifact_streaming_keeps_server_memory_flat(tmp_path: Path) -> None:
    """A 200 MB upload and download through a worker process must not grow its memory with the file size."""
    import psutil

    size, chunk = 200 * 1024 * 1024, b"\xab" * (1024 * 1024)
    with cli_server(cwd=str(tmp_path)) as url:
        process = psutil.Process(url.pid)
        url_of_file = f"{url}/api/2.0/mlflow-artifacts/artifacts/big/file.bin"
        assert requests.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/warm/up.bin", data=chunk).status_code == 200
        requests.get(f"{url}/api/2.0/mlflow-artifacts/artifacts/warm/up.bin").raise_for_status()
        before = process.memory_info().rss
        response = requests.put(url_of_file, data=(chunk for _ in range(size // len(chunk))))
        assert response.status_code == 200
        received = 0
        with requests.get(url_of_file, stream=True) as download:
            for part in download.iter_content(1024 * 1024):
                received += len(part)
        growth = process.memory_info().rss - before
    assert received == size
    assert (tmp_path / "mlartifacts" / "big" / "file.bin").stat().st_size == size
    assert growth < 50 * 1024 * 1024, growth


def test_help_lists_mlflow_options_and_ui_alias() -> None:
    for command in ("server", "ui"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0
        for option in (
            "--backend-store-uri",
            "--default-artifact-root",
            "--serve-artifacts / --no-serve-artifacts",
            "--artifacts-destination",
            "--artifacts-only",
            "--host",
            "--port",
            "--workers",
            "--static-prefix",
            "--allowed-hosts",
            "--cors-allowed-origins",
            "--dev",
        ):
            assert option in result.output, option


def test_bad_backend_uri_fails_with_a_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["server", "--backend-store-uri", "mongodb://x"])
    assert result.exit_code != 0
    assert "Unsupported tracking URI" in result.output
