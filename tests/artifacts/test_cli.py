"""``mltrail artifacts`` against a real directory tracking store, with run artifacts on a local disk or in S3
(moto), and ``mltrail gc`` removing a deleted run's objects from the bucket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mltrail import config
from mltrail.cli.artifacts import artifacts
from mltrail.cli.gc import gc
from mltrail.client.client import TrackingClient

from .conftest import ObjectStore


@pytest.fixture(autouse=True)
def reset_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "_tracking_uri", None)  # the CLI sets it for proxied artifact roots


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(artifacts, list(args), catch_exceptions=False)


@pytest.fixture(params=["local", "s3"])
def run_setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(tracking URI, run id) of a run whose artifact root is a local directory or an S3 prefix."""
    tracking_uri = str(tmp_path / "mlruns")
    location = None
    if request.param == "s3":
        store: ObjectStore = request.getfixturevalue("s3_store")
        location = store.root_uri
    client = TrackingClient(tracking_uri)
    experiment_id = client.create_experiment("cli", artifact_location=location)
    return tracking_uri, client.create_run(experiment_id).info.run_id


def test_log_list_and_download(run_setup: tuple[str, str], tmp_path: Path) -> None:
    tracking_uri, run_id = run_setup
    common = ["--run-id", run_id, "--tracking-uri", tracking_uri]
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.txt").write_text("bb")
    (tmp_path / "single.bin").write_bytes(b"\x00" * 10)

    result = _invoke("log-artifacts", "--local-dir", str(source), "--artifact-path", "model", *common)
    assert result.exit_code == 0, result.output
    assert "to artifact_path=model" in result.output
    assert _invoke("log-artifact", "--local-file", str(tmp_path / "single.bin"), *common).exit_code == 0

    listed = _invoke("list", *common)
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == ["Path", "Type", "Size"]
    assert [line.split() for line in lines[2:]] == [["model", "dir"], ["single.bin", "file", "10"]]
    as_json = json.loads(_invoke("list", "--artifact-path", "model", "--json", *common).output)
    assert as_json == [
        {"path": "model/a.txt", "is_dir": False, "file_size": 1},
        {"path": "model/sub", "is_dir": True, "file_size": None},
    ]

    downloaded = _invoke("download", "--artifact-path", "model", "--dst-path", str(tmp_path / "dl"), *common)
    assert downloaded.exit_code == 0
    local = Path(downloaded.output.strip())
    assert local == tmp_path / "dl" / "model"
    assert (local / "sub" / "b.txt").read_text() == "bb"
    everything = Path(_invoke("download", "--dst-path", str(tmp_path / "all"), *common).output.strip())
    assert sorted(p.name for p in everything.iterdir()) == ["model", "single.bin"]


def test_download_by_artifact_uri(s3_store: ObjectStore, tmp_path: Path) -> None:
    s3_store.put_raw(s3_store.repo.prefix + "/plots/loss.png", b"png")
    result = _invoke("download", "--artifact-uri", s3_store.root_uri, "-a", "plots", "-d", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plots" / "loss.png").read_bytes() == b"png"


def test_errors_are_one_line_with_the_error_code(tmp_path: Path) -> None:
    tracking_uri = str(tmp_path / "mlruns")
    client = TrackingClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("errors")).info.run_id
    (tmp_path / "f.txt").write_text("x")

    cases = [
        (["list", "--run-id", "0" * 32, "--tracking-uri", tracking_uri], "RESOURCE_DOES_NOT_EXIST"),
        (["list", "--run-id", run_id, "--artifact-uri", "s3://b/x"], "INVALID_PARAMETER_VALUE"),
        (["download", "--tracking-uri", tracking_uri], "INVALID_PARAMETER_VALUE"),
        (["download", "--run-id", run_id, "-a", "missing", "--tracking-uri", tracking_uri], "RESOURCE_DOES_NOT_EXIST"),
        (
            [
                "log-artifact",
                "-l",
                str(tmp_path / "f.txt"),
                "-r",
                run_id,
                "-a",
                "../../x",
                "--tracking-uri",
                tracking_uri,
            ],
            "INVALID_PARAMETER_VALUE",
        ),
    ]
    for args, code in cases:
        result = CliRunner().invoke(artifacts, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith(f"Error ({code}): "), result.output
        assert len(result.output.strip().splitlines()) == 1
        assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_gc_removes_a_deleted_runs_objects_from_the_bucket(s3_store: ObjectStore, tmp_path: Path) -> None:
    tracking_uri = str(tmp_path / "mlruns")
    client = TrackingClient(tracking_uri)
    experiment_id = client.create_experiment("gc", artifact_location=s3_store.root_uri)
    doomed, kept = (client.create_run(experiment_id).info.run_id for _ in range(2))
    (tmp_path / "src" / "deep").mkdir(parents=True)
    (tmp_path / "src" / "deep" / "w.bin").write_bytes(b"w" * 100)
    for run_id in (doomed, kept):
        logged = _invoke("log-artifacts", "-l", str(tmp_path / "src"), "-r", run_id, "--tracking-uri", tracking_uri)
        assert logged.exit_code == 0, logged.output
    client.delete_run(doomed)

    result = CliRunner().invoke(gc, ["--backend-store-uri", tracking_uri], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert s3_store.all_keys() == [f"{s3_store.repo.prefix}/{kept}/artifacts/deep/w.bin"]
