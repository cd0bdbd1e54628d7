"""S3-specific behaviour against a real moto server: multipart thresholds, the presigned multipart flow the
proxy hands to MLflow clients, presigned downloads, batched deletes, settings and errors."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
import requests

from mltrail.artifacts.base import MultipartArtifactRepository, UploadedPart
from mltrail.artifacts.registry import get_artifact_repository
from mltrail.artifacts.s3 import S3ArtifactRepository, s3_client
from mltrail.errors import MltrailException

from .conftest import ObjectStore

MiB = 1024 * 1024


def _pending_uploads(bucket: str) -> list[str]:
    return [u["Key"] for u in s3_client().list_multipart_uploads(Bucket=bucket).get("Uploads", ())]


def _bucket(store: ObjectStore) -> str:
    return store.root_uri.split("/")[2]


def _error(call: object) -> str:
    with pytest.raises(MltrailException) as info:
        call()  # type: ignore[operator]
    return info.value.error_code


def test_registry_and_protocols(s3_store: ObjectStore) -> None:
    repo = get_artifact_repository(s3_store.root_uri)
    assert isinstance(repo, S3ArtifactRepository)
    assert isinstance(repo, MultipartArtifactRepository)


def test_files_above_the_threshold_go_up_and_down_in_parts(
    s3_store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTRAIL_S3_MULTIPART_THRESHOLD", str(5 * MiB))
    monkeypatch.setenv("MLTRAIL_S3_MULTIPART_CHUNK_SIZE", str(5 * MiB))
    repo = S3ArtifactRepository(s3_store.root_uri)
    big, small = tmp_path / "weights.bin", tmp_path / "config.json"
    big.write_bytes(os.urandom(12 * MiB))
    small.write_text("{}")
    repo.log_artifact(str(big), "model")
    repo.log_artifact(str(small), "model")

    client = s3_client()
    head = client.head_object(Bucket=_bucket(s3_store), Key=f"{repo.prefix}/model/weights.bin")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag: 12 MiB in three 5 MiB parts
    small_head = client.head_object(Bucket=_bucket(s3_store), Key=f"{repo.prefix}/model/config.json")
    assert "-" not in small_head["ETag"]
    assert small_head["ContentType"] == "application/json"

    local = repo.download_artifacts("model", str(tmp_path / "dl"))
    assert Path(local, "weights.bin").read_bytes() == big.read_bytes()
    assert not [p for p in Path(local).iterdir() if p.name not in ("weights.bin", "config.json")]  # no temp files


def test_presigned_multipart_flow_with_plain_http(s3_store: ObjectStore) -> None:
    """What the proxy's mpu/create → PUT parts → mpu/complete endpoints let an MLflow client do."""
    repo = S3ArtifactRepository(s3_store.root_uri)
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(MiB)]
    upload_id, credentials = repo.create_multipart_upload("big/model.bin", num_parts=3)
    assert [c.part_number for c in credentials] == [1, 2, 3]

    uploaded = []
    for credential, data in zip(credentials, parts, strict=True):
        response = requests.put(credential.url, data=data, headers=credential.headers, timeout=30)
        assert response.status_code == 200
        uploaded.append(UploadedPart(credential.part_number, response.headers["ETag"], credential.url))
    assert repo.list_artifacts("big") == []  # nothing visible before completion

    random.shuffle(uploaded)  # clients may report parts in any order
    repo.complete_multipart_upload("big/model.bin", upload_id, uploaded)
    assert repo.file_size("big/model.bin") == 11 * MiB
    with repo.open_read("big/model.bin") as stream:
        assert stream.read() == b"".join(parts)
    assert _pending_uploads(_bucket(s3_store)) == []


def test_aborted_multipart_upload_leaves_nothing(s3_store: ObjectStore) -> None:
    repo = S3ArtifactRepository(s3_store.root_uri)
    upload_id, credentials = repo.create_multipart_upload("big/model.bin", num_parts=2)
    assert requests.put(credentials[0].url, data=os.urandom(5 * MiB), timeout=30).status_code == 200
    assert _pending_uploads(_bucket(s3_store)) == [f"{repo.prefix}/big/model.bin"]
    repo.abort_multipart_upload("big/model.bin", upload_id)

    assert _pending_uploads(_bucket(s3_store)) == []
    assert s3_store.all_keys() == []


def test_multipart_requests_are_validated(s3_store: ObjectStore) -> None:
    repo = S3ArtifactRepository(s3_store.root_uri)
    assert _error(lambda: repo.create_multipart_upload("a.bin", num_parts=0)) == "INVALID_PARAMETER_VALUE"
    assert _error(lambda: repo.create_multipart_upload("a.bin", num_parts=10_001)) == "INVALID_PARAMETER_VALUE"
    assert _error(lambda: repo.create_multipart_upload("../a.bin", num_parts=1)) == "INVALID_PARAMETER_VALUE"
    assert _error(lambda: repo.create_multipart_upload("dir/", num_parts=1)) == "INVALID_PARAMETER_VALUE"
    assert _error(lambda: repo.presigned_download("%2E%2E/x")) == "INVALID_PARAMETER_VALUE"
    assert _pending_uploads(_bucket(s3_store)) == []


