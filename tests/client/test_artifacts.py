"""Artifacts through the client and the local repository: files, trees, text/dict/image helpers, safety."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import mltrail
from mltrail.artifacts.local import LocalArtifactRepository
from mltrail.artifacts.registry import get_artifact_repository
from mltrail.errors import MltrailException

TRAVERSALS = ["../outside.txt", "a/../../outside.txt", "%2e%2e/outside.txt", "%252e%252e/x", "/etc/passwd", "a\\..\\b"]


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "model"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "weights.bin").write_bytes(b"\x00\x01" * 100)
    (tree / "sub" / "config.json").write_text("{}")
    (tree / "sub" / "deeper" / "notes.txt").write_text("hello")
    return tree


def test_log_list_download_through_the_fluent_api(tracking_uri: str, local_tree: Path, tmp_path: Path) -> None:
    with mltrail.start_run() as run:
        mltrail.log_artifact(str(local_tree / "weights.bin"))
        mltrail.log_artifact(str(local_tree / "weights.bin"), "checkpoints/epoch1")
        mltrail.log_artifacts(str(local_tree), "model")
        mltrail.log_artifact(str(local_tree / "sub"))  # a directory keeps its name, like MLflow
        assert mltrail.get_artifact_uri("model/weights.bin").endswith("/model/weights.bin")
    client = mltrail.MlflowClient()
    run_id = run.info.run_id
    top = client.list_artifacts(run_id)
    assert [(f.path, f.is_dir, f.file_size) for f in top] == [
        ("checkpoints", True, None),
        ("model", True, None),
        ("sub", True, None),
        ("weights.bin", False, 200),
    ]
    assert [f.path for f in client.list_artifacts(run_id, "model/sub")] == ["model/sub/config.json", "model/sub/deeper"]
    assert client.list_artifacts(run_id, "missing") == []
    downloaded = client.download_artifacts(run_id, "model", str(tmp_path / "out"))
    assert Path(downloaded, "sub", "deeper", "notes.txt").read_text() == "hello"
    single = client.download_artifacts(run_id, "checkpoints/epoch1/weights.bin", str(tmp_path / "one"))
    assert Path(single).read_bytes() == b"\x00\x01" * 100
    with pytest.raises(MltrailException) as caught:
        client.download_artifacts(run_id, "nope.txt", str(tmp_path / "none"))
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_text_dict_and_image_helpers(tracking_uri: str, tmp_path: Path) -> None:
    gradient = np.linspace(0, 1, 32 * 48 * 3).reshape(32, 48, 3)
    with mltrail.start_run() as run:
        mltrail.log_text("héllo\n", "notes/readme.txt")
        mltrail.log_dict({"b": [1, 2], "a": {"x": 1.5}}, "config.json")
        mltrail.log_dict({"b": [1, 2]}, "config.yaml")
        mltrail.log_image(gradient, "plots/gradient.png")
        mltrail.log_image((gradient[:, :, 0] * 255).astype(np.uint8), "plots/grey.png")
        mltrail.log_image(Image.new("RGB", (5, 4), (255, 0, 0)), "plots/red.jpg")
    out = Path(mltrail.MlflowClient().download_artifacts(run.info.run_id, "", str(tmp_path / "dl")))
    assert (out / "notes" / "readme.txt").read_text(encoding="utf-8") == "héllo\n"
    assert json.loads((out / "config.json").read_text()) == {"b": [1, 2], "a": {"x": 1.5}}
    assert yaml.safe_load((out / "config.yaml").read_text()) == {"b": [1, 2]}
    with Image.open(out / "plots" / "gradient.png") as png:
        assert png.mode == "RGB" and png.size == (48, 32)
        assert np.array_equal(np.asarray(png), np.round(gradient * 255).astype(np.uint8))
    with Image.open(out / "plots" / "grey.png") as grey:
        assert grey.mode == "L" and np.array_equal(np.asarray(grey), (gradient[:, :, 0] * 255).astype(np.uint8))
    with Image.open(out / "plots" / "red.jpg") as jpg:
        assert jpg.format == "JPEG" and jpg.size == (5, 4)


def test_bad_images_are_refused(tracking_uri: str) -> None:
    with mltrail.start_run():
        for image in (np.full((4, 4), 2.0), np.full((4, 4), 300), np.zeros((4, 4, 5)), "not an image"):
            with pytest.raises(MltrailException) as caught:
                mltrail.log_image(image, "bad.png")
            assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused_everywhere(tmp_path: Path, path: str) -> None:
    repo = LocalArtifactRepository((tmp_path / "root").as_uri())
    source = tmp_path / "f.txt"
    source.write_text("x")
    attempts = [
        lambda: repo.log_artifact(str(source), path),
        lambda: repo.log_artifacts(str(tmp_path), path),
        lambda: repo.list_artifacts(path),
        lambda: repo.download_artifacts(path, str(tmp_path / "dst")),
        lambda: repo.delete_artifacts(path),
        lambda: repo.open_read(path),
        lambda: repo.file_size(path),
        lambda: repo.open_write(path).__enter__(),
    ]
    for attempt in attempts:
        with pytest.raises(MltrailException) as caught:
            attempt()
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert not (tmp_path / "outside.txt").exists()


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("k")
    os.symlink(secret, root / "link")
    repo = LocalArtifactRepository(str(root))
    with pytest.raises(MltrailException, match="Invalid path"):
        repo.open_read("link/key")
    with pytest.raises(MltrailException, match="Invalid path"):
        repo.open_write("link/new").__enter__()
    assert not (secret / "new").exists()


def test_open_write_is_atomic(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(str(tmp_path / "root"))
    with repo.open_write("a/b.bin") as sink:
        sink.write(b"first")
    with pytest.raises(RuntimeError), repo.open_write("a/b.bin") as sink:
        sink.write(b"half")
        raise RuntimeError
    assert repo.open_read("a/b.bin").read() == b"first"
    assert os.listdir(tmp_path / "root" / "a") == ["b.bin"]  # no temporary file left behind
    assert repo.file_size("a/b.bin") == 5 and repo.file_size("a") is None
    with pytest.raises(MltrailException) as caught:
        repo.file_size("missing")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    repo.delete_artifacts("a")
    assert repo.list_artifacts() == []


def test_streamed_read_and_write(tmp_path: Path) -> None:
    repo = get_artifact_repository(str(tmp_path / "root"))
    payload = os.urandom(3 * 1024 * 1024 + 7)
    with repo.open_write("big/blob") as sink:
        stream = io.BytesIO(payload)
        while chunk := stream.read(65536):
            sink.write(chunk)
    with repo.open_read("big/blob") as source:
        assert source.read() == payload


def test_repository_by_scheme(tmp_path: Path) -> None:
    assert isinstance(get_artifact_repository(str(tmp_path)), LocalArtifactRepository)
    assert get_artifact_repository((tmp_path / "x").as_uri()).root == str(tmp_path / "x")
    for uri in ("hdfs://namenode/path", "ftp://host/x"):
        with pytest.raises(MltrailException) as caught:
            get_artifact_repository(uri)
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MltrailException):
        LocalArtifactRepository("file://otherhost/path")
