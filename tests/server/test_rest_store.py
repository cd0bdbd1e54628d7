"""RestStore and ProxiedArtifactRepository against a live server, plus retry and auth behaviour against a
small scripted HTTP server."""

from __future__ import annotations

import base64
import http.server
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltrail.artifacts.proxied import ProxiedArtifactRepository, resolve
from mltrail.entities import (
    Dataset,
    DatasetInput,
    ExperimentTag,
    InputTag,
    Metric,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import MltrailException
from mltrail.store.rest import RestStore

from .conftest import Live, unique


def test_store_round_trip(live: Live) -> None:
    store = RestStore(live.url)
    name = unique()
    experiment_id = store.create_experiment(name, tags=[ExperimentTag("k", "v")])
    experiment = store.get_experiment(experiment_id)
    assert experiment.name == name and experiment.tags == {"k": "v"}
    assert store.get_experiment_by_name(name).experiment_id == experiment_id
    assert store.get_experiment_by_name(unique("absent")) is None
    store.set_experiment_tag(experiment_id, ExperimentTag("k2", "v2"))
    store.delete_experiment_tag(experiment_id, "k")
    store.rename_experiment(experiment_id, name + "-renamed")
    assert store.get_experiment(experiment_id).tags == {"k2": "v2"}
    found = store.search_experiments(filter_string=f"name = '{name}-renamed'")
    assert [e.experiment_id for e in found] == [experiment_id] and found.token is None

    run = store.create_run(experiment_id, user_id="ann", start_time=5, tags=[RunTag("a", "1")], run_name="rr")
    run_id = run.info.run_id
    assert run.info.run_name == "rr" and run.info.user_id == "ann" and run.data.tags["a"] == "1"
    store.log_metric(run_id, Metric("m", math.nan, 1, 0))
    store.log_metric(run_id, Metric("m", 2.0, 2, 1))
    store.log_param(run_id, Param("p", "x"))
    store.set_tag(run_id, RunTag("t", "y"))
    store.delete_tag(run_id, "a")
    store.log_batch(run_id, metrics=[Metric("b", float(i), 3, i) for i in range(5)], params=[Param("q", "1")])
    dataset = Dataset("ds", "d1", "local", "/ds", schema='{"a": 1}')
    store.log_inputs(run_id, [DatasetInput(dataset, (InputTag("mlflow.data.context", "train"),))])
    fetched = store.get_run(run_id)
    assert fetched.data.metrics == {"m": 2.0, "b": 4.0}
    assert fetched.data.params == {"p": "x", "q": "1"}
    assert "a" not in fetched.data.tags and fetched.data.tags["t"] == "y"
    assert fetched.inputs.dataset_inputs[0].dataset == dataset
    history = store.get_metric_history(run_id, "m")
    assert math.isnan(history[0].value) and history[1].value == 2.0
    page = store.get_metric_history(run_id, "b", max_results=2)
    assert [m.step for m in page] == [0, 1] and page.token
    assert [m.step for m in store.get_metric_history(run_id, "b", page_token=page.token)] == [2, 3, 4]

    info = store.update_run_info(run_id, RunStatus.FINISHED, end_time=9, run_name="done")
    assert (info.status, info.end_time, info.run_name) == (RunStatus.FINISHED, 9, "done")
    runs = store.search_runs([experiment_id], "params.p = 'x'", order_by=["metrics.m DESC"])
    assert [r.info.run_id for r in runs] == [run_id]
    store.delete_run(run_id)
    assert [r.info.run_id for r in store.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)] == [run_id]
    store.restore_run(run_id)
    store.delete_experiment(experiment_id)
    store.restore_experiment(experiment_id)


def test_store_errors_keep_server_error_codes(live: Live) -> None:
    store = RestStore(live.url)
    with pytest.raises(MltrailException) as missing:
        store.get_experiment("424242424")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    run_id = store.create_run(store.create_experiment(unique())).info.run_id
    store.log_param(run_id, Param("p", "1"))
    with pytest.raises(MltrailException) as changed:
        store.log_param(run_id, Param("p", "2"))
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Changing param values is not allowed" in changed.value.message
    store.delete_run(run_id)
    with pytest.raises(MltrailException) as deleted:
        store.log_metric(run_id, Metric("m", 1.0, 1, 0))
    assert deleted.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "must be in the 'active' state" in deleted.value.message


