"""Where things live, the MLflow virtual environment, the two implementations and the machine's facts."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WORKLOADS_DIR = BENCH_DIR / "workloads"
WORK_DIR = BENCH_DIR / ".work"  # git-ignored: temp dirs, caches, logs
MLFLOW_VERSION = "3.17.2"
MLFLOW_VENV = BENCH_DIR / ".venvs" / f"mlflow-{MLFLOW_VERSION}"
# psycopg (3) because SQLAlchemy 2.1 maps a plain postgresql:// URL to it; psycopg2-binary for older habits.
MLFLOW_VENV_PACKAGES = (f"mlflow=={MLFLOW_VERSION}", "psycopg2-binary", "psycopg[binary]", "psutil")

# Variables that would point either library somewhere else than the workload decides.
_SCRUBBED_PREFIXES = ("MLTRAIL_", "MLFLOW_", "_MLFLOW_")
_COMMON_ENV = {
    "MLFLOW_ALLOW_FILE_STORE": "true",  # MLflow ≥3.13 refuses its file store without it
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLTRAIL_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class Impl:
    """One side of the comparison: its name and the interpreter that imports it."""

    name: str
    python: Path

    def executable(self, command: str) -> Path:
        """A console script installed next to the interpreter (``mltrail``, ``mlflow``)."""
        return self.python.parent / command


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(_COMMON_ENV)
    env.update(extra or {})
    return env


def _venv_python() -> Path:
    return MLFLOW_VENV / "bin" / "python"


def _installed_mlflow_version() -> str | None:
    if not _venv_python().exists():
        return None
    result = subprocess.run(
        [str(_venv_python()), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_mlflow_venv() -> Impl:
    """Create (or reuse, if the version matches) the MLflow venv; pip's chatter goes to a log file."""
    if _installed_mlflow_version() != MLFLOW_VERSION:
        print(f"[bench] creating {MLFLOW_VENV} (pip install {' '.join(MLFLOW_VENV_PACKAGES)})", flush=True)
        shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        log = WORK_DIR / "logs" / "mlflow-venv.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            subprocess.run(
                [str(_venv_python()), "-m", "pip", "install", *MLFLOW_VENV_PACKAGES],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
            )
    return mlflow_impl()


def mlflow_impl() -> Impl:
    return Impl("mlflow", _venv_python())


def mltrail_impl() -> Impl:
    return Impl("mltrail", Path(sys.executable))


def _package_version(impl: Impl, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    result = subprocess.run([str(impl.python), "-c", code], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _postgres_version() -> str:
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "SHOW server_version"], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else "unavailable"


def machine_facts(mltrail: Impl, mlflow: Impl) -> dict[str, str]:
    return {
        "CPU": f"{os.cpu_count()} cores, {_cpu_model()}",
        "RAM": f"{_memory_gib():.1f} GiB",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "mltrail": _package_version(mltrail, "mltrail"),
        "MLflow": _package_version(mlflow, "mlflow"),
        "SQLAlchemy (mltrail/MLflow)": "/".join(_package_version(impl, "sqlalchemy") for impl in (mltrail, mlflow)),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": _postgres_version(),
        "load average at start (1/5 min)": "{:.1f} / {:.1f}".format(*os.getloadavg()[:2]),
    }
