"""Behaviour every object store repository shares, run against real S3 (moto), GCS and Azure Blob emulators."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from mltrail.artifacts.base import ArtifactRepository, MultipartArtifactRepository
from mltrail.errors import MltrailException

from .conftest import ObjectStore

MiB = 1024 * 1024


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "MLmodel": b"flavors: {}\n",
        "empty.txt": b"",
        "data/weights.bin": os.urandom(200_000),
        "data/nested/deep/notes é.txt": "ünïcode".encode(),
        "data/nested/x.json": b"{}",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_log_list_download_round_trip(object_store: ObjectStore, tmp_path: Path) -> None:
    repo = object_store.repo
    assert isinstance(repo, ArtifactRepository)
    assert isinstance(repo, MultipartArtifactRepository) == (object_store.kind == "s3")
    files = _make_tree(tmp_path / "model")
    (tmp_path / "top.txt").write_text("top")

    repo.log_artifacts(str(tmp_path / "model"), "model")
    repo.log_artifact(str(tmp_path / "top.txt"))

    assert [(f.path, f.is_dir, f.file_size) for f in repo.list_artifacts()] == [
        ("model", True, None),
        ("top.txt", False, 3),
    ]
    assert [(f.path, f.is_dir) for f in repo.list_artifacts("model")] == [
        ("model/MLmodel", False),
        ("model/data", True),
        ("model/empty.txt", False),
    ]
    assert [(f.path, f.is_dir) for f in repo.list_artifacts("model/data/nested/")] == [
        ("model/data/nested/deep", True),
        ("model/data/nested/x.json", False),
    ]
    assert repo.list_artifacts("missing") == []
    assert repo.list_artifacts("top.txt") == []  # a file has no children
    assert repo.file_size("model/data/weights.bin") == 200_000
    assert repo.file_size("model/empty.txt") == 0
    assert repo.file_size("model/data") is None

    local = repo.download_artifacts("model", str(tmp_path / "dl"))
    assert local == str(tmp_path / "dl" / "model")
    assert _tree(Path(local)) == files
    single = repo.download_artifacts("model/data/weights.bin", str(tmp_path / "one"))
    assert Path(single).read_bytes() == files["data/weights.bin"]
    everything = repo.download_artifacts("", str(tmp_path / "all"))
    assert sorted(_tree(Path(everything))) == ["model/" + k for k in sorted(files)] + ["top.txt"]


def test_open_read_streams_and_seeks_with_ranged_requests(object_store: ObjectStore) -> None:
    repo = object_store.repo
    data = os.urandom(3 * MiB + 17)
    with repo.open_write("blobs/data.bin") as sink:
        sink.write(data)

    with repo.open_read("blobs/data.bin") as stream:
        assert stream.read(10) == data[:10]
        assert stream.seek(2 * MiB) == 2 * MiB
        assert stream.read(100) == data[2 * MiB : 2 * MiB + 100]
        stream.seek(-5, io.SEEK_END)
        assert stream.read() == data[-5:]
        assert stream.read(10) == b""
        stream.seek(0)
        assert stream.read() == data


def test_open_write_publishes_only_when_the_block_succeeds(object_store: ObjectStore) -> None:
    repo = object_store.repo
    repo.part_size = 5 * MiB  # S3's smallest part: 11 MiB go up in three parts on every store
    chunk = os.urandom(MiB)
    with repo.open_write("out/model.bin") as sink:
        for _ in range(11):
            sink.write(chunk)
        assert not any(k.endswith("out/model.bin") for k in object_store.all_keys())  # not visible mid-upload
    assert repo.file_size("out/model.bin") == 11 * MiB
    with repo.open_read("out/model.bin") as stream:
        assert stream.read() == chunk * 11

    with pytest.raises(RuntimeError), repo.open_write("out/broken.bin") as sink:
        for _ in range(11):
            sink.write(chunk)
        raise RuntimeError("the producer failed")
    with pytest.raises(RuntimeError), repo.open_write("out/small.bin") as sink:
        sink.write(b"half")
        raise RuntimeError("the producer failed")
    assert [f.path for f in repo.list_artifacts("out")] == ["out/model.bin"]


def test_open_write_overwrites_and_needs_a_file_name(object_store: ObjectStore) -> None:
    repo = object_store.repo
    for text in (b"first", b"second"):
        with repo.open_write("notes.txt") as sink:
            sink.write(text)
    with repo.open_read("notes.txt") as stream:
        assert stream.read() == b"second"
    for bad in ("", "dir/"):
        with pytest.raises(MltrailException) as info, repo.open_write(bad):
            pass
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_delete_file_tree_and_whole_run_leaves_nothing(object_store: ObjectStore, tmp_path: Path) -> None:
    repo = object_store.repo
    for rel in ("data/a.txt", "data/ab.txt", "data/sub/c.txt", "data2/z.txt", "keep.txt"):
        with repo.open_write(rel) as sink:
            sink.write(rel.encode())
    neighbour_root = object_store.root_uri.rsplit("/", 2)[0] + "/other-run/artifacts"
    neighbour = type(repo)(neighbour_root)
    with neighbour.open_write("data/a.txt") as sink:
        sink.write(b"not mine")

    repo.delete_artifacts("data/a.txt")
    assert [f.path for f in repo.list_artifacts("data")] == ["data/ab.txt", "data/sub"]
    repo.delete_artifacts("data")  # a tree, but not its sibling "data2" that shares the prefix
    assert [f.path for f in repo.list_artifacts()] == ["data2", "keep.txt"]
    repo.delete_artifacts("missing/path")  # deleting nothing is not an error

    repo.delete_artifacts()  # what gc does with a run's artifact root
    assert repo.list_artifacts() == []
    remaining = object_store.all_keys()
    assert remaining == [neighbour.prefix + "/data/a.txt"]


def test_missing_artifacts_are_resource_does_not_exist(object_store: ObjectStore, tmp_path: Path) -> None:
    repo = object_store.repo
    with repo.open_write("dir/file.txt") as sink:
        sink.write(b"x")
    calls = [
        lambda: repo.download_artifacts("nope", str(tmp_path)),
        lambda: repo.open_read("nope.txt"),
        lambda: repo.open_read("dir"),
        lambda: repo.file_size("dir/nope.txt"),
    ]
    for call in calls:
        with pytest.raises(MltrailException) as info:
            call()
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "%2E%2E/x", "%252E%252E/secret", "/etc/passwd", "a\\b", "C:/x"])
def test_unsafe_paths_are_refused_everywhere(object_store: ObjectStore, tmp_path: Path, bad: str) -> None:
    repo = object_store.repo
    local = tmp_path / "f.txt"
    local.write_text("x")
    calls = [
        lambda: repo.list_artifacts(bad),
        lambda: repo.download_artifacts(bad, str(tmp_path / "dl")),
        lambda: repo.delete_artifacts(bad),
        lambda: repo.open_read(bad),
        lambda: repo.file_size(bad),
        lambda: repo.log_artifact(str(local), bad),
        lambda: repo.log_artifacts(str(tmp_path), bad),
        lambda: repo.open_write(bad).__enter__(),
    ]
    for call in calls:
        with pytest.raises(MltrailException) as info:
            call()
        assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert object_store.all_keys() == []


def test_hostile_keys_in_the_bucket_cannot_escape_the_download_directory(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    object_store.put_raw(object_store.repo.prefix + "/run/..%2F..%2Fescape.txt", b"x")
    object_store.put_raw(object_store.repo.prefix + "/run/ok.txt", b"fine")
    with pytest.raises(MltrailException) as info:
        object_store.repo.download_artifacts("run", str(tmp_path / "dst"))
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert not (tmp_path / "escape.txt").exists()
    assert not list(tmp_path.rglob("escape.txt"))


def test_log_artifacts_of_many_small_files(object_store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "many"
    for i in range(120):
        (source / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (source / f"d{i % 7}" / f"f{i}.txt").write_text(str(i))
    object_store.repo.log_artifacts(str(source), "many")
    assert len(object_store.all_keys()) == 120
    local = object_store.repo.download_artifacts("many", str(tmp_path / "back"))
    assert _tree(Path(local)) == _tree(source)
