"""System metrics: opt-in sampling thread logging MLflow's ``system/*`` metrics into the active run."""

from __future__ import annotations

import logging
import sys
import time

import pytest

import mltrail
from mltrail.client import system_metrics

BASE_KEYS = {
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_usage_percentage",
    "system/disk_available_megabytes",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
}


@pytest.fixture(autouse=True)
def fast_sampling(monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> None:
    monkeypatch.setenv("MLTRAIL_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # NVML absent, whatever is installed here


def system_keys(run_id: str) -> set[str]:
    return {k for k in mltrail.get_run(run_id).data.metrics if k.startswith("system/")}


def test_metrics_are_sampled_while_the_run_is_active(tracking_uri: str) -> None:
    with mltrail.start_run(log_system_metrics=True) as run:
        time.sleep(1.1)
    client = mltrail.MlflowClient()
    assert system_keys(run.info.run_id) == BASE_KEYS  # and no system/gpu_* without NVML
    histories = {key: client.get_metric_history(run.info.run_id, key) for key in BASE_KEYS}
    steps = [m.step for m in histories["system/cpu_utilization_percentage"]]
    assert len(steps) >= 3
    assert steps == list(range(len(steps)))
    assert {len(h) for h in histories.values()} == {len(steps)}
    memory = histories["system/system_memory_usage_percentage"]
    assert all(0 < m.value <= 100 for m in memory)
    assert all(m.value > 0 for m in histories["system/disk_available_megabytes"])

    time.sleep(0.6)  # stopped with the run: no more points
    assert len(client.get_metric_history(run.info.run_id, "system/cpu_utilization_percentage")) == len(steps)


@pytest.mark.parametrize("variable", ["MLTRAIL_ENABLE_SYSTEM_METRICS_LOGGING", "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"])
def test_enabled_by_environment(tracking_uri: str, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "true")
    with mltrail.start_run() as run:
        time.sleep(0.5)
    assert system_keys(run.info.run_id) == BASE_KEYS


def test_off_by_default_and_argument_wins(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with mltrail.start_run() as default_run:
        time.sleep(0.5)
    monkeypatch.setenv("MLTRAIL_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    with mltrail.start_run(log_system_metrics=False) as refused:
        time.sleep(0.5)
    assert system_keys(default_run.info.run_id) == set()
    assert system_keys(refused.info.run_id) == set()


def test_without_psutil_the_run_goes_on(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)
    with caplog.at_level(logging.WARNING), mltrail.start_run(log_system_metrics=True) as run:
        mltrail.log_metric("loss", 1.0)
        time.sleep(0.4)
    assert "mltrail[system]" in caplog.text
    assert mltrail.get_run(run.info.run_id).data.metrics == {"loss": 1.0}


def test_no_nvml_means_no_gpu_sampler() -> None:
    assert system_metrics.GpuSampler.open() is None


def test_bad_interval_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRAIL_SYSTEM_METRICS_SAMPLING_INTERVAL", "soon")
    with pytest.raises(ValueError, match="SAMPLING_INTERVAL"):
        system_metrics.sampling_interval()
