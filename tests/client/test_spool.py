"""The offline spool: a client keeps logging while its tracking server is down (killed mid-run, or not yet up
at ``start_run``), and the server ends up with exactly what was logged once it is back.

Real parts only: ``mltrail server`` subprocesses on SQLite, killed with SIGKILL and restarted on the same port
and database, and a client subprocess using the fluent API, steered through its stdin/stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mltrail.entities import RunStatus
from mltrail.store.rest import RestStore
from server.live import free_port

T0 = 1_700_000_000_000


class Server:
    """``mltrail server`` on a fixed port and SQLite database, which the test kills and restarts."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-c", "from mltrail.cli import main; main()", "server", "--port", str(self.port)]
        command += ["--backend-store-uri", f"sqlite:///{self.tmp / 'server.db'}"]
        command += ["--artifacts-destination", str(self.tmp / "artifacts")]
        with open(self.tmp / "server.log", "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.tmp, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.tmp / "server.log").read_text())
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path)
    yield server
    if server.process is not None:
        server.kill()


#: The client: logs in phases, each started by a line on stdin; reports on stdout. Every point has its own
#: timestamp and step, so the expected history is known exactly.
CLIENT = textwrap.dedent(
    """
    import json, sys, time
    import mltrail

    T0 = 1_700_000_000_000
    mltrail.set_tracking_uri(sys.argv[1])

    def say(*words):
        print(*words, flush=True)

    def log_steps(first, last, pause_every=0):
        for step in range(first, last):
            mltrail.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=T0 + step)
            mltrail.log_metrics({"acc": step / 10_000, "lr": 0.1}, step=step, timestamp=T0 + step)
            if step % 250 == 0:
                mltrail.log_param(f"p{step}", step)
                mltrail.set_tag(f"t{step}", f"v{step}")
            if pause_every and step % pause_every == 0:
                time.sleep(0.01)

    phases = [int(n) for n in sys.argv[2].split(",")]
    mltrail.set_experiment("spooled")
    run = mltrail.start_run(run_name="survivor")
    say("run", run.info.run_id)
    mltrail.log_text("written at " + sys.argv[3], "notes/start.txt")
    start = 0
    for number, end in enumerate(phases):
        command = sys.stdin.readline().strip()
        say("phase", number, "started")
        log_steps(start, end, pause_every=50 if command == "slow" else 0)
        mltrail.flush()
        say("phase", number, "done")
        start = end
    sys.stdin.readline()
    mltrail.log_text("the end", "notes/end.txt")
    mltrail.end_run()
    say("ended")
    """
)


class Client:
    def __init__(self, tmp: Path, url: str, phases: list[int], started: str, spool: Path) -> None:
        script = tmp / "client.py"
        script.write_text(CLIENT)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLTRAIL_", "MLFLOW_"))},
            "MLTRAIL_SPOOL_DIR": str(spool),
            "MLTRAIL_SPOOL_RETRY_INTERVAL": "0.2",
            "MLTRAIL_HTTP_REQUEST_MAX_RETRIES": "1",
            "MLTRAIL_HTTP_REQUEST_BACKOFF_FACTOR": "0.05",
            "MLTRAIL_HTTP_REQUEST_TIMEOUT": "5",
        }
        self.process = subprocess.Popen(
            [sys.executable, str(script), url, ",".join(map(str, phases)), started],
            cwd=tmp,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(tmp / "client.log", "wb"),  # noqa: SIM115 - closed with the process
            text=True,
        )
        self.log = tmp / "client.log"

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, *words: str) -> list[str]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        assert line[: len(words)] == list(words), (line, self.log.read_text())
        return line

    def finish(self) -> None:
        self.send("end")
        self.expect("ended")
        assert self.process.wait(20) == 0, self.log.read_text()


def expected_history(key: str, last_step: int) -> list[tuple[int, int, float]]:
    def value(step: int) -> float:
        return {"loss": 1.0 / (step + 1), "acc": step / 10_000, "lr": 0.1}[key]

    return [(T0 + step, step, value(step)) for step in range(last_step)]


def assert_server_has_everything(url: str, run_id: str, last_step: int) -> None:
    store = RestStore(url)
    run = store.get_run(run_id)
    assert run.info.status == RunStatus.FINISHED
    assert run.info.run_name == "survivor"
    experiment = store.get_experiment(run.info.experiment_id)
    assert experiment.name == "spooled"
    assert [r.info.run_id for r in store.search_runs([experiment.experiment_id])] == [run_id]
    for key in ("loss", "acc", "lr"):
        history = [(m.timestamp, m.step, m.value) for m in store.get_metric_history(run_id, key)]
        assert history == expected_history(key, last_step), key  # every point once: none lost, none doubled
    steps = range(0, last_step, 250)
    assert run.data.params == {f"p{s}": str(s) for s in steps}
    user_tags = {k: v for k, v in run.data.tags.items() if k.startswith("t")}
    assert user_tags == {f"t{s}": f"v{s}" for s in steps}
    files = requests.get(
        f"{url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id, "path": "notes"}, timeout=10
    ).json()["files"]
    assert sorted(f["path"] for f in files) == ["notes/end.txt", "notes/start.txt"]


def spooled_runs(spool: Path) -> list[Path]:
    return [p.parent for p in spool.glob("*/*/*/*/meta.yaml") if p.parent.parent.name != "0"]


