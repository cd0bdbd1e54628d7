"""Suite ``server``: ``mltrail server`` vs ``mlflow server``, both driven by the official MLflow client.

Both servers get the same backend kind (SQLite in a fresh directory), proxied artifacts and the same worker
count (1 and 4). Only the server differs: the load always comes from MLflow's own client in the MLflow venv,
through its REST layer for the targeted rows and through ``MlflowClient`` for two informative ones (see
``workloads/server_load.py``). Then each library's client runs a short session against each server
(``workloads/client_roundtrip.py``).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.environment import Impl, mlflow_impl, mltrail_impl
from bench.runner import Case, Execute, Measure, Target, WorkloadError, run_workload, workload
from bench.servers import serve, tree_memory_mb
from bench.suites import Suite

OPERATIONS = {
    "log_metric": "log-metric",
    "log_batch": "log-batch (1,000 metrics)",
    "get_run": "get-run",
    "search_runs": "search-runs (100 runs)",
    "get_history": "get-history (1,000 points)",
}
CONCURRENCY = (8, 32)
#: Also measured through ``MlflowClient`` (entities), at the highest concurrency, without a target.
ENTITIES_OPERATIONS = ("search_runs", "get_history")
LESS = ("less", "more")
IDLE_SETTLE_S = 3.0
# A failed call must show up as a failure, not as a slow success after retries; enough pooled connections.
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_POOL_MAXSIZE": "32"}


def _load_execute(workers: int, duration: float) -> Execute:
    def execute(impl: Impl, workdir: Path) -> dict:
        with serve(impl, workdir, workers) as server:
            time.sleep(IDLE_SETTLE_S)
            memory = tree_memory_mb(server.pid)
            figures = {
                "start_seconds": server.start_seconds,
                "idle_rss_mb": memory["rss"],
                "idle_pss_mb": memory["pss"],
            }
            args = ["--url", server.url, "--concurrency", *CONCURRENCY, "--duration", duration]
            args += ["--server-pid", server.pid, "--entities-operations", *ENTITIES_OPERATIONS]
            figures |= run_workload(mlflow_impl(), "server_load.py", args, workdir, env=CLIENT_ENV)
        return figures

    return execute


def _load_measures() -> list[Measure]:
    measures = [
        Measure("start_seconds", "start until /health answers", "s", False, Target(2.0)),
        Measure("idle_rss_mb", "idle RSS, summed over the process tree", "MB", False, words=LESS),
        Measure(
            "idle_pss_mb",
            "idle memory of the process tree (PSS: shared pages counted once)",
            "MB",
            False,
            Target(150),
            words=LESS,
        ),
    ]
    for op, label in OPERATIONS.items():
        for n in CONCURRENCY:
            name, shown = f"{op}_c{n}", f"{label}, {n} clients"
            p99_target = Target(3, relative=True) if n == 32 else None
            measures += [
                Measure(f"{name}_throughput", f"{shown}: throughput", "/s", True, Target(3, relative=True)),
                Measure(f"{name}_p50", f"{shown}: median latency", "s", False),
                Measure(f"{name}_p99", f"{shown}: p99 latency", "s", False, p99_target),
                Measure(f"{name}_server_cpu", f"{shown}: server CPU per call", "s", False),
                Measure(f"{name}_client_cpu", f"{shown}: client CPU per call (same client both sides)", "s", False),
            ]
    for op in ENTITIES_OPERATIONS:
        name, shown = f"{op}_c{CONCURRENCY[-1]}_entities", f"{OPERATIONS[op]}, {CONCURRENCY[-1]} MlflowClients"
        measures += [
            Measure(f"{name}_throughput", f"{shown}: throughput", "/s", True),
            Measure(f"{name}_p99", f"{shown}: p99 latency", "s", False),
            Measure(f"{name}_server_cpu", f"{shown}: server CPU per call", "s", False),
            Measure(f"{name}_client_cpu", f"{shown}: client CPU per call", "s", False),
        ]
    return measures


def _roundtrips(impl: Impl, workdir: Path) -> dict:
    """Both libraries' clients, one after the other, against one server; a failing client is reported in the
    notes without losing the other's figure."""
    figures: dict = {}
    details, verified = [], True
    with serve(impl, workdir, 1) as server:
        for client in (mlflow_impl(), mltrail_impl()):
            try:
                result = run_workload(client, "client_roundtrip.py", ["--url", server.url], workdir, env=CLIENT_ENV)
            except WorkloadError as exc:
                details.append(f"{client.name} client failed: {str(exc)[-300:]}")
                verified = False
                continue
            figures[f"{client.name}_client_seconds"] = result["seconds"]
            details.append(f"{client.name} client: {result['detail']}")
            verified = verified and result["verified"]
    return figures | {"verified": verified, "detail": "; ".join(details)}


def _cases(quick: bool) -> list[Case]:
    duration = 2.0 if quick else 3.0
    cases = [
        Case(
            name=f"server, {workers} worker{'s' if workers > 1 else ''}",
            measures=_load_measures(),
            execute=_load_execute(workers, duration),
            note=f"MLflow client's REST layer, 2 processes × threads, {duration:g} s per operation and concurrency",
        )
        for workers in (1, 4)
    ]
    roundtrip = [
        Measure(f"{name}_client_seconds", f"{shown} client session against it", "s", False)
        for name, shown in (("mlflow", "MLflow"), ("mltrail", "mltrail"))
    ]
    size_mb = 256 if quick else 1024
    args = ["--size-mb", size_mb]
    cases.append(
        Case(
            name=f"proxied artifact, {size_mb:,} MiB up and down",
            measures=[
                Measure("upload_mb_s", "upload through the proxy", "MB/s", True, Target(2, relative=True)),
                Measure("download_mb_s", "download through the proxy", "MB/s", True, Target(2, relative=True)),
                Measure("upload_server_cpu_s_per_gib", "server CPU per GiB uploaded", "s", False),
                Measure("download_server_cpu_s_per_gib", "server CPU per GiB downloaded", "s", False),
                Measure("peak_rss_mb", "peak RSS of the server tree", "MB", False, Target(150), words=LESS),
            ],
            execute=workload("proxy_artifacts.py", {"mltrail": args, "mlflow": args}),
            note="local --artifacts-destination; one plain streaming HTTP client for both servers; bytes checked",
        )
    )
    note = "columns are the servers (1 worker); fluent session + log_batch + reads, every read checked"
    return [*cases, Case("client round trips", roundtrip, _roundtrips, note)]


SUITE = Suite(
    name="server",
    title="Tracking server under the official MLflow client (SQLite backend)",
    cases=_cases,
    max_repeats=3,
    notes=(
        "Load: the official MLflow client from the MLflow venv against both servers, 2 client processes with "
        "threads (8 or 32 concurrent clients), `MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`: its REST layer "
        "(`rest_utils.http_request`; writes must answer 200, reads must hold every item set up) for the targeted "
        "rows, and "
        "`MlflowClient` itself for the 'MlflowClients' rows. Clients and server share the machine's 2 cores, so a "
        "call costs the client's CPU plus the server's; both are shown (server: its process tree over the timed "
        "window; client: the load processes). `MlflowClient` spends ~35-60 ms of CPU turning a 100-run search "
        "page into entities, several times our server's CPU for that call, so those rows mostly measure the "
        "client. Memory: PSS counts pages the forked workers share once; the RSS sum counts them once per "
        "process. Round trips: each library's client against each server (columns = servers)."
    ),
)
