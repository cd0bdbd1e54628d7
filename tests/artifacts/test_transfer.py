"""The shared transfer helpers: bounded concurrency, progress bars, directory walks, streamed parts and ranged
reads. Store-independent, so they run against in-process collaborators."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import IO

import pytest

from concurrency import Overlap
from mltrail.artifacts import transfer
from mltrail.errors import MltrailException


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_concurrently_bounds_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_ARTIFACT_TRANSFER_WORKERS", "4")
    overlap = Overlap()
    done: list[int] = []

    def work(item: int) -> None:
        with overlap:
            time.sleep(0.01)
        done.append(item)

    transfer.run_concurrently(list(range(40)), work, desc="test")
    assert sorted(done) == list(range(40))
    assert 2 <= overlap.most <= 4


def test_run_concurrently_raises_the_first_failure_and_cancels_the_rest() -> None:
    started: list[int] = []

    def work(item: int) -> None:
        started.append(item)
        if item == 3:
            raise MltrailException.invalid_parameter("bad file 3")
        time.sleep(0.02)

    with pytest.raises(MltrailException, match="bad file 3"):
        transfer.run_concurrently(list(range(500)), work, desc="test", workers=4)
    assert len(started) < 500


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    transfer.run_concurrently([1, 2, 3], lambda item: None, desc="Uploading model")
    assert quiet.getvalue() == ""

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    transfer.run_concurrently([1, 2, 3], lambda item: None, desc="Uploading model")
    assert "Uploading model" in terminal.getvalue()
    assert "| 0/3 [" in terminal.getvalue()  # a bar counting files (cleared when done)

    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    silenced = _Terminal()
    monkeypatch.setattr("sys.stderr", silenced)
    transfer.run_concurrently([1, 2, 3], lambda item: None, desc="Uploading model")
    assert silenced.getvalue() == ""


def test_files_under_maps_each_file_to_its_artifact_directory(tmp_path: Path) -> None:
    for rel in ("b.txt", "a/x.txt", "a/deep/y.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    files = transfer.files_under(str(tmp_path), "model")
    assert [(Path(f.path).relative_to(tmp_path).as_posix(), f.artifact_dir) for f in files] == [
        ("b.txt", "model"),
        ("a/x.txt", "model/a"),
        ("a/deep/y.txt", "model/a/deep"),
    ]
    assert [f.artifact_dir for f in transfer.files_under(str(tmp_path / "a"))] == [None, "deep"]
    with pytest.raises(MltrailException):
        transfer.files_under(str(tmp_path / "b.txt"))
    with pytest.raises(MltrailException):
        transfer.files_under(str(tmp_path), "../up")


def test_local_destination_refuses_escapes(tmp_path: Path) -> None:
    assert transfer.local_destination(str(tmp_path), "a/./b.txt") == str(tmp_path / "a" / "b.txt")
    for bad in ("../x", "a/../../x", "/etc/passwd", "..%2Fx"):
        with pytest.raises(MltrailException):
            transfer.local_destination(str(tmp_path), bad)


def test_atomic_local_file_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    with pytest.raises(RuntimeError), transfer.atomic_local_file(str(target)) as sink:
        sink.write(b"half")
        raise RuntimeError("network died")
    assert list((tmp_path / "sub").iterdir()) == []
    with transfer.atomic_local_file(str(target)) as sink:
        sink.write(b"whole")
    assert target.read_bytes() == b"whole"


class _RecordingSink:
    """A PartSink that keeps what a store would receive."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.data = bytearray()

    def put_whole(self, data: bytes) -> None:
        self.events.append(("whole", len(data)))
        self.data += data

    def start(self) -> None:
        self.events.append(("start", 0))

    def upload_part(self, part_number: int, data: bytes) -> None:
        self.events.append((f"part{part_number}", len(data)))
        self.data += data

    def complete(self) -> None:
        self.events.append(("complete", 0))

    def abort(self) -> None:
        self.events.append(("abort", 0))


def test_streamed_parts_cut_writes_into_parts_of_bounded_size() -> None:
    sink = _RecordingSink()
    with transfer.streamed_parts(sink, part_size=10) as writer:
        for piece in (b"abc" * 4, b"x" * 7, memoryview(b"0123456789")):
            writer.write(piece)
    assert sink.events == [("start", 0), ("part1", 10), ("part2", 10), ("part3", 9), ("complete", 0)]
    assert bytes(sink.data) == b"abc" * 4 + b"x" * 7 + b"0123456789"


def test_streamed_parts_small_data_is_one_put_and_failures_abort() -> None:
    small = _RecordingSink()
    with transfer.streamed_parts(small, part_size=10) as writer:
        writer.write(b"0123456789")  # exactly one part: no multipart upload at all
    assert small.events == [("whole", 10)]

    empty = _RecordingSink()
    with transfer.streamed_parts(empty, part_size=10):
        pass
    assert empty.events == [("whole", 0)]

    failed = _RecordingSink()
    with pytest.raises(ValueError), transfer.streamed_parts(failed, part_size=10) as writer:
        writer.write(b"y" * 25)
        raise ValueError("producer failed")
    assert failed.events[-1] == ("abort", 0)
    assert ("complete", 0) not in failed.events

    before_start = _RecordingSink()
    with pytest.raises(ValueError), transfer.streamed_parts(before_start, part_size=10) as writer:
        writer.write(b"y" * 5)
        raise ValueError("producer failed")
    assert before_start.events == []  # nothing was sent, nothing to abort


def test_ranged_reader_opens_one_request_per_seek() -> None:
    data = bytes(range(256)) * 40
    opened: list[int] = []

    def open_at(offset: int) -> IO[bytes]:
        opened.append(offset)
        return io.BytesIO(data[offset:])

    reader = transfer.RangedReader(len(data), open_at)
    assert reader.read(5) == data[:5]
    assert reader.read(5) == data[5:10]
    reader.seek(10)  # already there: the open response is kept
    reader.seek(-3, io.SEEK_END)
    assert reader.read() == data[-3:]
    assert reader.read(1) == b""
    reader.seek(1000)
    assert reader.read(4) == data[1000:1004]
    assert opened == [0, len(data) - 3, 1000]
    with pytest.raises(ValueError):
        reader.seek(-1)