def test_server_killed_mid_run_and_restarted(server: Server, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    server.start()
    client = Client(tmp_path, server.url, [3000, 6000, 8000], "online", spool)
    run_id = client.expect("run")[1]

    client.send("slow")  # phase 0: kill the server while the client is busy logging
    client.expect("phase", "0", "started")
    time.sleep(0.3)
    server.kill()
    client.expect("phase", "0", "done")

    client.send("fast")  # phase 1: the server is down the whole time
    client.expect("phase", "1", "started")
    client.expect("phase", "1", "done")
    runs = spooled_runs(spool)
    assert [p.name for p in runs] == [run_id]
    assert (runs[0] / "metrics" / "loss").stat().st_size > 0

    server.start()  # same port, same database
    client.send("fast")  # phase 2: back online (the spool is sent in the background or at end_run)
    client.expect("phase", "2", "started")
    client.expect("phase", "2", "done")
    client.finish()

    assert_server_has_everything(server.url, run_id, 8000)
    assert spooled_runs(spool) == []  # sent, then removed


def test_server_down_at_start_run(server: Server, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    client = Client(tmp_path, server.url, [2000, 3000], "offline", spool)
    run_id = client.expect("run")[1]
    client.send("fast")
    client.expect("phase", "0", "started")
    client.expect("phase", "0", "done")
    runs = spooled_runs(spool)
    assert [p.name for p in runs] == [run_id]
    assert (runs[0] / "artifacts" / "notes" / "start.txt").read_text() == "written at offline"

    server.start()
    client.send("fast")
    client.expect("phase", "1", "started")
    client.expect("phase", "1", "done")
    client.finish()

    assert_server_has_everything(server.url, run_id, 3000)
    assert spooled_runs(spool) == []


def test_unsent_spool_is_kept_and_synced_by_hand(server: Server, tmp_path: Path) -> None:
    """A job that ends while the server is still down leaves its spool on disk; ``mltrail sync`` sends it."""
    spool = tmp_path / "spool"
    client = Client(tmp_path, server.url, [500], "offline", spool)
    run_id = client.expect("run")[1]
    client.send("fast")
    client.expect("phase", "0", "started")
    client.expect("phase", "0", "done")
    client.finish()
    assert "mltrail sync" in client.log.read_text()
    (run_dir,) = spooled_runs(spool)
    spool_root = run_dir.parent.parent

    server.start()
    from click.testing import CliRunner

    from mltrail.cli.sync import sync

    result = CliRunner().invoke(sync, [str(spool_root), "--to", server.url, "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 0, result.output
    store = RestStore(server.url)
    run = store.get_run(run_id)
    assert run.info.status == RunStatus.FINISHED
    assert store.get_experiment(run.info.experiment_id).name == "spooled"
    history = [(m.timestamp, m.step, m.value) for m in store.get_metric_history(run_id, "loss")]
    assert history == expected_history("loss", 500)
    assert json.loads(json.dumps(run.data.params)) == {f"p{s}": str(s) for s in range(0, 500, 250)}


# --- in process: the SpoolingStore against a server that is not listening yet ----------------------------------


def test_spooling_store_offline_then_online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrail.client.spool import SpoolingStore
    from mltrail.entities import Metric, Param, RunTag
    from mltrail.errors import ErrorCode, MltrailException
    from mltrail.server.app import create_app
    from server.live import ThreadServer

    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_MAX_RETRIES", "0")
    server = ThreadServer(create_app(f"sqlite:///{tmp_path / 'server.db'}", None, str(tmp_path / "artifacts")))
    store = SpoolingStore(RestStore(server.url), spool_dir=str(tmp_path / "spool"), retry_interval=60)
    try:  # the port is bound but nobody listens: connections are refused
        experiment_id = store.create_experiment("made offline")
        assert store.get_experiment_by_name("made offline").experiment_id == experiment_id  # type: ignore[union-attr]
        run = store.create_run(experiment_id, "ana", 5, [RunTag("k", "v")], "offline run")
        store.log_batch(run.info.run_id, [Metric("m", 1.0, 10, 0)], [Param("p", "1")])
        assert store.offline
        assert store.get_run(run.info.run_id).data.params == {"p": "1"}  # answered from the spool
        started = time.monotonic()
        with pytest.raises(MltrailException) as info:
            store.search_runs([experiment_id])
        assert info.value.error_code == ErrorCode.TEMPORARILY_UNAVAILABLE
        assert time.monotonic() - started < 5  # no retry storm while the spool knows the server is away

        server.start()
        assert store.drain() and not store.offline
        assert not (tmp_path / "spool").exists()
        remote = RestStore(server.url)
        remote_experiment = remote.get_experiment_by_name("made offline")
        assert remote_experiment is not None and remote_experiment.experiment_id != experiment_id
        stored = remote.get_run(run.info.run_id)
        assert stored.info.experiment_id == remote_experiment.experiment_id
        assert (stored.info.run_name, stored.info.user_id, stored.info.start_time) == ("offline run", "ana", 5)
        assert stored.data.params == {"p": "1"} and stored.data.tags["k"] == "v"
        # the client still holds the spool's experiment id: it now means the server's experiment
        second = store.create_run(experiment_id, run_name="online run")
        assert second.info.experiment_id == remote_experiment.experiment_id
        assert len(store.search_runs([experiment_id])) == 2
    finally:
        if server._server.started:
            server.stop()


def test_spool_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrail.client import spool

    remote = RestStore(f"http://127.0.0.1:{free_port()}")
    assert isinstance(spool.wrap(remote), spool.SpoolingStore)
    assert spool.wrap(remote) is spool.wrap(remote)
    monkeypatch.setenv("MLTRAIL_OFFLINE_SPOOL", "false")
    assert spool.wrap(remote) is remote
