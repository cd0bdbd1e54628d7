"""``mltrail experiments`` and ``mltrail runs`` through click's CliRunner against real stores."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import mltrail
from mltrail.cli import cli


@pytest.fixture
def invoke(tracking_uri: str):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str, expect: int = 0) -> str:
        result = runner.invoke(cli, [*args, "--tracking-uri", tracking_uri])
        assert result.exit_code == expect, result.output
        return result.output

    return run


def test_experiment_lifecycle(invoke) -> None:  # type: ignore[no-untyped-def]
    created = json.loads(invoke("experiments", "create", "-n", "cli-exp", "--json"))
    experiment_id = created["experiment_id"]
    assert invoke("experiments", "create", "-n", "cli-exp", expect=1).startswith("Error (RESOURCE_ALREADY_EXISTS):")
    table = invoke("experiments", "search")
    header, rule, *rows = table.splitlines()
    assert header.split()[:3] == ["Experiment", "Id", "Name"] and set(rule) <= {"-", " "}
    assert any(row.split()[:2] == [experiment_id, "cli-exp"] for row in rows)
    invoke("experiments", "rename", "-x", experiment_id, "--new-name", "renamed")
    invoke("experiments", "delete", "-x", experiment_id)
    active = json.loads(invoke("experiments", "search", "--json"))
    assert experiment_id not in [e["experiment_id"] for e in active]
    deleted = json.loads(invoke("experiments", "search", "--view", "deleted_only", "--json"))
    assert [(e["experiment_id"], e["name"], e["lifecycle_stage"]) for e in deleted] == [
        (experiment_id, "renamed", "deleted")
    ]
    assert "restored" in invoke("experiments", "restore", "-x", experiment_id)
    assert mltrail.get_experiment(experiment_id).lifecycle_stage == "active"


def test_errors_are_one_line_with_the_code(tracking_uri: str) -> None:
    result = CliRunner().invoke(cli, ["experiments", "delete", "-x", "98765", "--tracking-uri", tracking_uri])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith("Error (RESOURCE_DOES_NOT_EXIST):")
    result = CliRunner().invoke(cli, ["runs", "describe", "--run-id", "ab" * 16, "--tracking-uri", tracking_uri])
    assert result.exit_code == 1 and result.output.startswith("Error (RESOURCE_DOES_NOT_EXIST):")
    assert "Traceback" not in result.output


def test_runs_commands(invoke, tracking_uri: str) -> None:  # type: ignore[no-untyped-def]
    with mltrail.start_run(run_name="cli-run") as run:
        mltrail.log_param("lr", "0.1")
        mltrail.log_metric("loss", 0.25)
    run_id = run.info.run_id
    listing = invoke("runs", "list", "--experiment-id", "0")
    assert any(run_id in line and "cli-run" in line and "FINISHED" in line for line in listing.splitlines())
    described = json.loads(invoke("runs", "describe", "--run-id", run_id, "--json"))
    assert described["info"]["run_id"] == run_id and described["info"]["status"] == "FINISHED"
    assert described["data"]["metrics"] == {"loss": 0.25} and described["data"]["params"] == {"lr": "0.1"}
    text = invoke("runs", "describe", "--run-id", run_id)
    assert "loss" in text and "0.25" in text and "cli-run" in text
    invoke("runs", "delete", "--run-id", run_id)
    assert json.loads(invoke("runs", "list", "--experiment-id", "0", "--json")) == []
    deleted = json.loads(invoke("runs", "list", "--experiment-id", "0", "-v", "deleted_only", "--json"))
    assert [r["info"]["run_id"] for r in deleted] == [run_id]
    invoke("runs", "restore", "--run-id", run_id)
    assert mltrail.get_run(run_id).info.lifecycle_stage == "active"


def test_tracking_uri_from_environment(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mltrail.create_experiment("env-exp")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    result = CliRunner().invoke(cli, ["experiments", "search", "--json"])
    assert result.exit_code == 0, result.output
    assert "env-exp" in [e["name"] for e in json.loads(result.output)]
