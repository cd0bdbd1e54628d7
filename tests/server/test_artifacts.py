"""The proxied artifact service and the tracking-side artifact endpoints, with streaming and Range."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import requests

from mltrail.server.app import create_app

from .conftest import Api, Live, error_of
from .live import thread_server

ARTIFACTS = "/api/2.0/mlflow-artifacts"


def put(url: str, path: str, body: bytes, prefix: str = "/api/2.0") -> requests.Response:
    return requests.put(f"{url}{prefix}/mlflow-artifacts/artifacts/{path}", data=body)


def test_upload_download_list_delete(live: Live) -> None:
    for prefix in ("/api/2.0", "/ajax-api/2.0"):
        base = f"{live.url}{prefix}/mlflow-artifacts/artifacts"
        response = put(live.url, "exp1/run1/artifacts/dir/a.txt", b"hello", prefix)
        assert response.status_code == 200 and response.content == b""
        assert (live.destination / "exp1/run1/artifacts/dir/a.txt").read_bytes() == b"hello"
        put(live.url, "exp1/run1/artifacts/b.json", b"{}", prefix)

        download = requests.get(f"{base}/exp1/run1/artifacts/dir/a.txt")
        assert download.status_code == 200 and download.content == b"hello"
        assert download.headers["content-disposition"] == 'attachment; filename="a.txt"'
        assert download.headers["x-content-type-options"] == "nosniff"
        assert download.headers["content-type"].startswith("text/plain")

        listing = requests.get(base, params={"path": "exp1/run1/artifacts"}).json()
        assert listing == {
            "files": [
                {"path": "b.json", "is_dir": False, "file_size": 2},
                {"path": "dir", "is_dir": True},
            ]
        }
        assert requests.get(base, params={"path": "exp1/nothing-here"}).json() == {}

        assert requests.delete(f"{base}/exp1/run1/artifacts/dir").json() == {}
        assert not (live.destination / "exp1/run1/artifacts/dir").exists()
        error_of(requests.get(f"{base}/exp1/run1/artifacts/dir/a.txt"), 404, "RESOURCE_DOES_NOT_EXIST")
        requests.delete(f"{base}/exp1")


def test_directory_download_and_bad_upload_paths(live: Live) -> None:
    base = f"{live.url}{ARTIFACTS}/artifacts"
    put(live.url, "dl/x/file.bin", b"1")
    message = error_of(requests.get(f"{base}/dl/x"), 400, "INVALID_PARAMETER_VALUE")
    assert message == "Artifact path refers to a directory, not a file: 'dl/x'"
    error_of(requests.put(f"{base}/dl/x/", data=b"1"), 400, "INVALID_PARAMETER_VALUE")
    error_of(requests.delete(f"{base}/"), 400, "INVALID_PARAMETER_VALUE")
    assert (live.destination / "dl/x/file.bin").exists()


def test_large_upload_streams_and_range_requests(live: Live, tmp_path: Path) -> None:
    payload = os.urandom(5 * 1024 * 1024 + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    with source.open("rb") as body:  # file body: sent without Content-Length buffering on our side
        assert requests.put(f"{live.url}{ARTIFACTS}/artifacts/big/big.bin", data=body).status_code == 200
    url = f"{live.url}{ARTIFACTS}/artifacts/big/big.bin"
    with requests.get(url, stream=True) as response:
        digest = hashlib.sha256()
        for chunk in response.iter_content(256 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()
    assert response.headers["accept-ranges"] == "bytes"

    part = requests.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == payload[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(payload)}"
    tail = requests.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == payload[-10:]
    open_ended = requests.get(url, headers={"Range": f"bytes={len(payload) - 5}-"})
    assert open_ended.content == payload[-5:]
    unsatisfiable = requests.get(url, headers={"Range": f"bytes={len(payload)}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(payload)}"
    ignored = requests.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert ignored.status_code == 200 and len(ignored.content) == len(payload)


def test_interrupted_upload_leaves_no_file(live: Live) -> None:
    def body():
        yield b"x" * 1024
        raise ConnectionAbortedError("client went away")

    with pytest.raises(requests.RequestException):
        requests.put(f"{live.url}{ARTIFACTS}/artifacts/broken/file.bin", data=body())
    target = live.destination / "broken"
    assert not target.exists() or not any(p.is_file() and not p.name.startswith(".") for p in target.rglob("*"))


def test_multipart_and_presigned_are_not_implemented(live: Live) -> None:
    """A local destination: MLflow's 501 messages (its clients fall back on the prefix), after the checks."""
    bodies = {
        "create": {"path": "/home/me/f.bin", "num_parts": 2},
        "complete": {"path": "f.bin", "upload_id": "u", "parts": [{"part_number": 1, "etag": "e"}]},
        "abort": {"path": "f.bin", "upload_id": "u"},
    }
    for action, body in bodies.items():
        response = requests.post(f"{live.url}{ARTIFACTS}/mpu/{action}/some/dir", json=body)
        message = error_of(response, 501, "NOT_IMPLEMENTED")
        assert message == "Multipart upload is not supported for the current artifact repository"
        error_of(requests.post(f"{live.url}{ARTIFACTS}/mpu/{action}/some/dir", json={}), 400, "INVALID_PARAMETER_VALUE")
        bad = requests.post(f"{live.url}{ARTIFACTS}/mpu/{action}/%2E%2E/dir", json=body)
        assert error_of(bad, 400, "INVALID_PARAMETER_VALUE") == "Invalid path"
    message = error_of(requests.get(f"{live.url}{ARTIFACTS}/presigned/some/file"), 501, "NOT_IMPLEMENTED")
    assert message == "Multipart download is not supported for the current artifact repository"
    info = requests.get(f"{live.url}/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False and info["multipart_downloads_enabled"] is False


def test_run_artifact_list_and_get_artifact(live: Live) -> None:
    api = Api(live.url)
    run = api.new_run()["info"]
    root = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    put(live.url, f"{root}/model/weights.bin", b"w" * 10)
    put(live.url, f"{root}/notes.txt", b"note")
    listing = api.ok_get("artifacts/list", {"run_id": run["run_id"]})
    assert listing["root_uri"] == run["artifact_uri"]
    assert listing["files"] == [
        {"path": "model", "is_dir": True},
        {"path": "notes.txt", "is_dir": False, "file_size": 4},
    ]
    sub = api.ok_get("artifacts/list", {"run_uuid": run["run_id"], "path": "model"})
    assert sub["files"] == [{"path": "model/weights.bin", "is_dir": False, "file_size": 10}]
    for url in (f"{live.url}/get-artifact", f"{live.url}/ajax-api/2.0/mlflow/get-artifact"):
        response = requests.get(url, params={"run_id": run["run_id"], "path": "model/weights.bin"})
        assert response.status_code == 200 and response.content == b"w" * 10
        assert response.headers["content-disposition"].startswith("attachment")
    error_of(requests.get(f"{live.url}/get-artifact", params={"run_id": run["run_id"]}), 400, "INVALID_PARAMETER_VALUE")
    error_of(
        requests.get(f"{live.url}/get-artifact", params={"run_id": run["run_id"], "path": "missing.txt"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_run_artifacts_in_a_local_root(live: Live, tmp_path: Path) -> None:
    """An experiment whose artifact location is a local directory: the server lists and serves it directly."""
    api = Api(live.url)
    experiment_id = api.new_experiment(artifact_location=(tmp_path / "local-root").as_uri())
    run = api.new_run(experiment_id)["info"]
    target = tmp_path / "local-root" / run["run_id"] / "artifacts" / "f.txt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"local")
    assert api.ok_get("artifacts/list", {"run_id": run["run_id"]})["files"] == [
        {"path": "f.txt", "is_dir": False, "file_size": 5}
    ]
    response = requests.get(f"{live.url}/get-artifact", params={"run_id": run["run_id"], "path": "f.txt"})
    assert response.content == b"local"


def test_serving_switches(backend, tmp_path: Path) -> None:
    no_serve = create_app(backend.uri, serve_artifacts=False, default_artifact_root=str(tmp_path / "root"))
    with thread_server(no_serve) as server:
        error_of(put(server.url, "a/b.txt", b"1"), 503, "TEMPORARILY_UNAVAILABLE")
        assert Api(server.url).ok_get("experiments/get", {"experiment_id": "0"})["experiment"]["experiment_id"] == "0"
    only = create_app(backend.uri, artifacts_only=True, artifacts_destination=str(tmp_path / "dest"))
    with thread_server(only) as server:
        assert put(server.url, "a/b.txt", b"1").status_code == 200
        assert (tmp_path / "dest" / "a" / "b.txt").read_bytes() == b"1"
        error_of(Api(server.url).get("experiments/get", {"experiment_id": "0"}), 503, "TEMPORARILY_UNAVAILABLE")
        assert requests.get(f"{server.url}/api/3.0/mlflow/server-info").json()["store_type"] is None


def test_client_big_files_without_multipart(live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local destination: a forced multipart upload meets the 501 and falls back to one streamed PUT; a big
    download comes as parallel Range requests to the server itself."""
    from mltrail.artifacts.proxied import ProxiedArtifactRepository

    monkeypatch.setenv("MLTRAIL_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLTRAIL_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1")
    monkeypatch.setenv("MLTRAIL_MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE", "1")
    monkeypatch.setenv("MLTRAIL_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(1024 * 1024))
    payload = os.urandom(5 * 1024 * 1024 + 7)
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    repo = ProxiedArtifactRepository("mlflow-artifacts:/fallback/artifacts", tracking_uri=live.url)
    repo.log_artifact(str(source), "model")
    assert (live.destination / "fallback/artifacts/model/big.bin").read_bytes() == payload
    local = Path(repo.download_artifacts("model", str(tmp_path / "dl")))
    assert (local / "big.bin").read_bytes() == payload
    assert [p.name for p in local.iterdir()] == ["big.bin"]
    ranged = tmp_path / "ranged.bin"  # the server honoured the ranges (no fallback to one GET)
    assert repo._ranged_download("model/big.bin", str(ranged), len(payload), 1024 * 1024)
    assert ranged.read_bytes() == payload
