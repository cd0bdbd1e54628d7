"""``mltrail server --workers N``: workers forked from one parent that supervises them (a real subprocess)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import requests

from .conftest import unique
from .live import CliServer, cli_server, free_port

WORKERS = 3


def _sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/db.sqlite"


def _workers(server: CliServer) -> list[psutil.Process]:
    return psutil.Process(server.pid).children()


def _poll(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@contextlib.contextmanager
def _only(worker: psutil.Process, workers: list[psutil.Process]) -> Iterator[None]:
    """Pause every worker but ``worker``: a new connection can then only be accepted and answered by it."""
    others = [other for other in workers if other.pid != worker.pid]
    for other in others:
        other.suspend()
    try:
        yield
    finally:
        for other in others:
            other.resume()


def _create_experiment(url: str) -> str:
    response = requests.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": unique()}, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["experiment_id"])


def _get_experiment(url: str, experiment_id: str) -> dict[str, str]:
    response = requests.get(
        f"{url}/api/2.0/mlflow/experiments/get", params={"experiment_id": experiment_id}, timeout=30
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["experiment"])


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_each_worker_sees_what_the_others_wrote(tmp_path: Path, request: pytest.FixtureRequest, database: str) -> None:
    uri = _sqlite_uri(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_db_uri")
    with cli_server("--workers", str(WORKERS), "--backend-store-uri", uri, cwd=str(tmp_path)) as url:
        workers = _workers(url)
        assert len(workers) == WORKERS
        written = {}
        for worker in workers:  # requests use fresh connections (no session), so whichever worker runs accepts them
            with _only(worker, workers):
                written[worker.pid] = _create_experiment(url)
        for reader in workers:
            with _only(reader, workers):
                for experiment_id in written.values():
                    assert _get_experiment(url, experiment_id)["experiment_id"] == experiment_id
        for _ in range(20):  # and with every worker running
            experiment_id = _create_experiment(url)
            assert _get_experiment(url, experiment_id)["lifecycle_stage"] == "active"
        assert sorted(worker.pid for worker in _workers(url)) == sorted(written)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_ends_every_process(tmp_path: Path, signum: int) -> None:
    with cli_server("--workers", str(WORKERS), "--backend-store-uri", _sqlite_uri(tmp_path), cwd=str(tmp_path)) as url:
        parent = psutil.Process(url.pid)
        workers = _workers(url)
        assert len(workers) == WORKERS
        parent.send_signal(signum)
        assert parent.wait(30) == 0
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive
        assert len(gone) == WORKERS


def test_killed_worker_is_replaced(tmp_path: Path) -> None:
    with cli_server("--workers", str(WORKERS), "--backend-store-uri", _sqlite_uri(tmp_path), cwd=str(tmp_path)) as url:
        before = {worker.pid for worker in _workers(url)}
        victim = min(before)
        psutil.Process(victim).kill()
        _poll(lambda: len({worker.pid for worker in _workers(url)} - before) == 1)
        (replacement,) = {worker.pid for worker in _workers(url)} - before
        assert {worker.pid for worker in _workers(url)} == before - {victim} | {replacement}
        experiment_id = _create_experiment(url)
        workers = _workers(url)
        with _only(psutil.Process(replacement), workers):
            assert _get_experiment(url, experiment_id)["experiment_id"] == experiment_id
        log = (tmp_path / f"server-{url.rsplit(':', 1)[1]}.log").read_text()
        assert f"Worker [{victim}] ended (signal 9); started worker [{replacement}]" in log


def test_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    """An app factory that fails would fail in every replacement too: the parent stops, as one worker would."""
    (tmp_path / "broken_app.py").write_text("def create():\n    raise RuntimeError('no database')\n")
    serve = (
        "import sys, uvicorn\n"
        "from mltrail.server import supervisor\n"
        f"config = uvicorn.Config('broken_app:create', factory=True, port={free_port()})\n"
        "sys.exit(supervisor.serve(config, 2))\n"
    )
    result = subprocess.run([sys.executable, "-c", serve], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "RuntimeError: no database" in result.stderr
    assert "failed to start; stopping" in result.stderr