def test_store_validates_before_sending(scripted) -> None:
    store = RestStore(_url(scripted))
    with pytest.raises(MltrailException) as too_many:
        store.log_batch("r" * 32, params=[Param(f"k{i}", "v") for i in range(101)])
    assert too_many.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MltrailException):
        store.log_metric("r" * 32, Metric("m", True, 0, 0))  # type: ignore[arg-type]
    with pytest.raises(MltrailException):
        store.create_experiment("")
    assert scripted.seen == []


# --- retries and auth against a scripted server ------------------------------------------------------


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers from ``server.script`` (a list of (status, headers, body)), recording every request."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))  # type: ignore[attr-defined]
        script = self.server.script  # type: ignore[attr-defined]
        status, headers, body = script.pop(0) if len(script) > 1 else script[0]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.seen = []  # type: ignore[attr-defined]
    server.script = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_posts_are_retried_on_5xx_and_429_honouring_retry_after(scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_MAX_RETRIES", "5")
    ok = (200, {"Content-Type": "application/json"}, b'{"experiment_id": "7"}')
    scripted.script = [(503, {}, b"busy"), (429, {"Retry-After": "0"}, b""), (502, {}, b""), ok]
    assert RestStore(_url(scripted)).create_experiment("x") == "7"
    assert [seen[0] for seen in scripted.seen] == ["POST"] * 4
    assert json.loads(scripted.seen[-1][3]) == {"name": "x", "tags": []}


def test_client_errors_are_not_retried(scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    body = json.dumps({"error_code": "RESOURCE_ALREADY_EXISTS", "message": "Experiment(name=x) already exists."})
    scripted.script = [(400, {"Content-Type": "application/json"}, body.encode())]
    with pytest.raises(MltrailException) as error:
        RestStore(_url(scripted)).create_experiment("x")
    assert error.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert len(scripted.seen) == 1


@pytest.mark.parametrize(("code", "expected_requests"), [("INVALID_STATE", 1), ("INTERNAL_ERROR", 3)])
def test_500s_are_retried_only_when_a_resend_can_help(
    scripted, monkeypatch: pytest.MonkeyPatch, code: str, expected_requests: int
) -> None:
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_MAX_RETRIES", "2")
    body = json.dumps({"error_code": code, "message": "no"}).encode()
    scripted.script = [(500, {"Content-Type": "application/json", "X-Mltrail-Error-Code": code}, body)]
    with pytest.raises(MltrailException) as error:
        RestStore(_url(scripted)).rename_experiment("1", "new")
    assert error.value.error_code == code
    assert len(scripted.seen) == expected_requests


def test_server_repeats_the_error_code_in_a_header(live: Live) -> None:
    store = RestStore(live.url)
    experiment_id = store.create_experiment(unique())
    store.delete_experiment(experiment_id)
    response = store.client.session.post(  # the raw answer, as a retrying HTTP layer sees it
        f"{live.url}/api/2.0/mlflow/experiments/update", json={"experiment_id": experiment_id, "new_name": unique()}
    )
    assert response.status_code == 500
    assert response.headers["X-Mltrail-Error-Code"] == response.json()["error_code"] == "INVALID_STATE"


def test_retries_give_up_with_the_last_error(scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    scripted.script = [(500, {}, b"<html>oops</html>")]
    with pytest.raises(MltrailException) as error:
        RestStore(_url(scripted)).get_experiment("1")
    assert error.value.error_code == "INTERNAL_ERROR"
    assert len(scripted.seen) == 3


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"MLTRAIL_TRACKING_USERNAME": "u", "MLTRAIL_TRACKING_PASSWORD": "p"},
            "Basic " + base64.b64encode(b"u:p").decode(),
        ),
        ({"MLFLOW_TRACKING_TOKEN": "tok"}, "Bearer tok"),
        (
            {"MLFLOW_TRACKING_USERNAME": "a", "MLFLOW_TRACKING_PASSWORD": "b", "MLTRAIL_TRACKING_TOKEN": "t"},
            "Basic " + base64.b64encode(b"a:b").decode(),
        ),
    ],
)
def test_auth_from_environment(scripted, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    scripted.script = [(200, {"Content-Type": "application/json"}, b'{"experiment": {"experiment_id": "1"}}')]
    RestStore(_url(scripted)).get_experiment("1")
    method, path, headers, _ = scripted.seen[0]
    assert (method, path) == ("GET", "/api/2.0/mlflow/experiments/get?experiment_id=1")
    assert headers["Authorization"] == expected


# --- proxied artifacts -------------------------------------------------------------------------------


def test_resolve_proxied_uris() -> None:
    assert resolve("mlflow-artifacts:/1/r/artifacts", "http://srv:5000") == ("http://srv:5000", "1/r/artifacts")
    assert resolve("mlflow-artifacts:/1/r", "https://srv/prefix/") == ("https://srv/prefix", "1/r")
    assert resolve("mlflow-artifacts://other:81/1/r", "https://srv/prefix") == ("https://other:81", "1/r")
    assert resolve("http://h:1/pre/api/2.0/mlflow-artifacts/artifacts/1/r") == ("http://h:1/pre", "1/r")
    with pytest.raises(MltrailException):
        resolve("mlflow-artifacts:/1/r", "sqlite:///x.db")
    with pytest.raises(MltrailException):
        resolve("http://h/not-the-artifact-api")


def test_proxied_repository(live: Live, tmp_path: Path) -> None:
    root = f"mlflow-artifacts:/proxied-{unique()}/artifacts"
    repo = ProxiedArtifactRepository(root, tracking_uri=live.url)
    on_disk = live.destination / root.removeprefix("mlflow-artifacts:/")
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("A")
    (source / "sub" / "b.bin").write_bytes(b"\x00" * 3000)
    repo.log_artifacts(str(source), "tree")
    repo.log_artifact(str(source / "a.txt"))
    with repo.open_write("streamed/c.txt") as sink:
        sink.write(b"C" * 10)
    assert (on_disk / "tree" / "sub" / "b.bin").read_bytes() == b"\x00" * 3000
    assert (on_disk / "streamed" / "c.txt").read_bytes() == b"C" * 10

    from mltrail.entities import FileInfo

    assert repo.list_artifacts() == [
        FileInfo("a.txt", False, 1),
        FileInfo("streamed", True, None),
        FileInfo("tree", True, None),
    ]
    assert repo.list_artifacts("tree") == [FileInfo("tree/a.txt", False, 1), FileInfo("tree/sub", True, None)]
    assert repo.file_size("tree/sub/b.bin") == 3000 and repo.file_size("tree") is None
    with repo.open_read("tree/sub/b.bin") as stream:
        assert stream.read() == b"\x00" * 3000

    dst = tmp_path / "dst"
    local = repo.download_artifacts("tree", str(dst))
    assert Path(local) == dst / "tree"
    assert (dst / "tree" / "sub" / "b.bin").read_bytes() == b"\x00" * 3000
    assert Path(repo.download_artifacts("a.txt", str(dst))).read_text() == "A"
    everything = Path(repo.download_artifacts("", str(tmp_path / "all")))
    assert (everything / "streamed" / "c.txt").exists()

    repo.delete_artifacts("tree/sub")
    assert not (on_disk / "tree" / "sub").exists()
    with pytest.raises(MltrailException) as missing:
        repo.file_size("tree/sub/b.bin")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MltrailException):
        repo.log_artifact(str(source / "a.txt"), "../escape")

    http_repo = ProxiedArtifactRepository(
        f"{live.url}/api/2.0/mlflow-artifacts/artifacts/{root.removeprefix('mlflow-artifacts:/')}"
    )
    assert [f.path for f in http_repo.list_artifacts()] == ["a.txt", "streamed", "tree"]
