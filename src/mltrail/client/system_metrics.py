"""System metrics: the machine's CPU, memory, disk, network and GPU usage, logged into a run while it is active.

Opt-in, as in MLflow: ``start_run(log_system_metrics=True)``, or ``MLTRAIL_ENABLE_SYSTEM_METRICS_LOGGING=true``
(``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` works too). A daemon thread samples every
``MLTRAIL_SYSTEM_METRICS_SAMPLING_INTERVAL`` seconds (default 10) and logs one point per metric, with a step
that counts the samples, through the client's background batching. Metric names are MLflow's
(``system/cpu_utilization_percentage``...); network counters are megabytes since the run started.

Needs ``psutil`` (``pip install 'mltrail[system]'``); without it a warning is logged and the run goes on. GPU
metrics (``system/gpu_<i>_...``) are added when NVML works (``pip install nvidia-ml-py``, an NVIDIA driver).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from mltrail import config
from mltrail.entities import Metric

if TYPE_CHECKING:
    from mltrail.client.client import TrackingClient

_log = logging.getLogger(__name__)

DEFAULT_SAMPLING_INTERVAL = 10.0
_MB = 1e6  # MLflow reports decimal megabytes


def enabled(log_system_metrics: bool | None) -> bool:
    """The ``start_run`` argument when given, else the environment (off by default)."""
    if log_system_metrics is not None:
        return bool(log_system_metrics)
    return config.get_env_bool("ENABLE_SYSTEM_METRICS_LOGGING")


def sampling_interval() -> float:
    value = config.get_env("SYSTEM_METRICS_SAMPLING_INTERVAL")
    try:
        interval = float(value) if value is not None else DEFAULT_SAMPLING_INTERVAL
    except ValueError:
        raise ValueError(f"SYSTEM_METRICS_SAMPLING_INTERVAL must be a number of seconds, got {value!r}") from None
    if interval <= 0:
        raise ValueError(f"SYSTEM_METRICS_SAMPLING_INTERVAL must be positive, got {value!r}")
    return interval


class GpuSampler:
    """Per-GPU utilisation, memory and power through NVML."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> GpuSampler | None:
        """None when NVML is not installed, or finds no driver or no GPU."""
        try:
            import pynvml

            pynvml.nvmlInit()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception as exc:  # ImportError, or NVMLError when there is no driver
            _log.debug("mltrail: no GPU metrics: %s", exc)
            return None
        return cls(pynvml, handles) if handles else None

    def sample(self) -> dict[str, float]:
        nvml, values = self._nvml, {}
        for i, handle in enumerate(self._handles):
            prefix = f"gpu_{i}_"
            # Each query separately: a GPU may not support one of them (power on some models).
            try:
                values[prefix + "utilization_percentage"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception as exc:
                _log.debug("mltrail: GPU %d utilisation unavailable: %s", i, exc)
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                values[prefix + "memory_usage_megabytes"] = memory.used / _MB
                values[prefix + "memory_usage_percentage"] = 100.0 * memory.used / memory.total
            except Exception as exc:
                _log.debug("mltrail: GPU %d memory unavailable: %s", i, exc)
            try:
                milliwatts = nvml.nvmlDeviceGetPowerUsage(handle)
                values[prefix + "power_usage_watts"] = milliwatts / 1000.0
                limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle)
                values[prefix + "power_usage_percentage"] = 100.0 * milliwatts / limit
            except Exception as exc:
                _log.debug("mltrail: GPU %d power unavailable: %s", i, exc)
        return values

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception as exc:
            _log.debug("mltrail: NVML shutdown failed: %s", exc)


class SystemMetricsMonitor:
    """Samples the machine every ``interval`` seconds and logs ``system/*`` metrics into ``run_id``."""

    def __init__(self, client: TrackingClient, run_id: str, interval: float | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.interval = interval or sampling_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._psutil: Any = None
        self._gpus: GpuSampler | None = None
        self._network_start: tuple[int, int] = (0, 0)

    def start(self) -> SystemMetricsMonitor | None:
        """Start sampling; None (with a warning) when psutil is missing."""
        try:
            import psutil
        except ImportError:
            _log.warning(
                "mltrail: system metrics need psutil: pip install 'mltrail[system]'. Run %s logs none.", self.run_id
            )
            return None
        self._psutil = psutil
        psutil.cpu_percent()  # the first reading only sets the reference point
        counters = psutil.net_io_counters()
        self._network_start = (counters.bytes_recv, counters.bytes_sent)
        self._gpus = GpuSampler.open()
        self._thread = threading.Thread(target=self._loop, name="mltrail-system-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling; returns once the thread has logged its last sample."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.interval + 5)
        if self._gpus is not None:
            self._gpus.close()
            self._gpus = None

    def sample(self) -> dict[str, float]:
        """One reading of every metric, by name without the ``system/`` prefix."""
        psutil = self._psutil
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage("/")
        network = psutil.net_io_counters()
        values = {
            "cpu_utilization_percentage": float(psutil.cpu_percent()),
            "system_memory_usage_megabytes": memory.used / _MB,
            "system_memory_usage_percentage": float(memory.percent),
            "disk_usage_megabytes": disk.used / _MB,
            "disk_usage_percentage": float(disk.percent),
            "disk_available_megabytes": disk.free / _MB,
            "network_receive_megabytes": (network.bytes_recv - self._network_start[0]) / _MB,
            "network_transmit_megabytes": (network.bytes_sent - self._network_start[1]) / _MB,
        }
        if self._gpus is not None:
            values.update(self._gpus.sample())
        return values

    def _loop(self) -> None:
        step = 0
        while not self._stop.wait(self.interval):
            try:
                timestamp = time.time_ns() // 1_000_000
                metrics = [Metric(f"system/{k}", v, timestamp, step) for k, v in self.sample().items()]
                self.client.log_batch(self.run_id, metrics=metrics)
            except Exception as exc:  # e.g. the run was deleted: stop rather than fail every interval
                _log.warning("mltrail: system metrics of run %s stopped: %s", self.run_id, exc)
                return
            step += 1
