"""The shipped example runs and records what its docstring promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mltrail

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_demo.py"


def test_train_demo(tracking_uri: str, tmp_path: Path) -> None:
    env = {**os.environ, "MLTRAIL_TRACKING_URI": tracking_uri}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "50"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    client = mltrail.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("train-demo")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["steps"] == "50"
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 50
    assert run.data.metrics["accuracy"] > 0.7
    files = {f.path for d in ("model", "plots") for f in client.list_artifacts(run.info.run_id, d)}
    assert files == {"model/weights.json", "model/weights.npy", "plots/loss.png", "plots/loss.svg"}