def test_presigned_download_supports_ranges(s3_store: ObjectStore) -> None:
    repo = S3ArtifactRepository(s3_store.root_uri)
    with repo.open_write("out/data.bin") as sink:
        sink.write(b"0123456789")
    presigned = repo.presigned_download("out/data.bin", expiration=60)
    assert presigned.file_size == 10
    assert requests.get(presigned.url, headers=presigned.headers, timeout=10).content == b"0123456789"
    ranged = requests.get(presigned.url, headers={"Range": "bytes=2-4"}, timeout=10)
    assert (ranged.status_code, ranged.content) == (206, b"234")
    assert _error(lambda: repo.presigned_download("out/missing.bin")) == "RESOURCE_DOES_NOT_EXIST"


def test_open_write_failure_aborts_the_multipart_upload(s3_store: ObjectStore) -> None:
    repo = S3ArtifactRepository(s3_store.root_uri)
    repo.part_size = 5 * MiB
    with pytest.raises(OSError), repo.open_write("stream.bin") as sink:
        for _ in range(12):
            sink.write(b"x" * MiB)
        raise OSError("client went away")
    assert _pending_uploads(_bucket(s3_store)) == []
    assert s3_store.all_keys() == []


def test_delete_works_in_batches_and_aborts_unfinished_uploads(s3_store: ObjectStore) -> None:
    repo = S3ArtifactRepository(s3_store.root_uri)
    repo.delete_batch_size = 10  # 25 objects: three DeleteObjects calls
    for i in range(25):
        s3_store.put_raw(f"{repo.prefix}/d{i % 3}/f{i}", b"x")
    repo.create_multipart_upload("d0/unfinished.bin", num_parts=1)
    neighbour = S3ArtifactRepository(s3_store.root_uri.rsplit("/", 2)[0] + "/other/artifacts")
    neighbour.create_multipart_upload("keep.bin", num_parts=1)

    repo.delete_artifacts()
    assert s3_store.all_keys() == []
    assert _pending_uploads(_bucket(s3_store)) == [f"{neighbour.prefix}/keep.bin"]


def test_directory_markers_and_dot_dot_keys(s3_store: ObjectStore, tmp_path: Path) -> None:
    repo = S3ArtifactRepository(s3_store.root_uri)
    s3_store.put_raw(f"{repo.prefix}/d/", b"")  # a "folder" made by a console
    s3_store.put_raw(f"{repo.prefix}/d/f.txt", b"f")
    assert [(f.path, f.is_dir) for f in repo.list_artifacts()] == [("d", True)]
    assert [f.path for f in repo.list_artifacts("d")] == ["d/f.txt"]
    assert os.listdir(repo.download_artifacts("d", str(tmp_path / "dl"))) == ["f.txt"]

    s3_store.put_raw(f"{repo.prefix}/evil/../../../escape.txt", b"x")  # S3 keys may contain '..' segments
    assert _error(lambda: repo.download_artifacts("evil", str(tmp_path / "dl2"))) == "INVALID_PARAMETER_VALUE"
    assert not list(tmp_path.rglob("escape.txt"))


def test_upload_of_2000_small_files(s3_store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "many"
    for i in range(2000):
        sub = source / f"shard{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i}.txt").write_text(str(i))
    repo = S3ArtifactRepository(s3_store.root_uri)
    started = time.perf_counter()
    repo.log_artifacts(str(source), "many")
    elapsed = time.perf_counter() - started
    keys = s3_store.all_keys()
    assert len(keys) == 2000
    assert f"{repo.prefix}/many/shard07/1007.txt" in keys
    assert len(repo.list_artifacts("many")) == 20
    assert elapsed < 60, f"2,000 uploads took {elapsed:.1f} s"


def test_settings_from_environment(s3_store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = os.environ.pop("MLTRAIL_S3_ENDPOINT_URL")
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)  # MLflow's name works as a fallback
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", '{"Metadata": {"team": "vision"}}')
    monkeypatch.setenv("MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE", "path")
    repo = S3ArtifactRepository(s3_store.root_uri)
    assert s3_client().meta.config.s3["addressing_style"] == "path"
    (tmp_path / "a.txt").write_text("a")
    repo.log_artifact(str(tmp_path / "a.txt"))
    head = s3_client().head_object(Bucket=_bucket(s3_store), Key=f"{repo.prefix}/a.txt")
    assert head["Metadata"] == {"team": "vision"}

    monkeypatch.setenv("MLTRAIL_S3_UPLOAD_EXTRA_ARGS", "not json")
    assert _error(lambda: S3ArtifactRepository(s3_store.root_uri)) == "INVALID_PARAMETER_VALUE"


def test_bad_uris_and_missing_buckets(s3_env: str) -> None:
    assert _error(lambda: S3ArtifactRepository("s3:///no-bucket")) == "INVALID_PARAMETER_VALUE"
    repo = S3ArtifactRepository("s3://mltrail-bucket-that-does-not-exist/x")
    assert _error(repo.list_artifacts) == "RESOURCE_DOES_NOT_EXIST"
    assert _error(lambda: repo.open_read("a.txt")) == "RESOURCE_DOES_NOT_EXIST"
