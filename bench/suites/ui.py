"""Suite ``ui``: mltrail's web UI against MLflow's, in headless Chromium, each on its own server and data.

Each library populates its own SQLite database once (``workloads/ui_browser.py populate``, kept in
``bench/.work/cache``): 10,000 runs × 20 params × 20 metrics, and 10 runs of one spiky metric: 1,000,000 points
each for mltrail but 100,000 for MLflow, whose client writes about 5,000 points/s here (10 million points would
take it most of an hour; ``--quick``: 1,000 runs, 100,000 points each). MLflow's client writes the first 300
runs; ``bench/mlflow_fill.py`` adds the others as the same rows (its client would take most of an hour).
Per repeat, a private copy is served by ``<library> server`` and ``workloads/ui_browser.py measure`` drives
Chromium (Playwright, in mltrail's interpreter for both UIs).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench import mlflow_fill
from bench.environment import Impl, mltrail_impl
from bench.runner import Case, Measure, Target, run_workload
from bench.servers import serve
from bench.suites import Suite
from bench.suites.sql import CACHE_DIR, MLFLOW_CLIENT_RUNS, _code_version, _seal

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
_BUILD_TIMEOUT_S = 6 * 3600
RUNS_EXPERIMENT = "ui-bench"  # workloads/ui_browser.py's RUN_EXPERIMENT


@dataclass(frozen=True)
class Sizes:
    runs: int
    points: dict[str, int]  # points per long run, by implementation


FULL = Sizes(10_000, {"mltrail": 1_000_000, "mlflow": 100_000})
QUICK = Sizes(1_000, {"mltrail": 100_000, "mlflow": 100_000})


def _cached_database(impl: Impl, sizes: Sizes, workdir: Path) -> Path:
    """The library's populated database, built on first use (its population times are kept beside it)."""
    points = sizes.points[impl.name]
    key = f"ui_{impl.name}_{_code_version(impl)}_r{sizes.runs}_p{points}"
    database = CACHE_DIR / f"{key}.db"
    if database.exists():
        return database
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for stale in CACHE_DIR.glob(f"ui_{impl.name}_*_r{sizes.runs}_p{points}.*"):
        stale.unlink()
    partial = CACHE_DIR / f"{key}.db.partial"
    print(f"[ui] {impl.name} populates its UI database {key} (once)", flush=True)
    client_runs = min(sizes.runs, MLFLOW_CLIENT_RUNS) if impl.name == "mlflow" else sizes.runs
    args = ["populate", "--db-uri", f"sqlite:///{partial}", "--runs", client_runs, "--points", points]
    figures = run_workload(impl, "ui_browser.py", args, workdir, timeout=_BUILD_TIMEOUT_S)
    if client_runs < sizes.runs:
        mlflow_fill.complete_ui_runs(partial, RUNS_EXPERIMENT, sizes.runs)
    _seal(partial)
    partial.rename(database)
    (CACHE_DIR / f"{key}.json").write_text(json.dumps(figures))
    return database


def _execute(sizes: Sizes, quick: bool):
    def execute(impl: Impl, workdir: Path) -> dict:
        shutil.copyfile(_cached_database(impl, sizes, workdir), workdir / "server.db")
        with serve(impl, workdir, 1) as server:
            args = ["measure", "--ui", impl.name, "--url", server.url, "--samples", 1]
            if not quick:
                args += ["--screenshots", SCREENSHOTS]
            return run_workload(mltrail_impl(), "ui_browser.py", args, workdir)

    return execute


def _cases(quick: bool) -> list[Case]:
    sizes = QUICK if quick else FULL
    measures = [
        Measure("first_rows_seconds", f"runs table of {sizes.runs:,} runs: first rows", "s", False, Target(1.0)),
        Measure("resort_seconds", "re-sort by a metric column", "s", False, Target(0.5)),
        Measure("chart_seconds", "chart of 10 long runs (see note)", "s", False, Target(1.0)),
    ]
    long = " vs ".join(f"{impl} {n:,}" for impl, n in sizes.points.items())
    note = (
        f"points per long run: {long}; fresh browser context per measure; chart: mltrail's Charts tab (server-side "
        "min/max buckets), MLflow's chart view (get-history-bulk-interval, ≤320 sampled points per run); spikes "
        "checked in the received data"
    )
    return [Case(f"web UI, {sizes.runs:,} runs", measures, _execute(sizes, quick), note)]


SUITE = Suite(
    name="ui",
    title="Web UI in headless Chromium (each library's server and SQLite database)",
    cases=_cases,
    max_repeats=3,
    notes=(
        "Each library populated its own database with its own API; each UI is driven through its own pages with "
        "Playwright and Debian's Chromium. Times run from navigation (or the click) until the rows or the chart "
        "canvas are on screen."
    ),
)
