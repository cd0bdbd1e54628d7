"""The official ``mlflow`` client (3.17.2) logging and downloading artifacts through mltrail's proxy with S3
(a real moto server) behind it, including its presigned multipart uploads and presigned ranged downloads,
which it switches on from our server-info or from ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import mlflow
import pytest

from artifacts.emulators import moto_server
from mltrail.server.app import create_app
from server.live import thread_server

MiB = 1024 * 1024
PREFIX = "mlartifacts"
AWS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@dataclass
class S3Proxy:
    url: str
    bucket: str
    s3: Any  # a boto3 S3 client looking into the bucket

    def keys(self, below: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{PREFIX}/{below}")
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))

    def etag(self, key: str) -> str:
        return str(self.s3.head_object(Bucket=self.bucket, Key=key)["ETag"]).strip('"')


@pytest.fixture(scope="module")
def s3_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Proxy]:
    """mltrail's server (SQLite) proxying ``s3://<bucket>/mlartifacts`` on a moto server."""
    root = tmp_path_factory.mktemp("compat-s3")
    bucket = f"compat-{uuid.uuid4().hex[:12]}"
    with moto_server() as endpoint, pytest.MonkeyPatch.context() as env:
        env.setenv("MLTRAIL_S3_ENDPOINT_URL", endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", AWS["aws_access_key_id"])
        env.setenv("AWS_SECRET_ACCESS_KEY", AWS["aws_secret_access_key"])
        env.setenv("AWS_DEFAULT_REGION", AWS["region_name"])
        s3 = boto3.client("s3", endpoint_url=endpoint, **AWS)
        s3.create_bucket(Bucket=bucket)
        app = create_app(f"sqlite:///{root}/mltrail.db", artifacts_destination=f"s3://{bucket}/{PREFIX}")
        with thread_server(app) as server:
            yield S3Proxy(server.url, bucket, s3)


@pytest.fixture
def client(s3_proxy: S3Proxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[mlflow.MlflowClient]:
    for name in list(os.environ):
        if name.startswith("MLFLOW_") and "MULTIPART" in name:
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    mlflow.set_tracking_uri(s3_proxy.url)
    yield mlflow.MlflowClient(s3_proxy.url)
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _run_prefix(run: mlflow.entities.Run) -> str:
    return run.info.artifact_uri.removeprefix("mlflow-artifacts:/") + "/"


def test_log_list_and_download_with_s3_behind_the_proxy(
    client: mlflow.MlflowClient, s3_proxy: S3Proxy, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("A")
    (source / "sub" / "b.bin").write_bytes(os.urandom(4000))
    mlflow.set_experiment(f"s3-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as active:
        mlflow.log_artifact(str(source / "a.txt"))
        mlflow.log_artifacts(str(source), artifact_path="tree")
        mlflow.log_dict({"k": 1}, "config.json")
    run = client.get_run(active.info.run_id)
    prefix = _run_prefix(run)
    assert s3_proxy.keys(prefix) == [
        f"{PREFIX}/{prefix}{p}" for p in ("a.txt", "config.json", "tree/a.txt", "tree/sub/b.bin")
    ]
    assert sorted(f.path for f in client.list_artifacts(run.info.run_id)) == ["a.txt", "config.json", "tree"]
    assert [(f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "tree/sub")] == [
        ("tree/sub/b.bin", 4000)
    ]
    # server-info says multipart downloads are on: the client fetches presigned S3 URLs for each file
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "dl")))
    assert (local / "tree" / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config.json") == {"k": 1}


@pytest.mark.parametrize("switch", ["env", "server-info"])
def test_official_multipart_upload_and_ranged_download(
    switch: str, client: mlflow.MlflowClient, s3_proxy: S3Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's ``mpu/create`` → parallel part PUTs to presigned URLs → ``mpu/complete`` flow, switched
    on explicitly or by our server-info, then presigned ranged GETs of 5 MiB for the download."""
    if switch == "env":
        monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(5 * MiB))
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(12 * MiB + 3))
    mlflow.set_experiment(f"s3-mpu-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as active:
        mlflow.log_artifact(str(big), artifact_path="model")
    run = client.get_run(active.info.run_id)
    key = f"{PREFIX}/{_run_prefix(run)}model/weights.bin"
    assert s3_proxy.keys(_run_prefix(run)) == [key]
    assert s3_proxy.etag(key).endswith("-3")  # three 5 MiB parts went straight to S3
    assert not s3_proxy.s3.list_multipart_uploads(Bucket=s3_proxy.bucket).get("Uploads")

    local = client.download_artifacts(run.info.run_id, "model/weights.bin", str(tmp_path / "dl"))
    assert Path(local).read_bytes() == big.read_bytes()
