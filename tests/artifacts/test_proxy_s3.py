"""Proxied artifacts end to end with S3 behind the proxy: a real ``mltrail server`` process whose
``--artifacts-destination`` is a bucket on a real moto server, driven by mltrail's client and by plain HTTP.

Covers the single and multipart (presigned part URLs) upload flows, presigned and ranged downloads, trees,
deletes, a 200 MB file compared byte for byte with the server's memory sampled during the transfer, path
checks on every artifact route, aborts leaving nothing behind, and ``mltrail gc`` emptying a run's prefix.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from click.testing import CliRunner
from requests.adapters import HTTPAdapter

from mltrail import config
from mltrail.artifacts import proxied
from mltrail.artifacts.proxied import ProxiedArtifactRepository
from mltrail.artifacts.s3 import s3_client
from mltrail.cli.gc import gc
from mltrail.client.client import TrackingClient
from mltrail.errors import MltrailException
from server.live import cli_server

from .conftest import unique_name

MiB = 1024 * 1024
ARTIFACTS = "/api/2.0/mlflow-artifacts"
PREFIX = "proxied"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Proxy:
    url: str
    pid: int
    bucket: str
    backend_uri: str

    def key(self, path: str) -> str:
        return f"{PREFIX}/{path}"


@pytest.fixture(scope="module")
def proxy(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """``mltrail server --artifacts-destination s3://<bucket>/proxied`` on a SQLite backend."""
    import boto3

    bucket = unique_name()
    boto3.client("s3", endpoint_url=moto_endpoint, **_boto_credentials()).create_bucket(Bucket=bucket)
    workdir = tmp_path_factory.mktemp("proxy-s3")
    backend_uri = f"sqlite:///{workdir / 'mltrail.db'}"
    env = {"MLTRAIL_S3_ENDPOINT_URL": moto_endpoint, **AWS_ENV}
    args = ("--backend-store-uri", backend_uri, "--artifacts-destination", f"s3://{bucket}/{PREFIX}")
    with cli_server(*args, cwd=str(workdir), env=env) as url:
        yield Proxy(url, url.pid, bucket, backend_uri)


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS_ENV["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(autouse=True)
def client_env(s3_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Boto3 in this process (for looking into the bucket) reaches moto; client retries stay quick."""
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLTRAIL_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setattr(config, "_tracking_uri", None)


def _keys(proxy: Proxy, below: str = "") -> list[str]:
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=proxy.bucket, Prefix=below)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))


def _pending_uploads(proxy: Proxy) -> list[str]:
    return [u["Key"] for u in s3_client().list_multipart_uploads(Bucket=proxy.bucket).get("Uploads", ())]


def _etag(proxy: Proxy, key: str) -> str:
    return str(s3_client().head_object(Bucket=proxy.bucket, Key=key)["ETag"]).strip('"')


def _root() -> str:
    return f"{uuid.uuid4().hex}/artifacts"


def _repo(proxy: Proxy, root: str) -> ProxiedArtifactRepository:
    return ProxiedArtifactRepository(f"mlflow-artifacts:/{root}", tracking_uri=proxy.url)


def _error(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    return str(response.json()["message"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


# --- basic flows ----------------------------------------------------------------------------------------


def test_server_info_advertises_multipart(proxy: Proxy) -> None:
    info = requests.get(f"{proxy.url}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is True


def test_files_and_trees_up_list_down_and_delete(proxy: Proxy, tmp_path: Path) -> None:
    root = _root()
    repo = _repo(proxy, root)
    source = tmp_path / "src"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "a.txt").write_text("A")
    (source / "sub" / "b.bin").write_bytes(os.urandom(3000))
    (source / "sub" / "deeper" / "c.json").write_text("{}")
    (tmp_path / "single.txt").write_text("single")

    repo.log_artifact(str(tmp_path / "single.txt"))
    repo.log_artifacts(str(source), "tree")
    assert _keys(proxy, proxy.key(root)) == [
        proxy.key(f"{root}/{p}") for p in ("single.txt", "tree/a.txt", "tree/sub/b.bin", "tree/sub/deeper/c.json")
    ]
    assert [(f.path, f.is_dir, f.file_size) for f in repo.list_artifacts("tree/sub")] == [
        ("tree/sub/b.bin", False, 3000),
        ("tree/sub/deeper", True, None),
    ]
    listing = requests.get(f"{proxy.url}{ARTIFACTS}/artifacts", params={"path": f"{root}/tree"}, timeout=10).json()
    assert listing["files"] == [{"path": "a.txt", "is_dir": False, "file_size": 1}, {"path": "sub", "is_dir": True}]

    local = Path(repo.download_artifacts("tree", str(tmp_path / "dl")))
    assert local == tmp_path / "dl" / "tree"
    assert sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()) == [
        "a.txt",
        "sub/b.bin",
        "sub/deeper/c.json",
    ]
    assert (local / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()
    assert Path(repo.download_artifacts("single.txt", str(tmp_path / "one"))).read_text() == "single"

    repo.delete_artifacts("tree/sub")
    assert _keys(proxy, proxy.key(root)) == [proxy.key(f"{root}/single.txt"), proxy.key(f"{root}/tree/a.txt")]
    with pytest.raises(MltrailException) as missing:
        repo.download_artifacts("tree/sub", str(tmp_path / "gone"))
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_client_uploads_big_files_in_presigned_parts(
    proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTRAIL_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MiB))
    monkeypatch.setenv("MLTRAIL_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    root = _root()
    big, small = tmp_path / "weights.bin", tmp_path / "small.txt"
    big.write_bytes(os.urandom(12 * MiB + 17))
    small.write_bytes(b"x" * 100)
    repo = _repo(proxy, root)
    repo.log_artifact(str(big), "model")
    repo.log_artifact(str(small), "model")

    assert _etag(proxy, proxy.key(f"{root}/model/weights.bin")).endswith("-3")  # three parts, straight to S3
    assert "-" not in _etag(proxy, proxy.key(f"{root}/model/small.txt"))  # below the minimum: one PUT
    assert not _pending_uploads(proxy)
    local = repo.download_artifacts("model/weights.bin", str(tmp_path / "dl"))
    assert _sha256(Path(local)) == _sha256(big)


def test_mpu_endpoints_with_plain_http(proxy: Proxy) -> None:
    """What an MLflow client does: ``path`` is its local file path, the object is ``<url dir>/<basename>``."""
    root = _root()
    parts = [os.urandom(5 * MiB), os.urandom(2 * MiB)]
    create_url = f"{proxy.url}{ARTIFACTS}/mpu/create/{root}/model"
    created = requests.post(create_url, json={"path": "/home/me/data/w.bin", "num_parts": 2}, timeout=10).json()
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    assert all(urllib.parse.urlsplit(c["url"]).path.endswith(f"{root}/model/w.bin") for c in created["credentials"])
    etags = []
    for credential, data in zip(created["credentials"], parts, strict=True):
        response = requests.put(credential["url"], data=data, headers=credential["headers"], timeout=30)
        assert response.status_code == 200
        etags.append({"part_number": credential["part_number"], "etag": response.headers["ETag"]})
    assert _keys(proxy, proxy.key(root)) == []  # nothing visible before completion
    body = {"path": "w.bin", "upload_id": created["upload_id"], "parts": etags[::-1]}  # any order
    assert requests.post(f"{proxy.url}{ARTIFACTS}/mpu/complete/{root}/model", json=body, timeout=30).json() == {}
    download = requests.get(f"{proxy.url}{ARTIFACTS}/artifacts/{root}/model/w.bin", timeout=30)
    assert download.content == b"".join(parts)

    aborted = requests.post(create_url, json={"path": "C:\\data\\gone.bin", "num_parts": 1}, timeout=10).json()
    assert urllib.parse.urlsplit(aborted["credentials"][0]["url"]).path.endswith(f"{root}/model/gone.bin")
    requests.put(aborted["credentials"][0]["url"], data=b"partial", timeout=30)
    body = {"path": "gone.bin", "upload_id": aborted["upload_id"]}
    assert requests.post(f"{proxy.url}{ARTIFACTS}/mpu/abort/{root}/model", json=body, timeout=10).json() == {}
    assert not _pending_uploads(proxy)
    assert _keys(proxy, proxy.key(root)) == [proxy.key(f"{root}/model/w.bin")]


def test_presigned_and_ranged_downloads(proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _root()
    payload = os.urandom(7 * MiB + 5)
    source = tmp_path / "data.bin"
    source.write_bytes(payload)
    repo = _repo(proxy, root)
    repo.log_artifact(str(source))

    presigned = requests.get(f"{proxy.url}{ARTIFACTS}/presigned/{root}/data.bin", timeout=10).json()
    assert presigned["file_size"] == len(payload) and presigned["headers"] == {}
    assert requests.get(presigned["url"], timeout=30).content == payload
    ranged = requests.get(presigned["url"], headers={"Range": "bytes=10-19"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == payload[10:20]
    _error(
        requests.get(f"{proxy.url}{ARTIFACTS}/presigned/{root}/missing.bin", timeout=10), 404, "RESOURCE_DOES_NOT_EXIST"
    )

    monkeypatch.setenv("MLTRAIL_MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE", str(MiB))
    monkeypatch.setenv("MLTRAIL_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(MiB))
    for forced in ("true", "false"):  # straight from the store, or ranged GETs through the proxy
        monkeypatch.setenv("MLTRAIL_ENABLE_PROXY_MULTIPART_DOWNLOAD", forced)
        repo = _repo(proxy, root)
        session, url, _, owned = repo._range_source("data.bin")
        assert url.startswith(presigned["url"].split("?")[0] if forced == "true" else proxy.url)
        if owned:
            session.close()
        local = Path(repo.download_artifacts("data.bin", str(tmp_path / forced)))
        assert local.read_bytes() == payload
        assert [p.name for p in local.parent.iterdir()] == ["data.bin"]  # no temporary file left


# --- failures leave nothing behind ---------------------------------------------------------------------


class _FlakyParts(HTTPAdapter):
    """A transport that drops the connection for PUTs of one part number (``times`` times, or always)."""

    def __init__(self, part_number: int, times: int | None) -> None:
        super().__init__()
        self.part_number, self.times, self.failures = part_number, times, 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url or "").query)
        if query.get("partNumber") == [str(self.part_number)] and (self.times is None or self.failures < self.times):
            self.failures += 1
            raise requests.ConnectionError("connection reset by peer")
        return super().send(request, **kwargs)


def test_part_failures_are_retried_then_aborted(proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MiB))
    monkeypatch.setenv("MLTRAIL_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    big = tmp_path / "w.bin"
    big.write_bytes(os.urandom(11 * MiB))
    make_session = proxied._store_session

    def upload(adapter: _FlakyParts, root: str) -> None:
        def session(workers: int) -> requests.Session:
            s = make_session(workers)
            s.mount("http://", adapter)
            return s

        monkeypatch.setattr(proxied, "_store_session", session)
        _repo(proxy, root).log_artifact(str(big))

    flaky_once, root = _FlakyParts(part_number=2, times=1), _root()
    upload(flaky_once, root)
    assert flaky_once.failures == 1
    assert _etag(proxy, proxy.key(f"{root}/w.bin")).endswith("-3")

    broken, root = _FlakyParts(part_number=3, times=None), _root()
    with pytest.raises(MltrailException, match="part 3") as failed:
        upload(broken, root)
    assert failed.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert broken.failures == 3  # 1 + MLTRAIL_HTTP_REQUEST_MAX_RETRIES
    assert not _pending_uploads(proxy)  # aborted
    assert _keys(proxy, proxy.key(root)) == []


def test_interrupted_upload_through_the_proxy_is_aborted(proxy: Proxy) -> None:
    """The server streams into an S3 multipart upload; a client that goes away mid-body leaves no object and
    no unfinished upload."""
    root = _root()
    key = proxy.key(f"{root}/broken.bin")
    started = False

    def body() -> Iterator[bytes]:
        nonlocal started
        for _ in range(20):  # more than one 16 MiB part: the server starts a multipart upload
            yield os.urandom(MiB)
        started = _eventually(lambda: key in _pending_uploads(proxy))
        raise ConnectionAbortedError("client went away")

    with pytest.raises(requests.RequestException):
        requests.put(f"{proxy.url}{ARTIFACTS}/artifacts/{root}/broken.bin", data=body(), timeout=60)
    assert started
    assert _eventually(lambda: key not in _pending_uploads(proxy))
    assert _keys(proxy, proxy.key(root)) == []


def _eventually(condition: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- a big file, bounded memory -------------------------------------------------------------------------


class _PeakRss:
    """Samples the resident memory of a process every 50 ms in a background thread."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(0.05)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_200_mb_through_the_proxy_in_bounded_memory(proxy: Proxy, tmp_path: Path) -> None:
    size = 200 * 1000 * 1000
    source = tmp_path / "big.bin"
    with source.open("wb") as f:
        for _ in range(size // (8 * MiB)):
            f.write(os.urandom(8 * MiB))
        f.write(os.urandom(size % (8 * MiB)))
    url = f"{proxy.url}{ARTIFACTS}/artifacts/{_root()}/big.bin"
    with _PeakRss(proxy.pid) as rss:
        with source.open("rb") as body:
            assert requests.put(url, data=body, timeout=120).status_code == 200
        digest = hashlib.sha256()
        with requests.get(url, stream=True, timeout=120) as response:
            assert response.headers["content-length"] == str(size)
            for block in response.iter_content(MiB):
                digest.update(block)
        offset = 123_456_789
        ranged = requests.get(url, headers={"Range": f"bytes={offset}-{offset + 99}"}, timeout=60)
    assert digest.hexdigest() == _sha256(source)
    with source.open("rb") as f:
        f.seek(offset)
        assert ranged.status_code == 206 and ranged.content == f.read(100)
    assert rss.peak < 150 * MiB, f"server RSS peaked at {rss.peak / MiB:.0f} MiB"


# --- path safety ----------------------------------------------------------------------------------------

BAD_PATHS = ("%2E%2E/escape.txt", "a/%252E%252E/%252E%252E/escape.txt", "%2Fetc%2Fpasswd", "a/..%2F..%2Fescape.txt")


def test_every_artifact_route_checks_paths(proxy: Proxy) -> None:
    before = _keys(proxy)
    base = f"{proxy.url}{ARTIFACTS}"
    run = TrackingClient(proxy.url).create_run("0")
    for bad in BAD_PATHS:
        calls = [
            requests.put(f"{base}/artifacts/{bad}", data=b"x", timeout=10),
            requests.get(f"{base}/artifacts/{bad}", timeout=10),
            requests.delete(f"{base}/artifacts/{bad}", timeout=10),
            requests.get(f"{base}/artifacts", params={"path": urllib.parse.unquote(bad)}, timeout=10),
            requests.get(f"{base}/presigned/{bad}", timeout=10),
            requests.get(
                f"{proxy.url}/api/2.0/mlflow/artifacts/list",
                params={"run_id": run.info.run_id, "path": bad},
                timeout=10,
            ),
            requests.get(f"{proxy.url}/get-artifact", params={"run_id": run.info.run_id, "path": bad}, timeout=10),
        ]
        for action in ("create", "complete", "abort"):
            body = {"path": "f.bin", "num_parts": 1, "upload_id": "u", "parts": [{"part_number": 1, "etag": "e"}]}
            calls.append(requests.post(f"{base}/mpu/{action}/{bad}", json=body, timeout=10))
            calls.append(requests.post(f"{base}/mpu/{action}/dir", json={**body, "path": "..%2F..%2Fx"}, timeout=10))
        for response in calls:
            assert _error(response, 400, "INVALID_PARAMETER_VALUE") == "Invalid path", response.url
    with pytest.raises(MltrailException):
        _repo(proxy, _root()).log_artifact(__file__, "../escape")
    assert _keys(proxy) == before


# --- gc -------------------------------------------------------------------------------------------------


def test_gc_removes_a_deleted_runs_objects(proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = TrackingClient(proxy.url)
    experiment_id = client.create_experiment(unique_name())
    doomed, kept = (client.create_run(experiment_id).info for _ in range(2))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"w" * 1000)
    for run in (doomed, kept):
        client.log_artifacts(run.run_id, str(tmp_path / "model"), "model")
        assert run.artifact_uri.startswith("mlflow-artifacts:/")
    doomed_prefix = proxy.key(doomed.artifact_uri.removeprefix("mlflow-artifacts:/")) + "/"
    kept_prefix = proxy.key(kept.artifact_uri.removeprefix("mlflow-artifacts:/")) + "/"
    assert _keys(proxy, doomed_prefix) == [doomed_prefix + "model/w.bin"]
    client.delete_run(doomed.run_id)

    monkeypatch.setenv("MLTRAIL_TRACKING_URI", proxy.url)  # mlflow-artifacts: roots resolve to the server
    result = CliRunner().invoke(gc, ["--backend-store-uri", proxy.backend_uri, "--run-ids", doomed.run_id])
    assert result.exit_code == 0, result.output
    experiment_prefix = proxy.key(experiment_id) + "/"
    assert _keys(proxy, experiment_prefix) == [kept_prefix + "model/w.bin"]
