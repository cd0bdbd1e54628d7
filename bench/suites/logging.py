"""Suite ``logging``: the write path (issue #7). How fast a training script can log metrics, what one call costs
it, and whether a tracking server that crashes and comes back costs it any points.

- Through a server (``mltrail server`` / ``mlflow server``, 1 worker, fresh SQLite database), each library's own
  client: fluent ``log_metric`` in its default mode, with ``synchronous=False`` and ``synchronous=True``
  (``workloads/logging_fluent.py``), and ``client.log_batch`` with 1,000 metrics per call
  (``workloads/logging_batch.py``). Points/s from the first call until ``end_run``/``set_terminated`` returns,
  then every value is read back.
- Per-call cost of ``log_metric`` into a local directory store: each call timed on its own (``--per-call``).
- Restart: a training loop logs through a server, which is SIGKILLed mid-run and started again on the same port
  and database a few seconds later (``workloads/logging_restart.py``); a fresh process then counts the points
  lost or stored twice. An exception in the loop is a result (reported in the notes), not a crash of the suite.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.environment import Impl
from bench.runner import Case, Execute, Measure, Target, run_workload, workload
from bench.servers import Server, serve
from bench.suites import Suite

RATE_TARGET = Target(100_000)
# (figure, row label, target) of the fluent rows through a server.
FLUENT_ROWS = (
    ("default_rate", "log_metric points/s, default mode (mltrail: batched, MLflow: synchronous)", RATE_TARGET),
    ("false_rate", "log_metric points/s, synchronous=False (MLflow: its async logging)", RATE_TARGET),
    ("true_rate", "log_metric points/s, synchronous=True", None),
)
# Each library's default is one of the two measured modes (mltrail's hot path takes None and False alike;
# MLflow's None means synchronous), so the default row repeats that measurement instead of running it again.
DEFAULT_MODE = {"mltrail": "false", "mlflow": "true"}
RESTART_METRICS = 10  # metric keys logged per step of the training loop
RESTART_GAP_S = 3.0  # from the kill until the server is started again
TRAIN_STEP_S = 0.01  # the training loop's simulated work per step
KILL_FILE, BACK_FILE = "kill-now", "server-back"


@dataclass(frozen=True)
class Sizes:
    """Calls per repeat, by library. MLflow gets far fewer (through its server it logs 5-50 points/s with
    log_metric, synchronous or not, and 400-3,500/s with log_batch); rates are what is compared."""

    fluent: dict[str, dict[str, int]]  # library → --synchronous (false, true) → log_metric calls
    batch: dict[str, int]  # log_batch calls of 1,000 metrics
    per_call: dict[str, int]  # log_metric calls timed one by one
    restart_steps: int  # training steps before the kill, and again after the server is back


FULL = Sizes(
    fluent={
        "mltrail": {"false": 100_000, "true": 2_000},
        "mlflow": {"false": 200, "true": 150},
    },
    batch={"mltrail": 200, "mlflow": 10},
    per_call={"mltrail": 100_000, "mlflow": 10_000},
    restart_steps=100,
)
QUICK = Sizes(
    fluent={
        "mltrail": {"false": 20_000, "true": 400},
        "mlflow": {"false": 30, "true": 30},
    },
    batch={"mltrail": 40, "mlflow": 2},
    per_call={"mltrail": 20_000, "mlflow": 1_000},
    restart_steps=20,
)


def _combined(results: dict[str, dict]) -> dict:
    """Several workloads' results as one repeat's: ``<name>_rate`` figures, all checks, every detail."""
    figures: dict = {f"{name}_rate": result["rate"] for name, result in results.items()}
    figures["verified"] = all(result["verified"] for result in results.values())
    figures["detail"] = "; ".join(f"{name}: {result['detail']}" for name, result in results.items())
    return figures


def _through_server(sizes: Sizes) -> Execute:
    """One server per repeat; the fluent modes, then log_batch, each in a fresh client process."""

    def execute(impl: Impl, workdir: Path) -> dict:
        results = {}
        with serve(impl, workdir, workers=1) as server:
            for mode, calls in sizes.fluent[impl.name].items():
                args = ["--url", server.url, "--synchronous", mode, "--count", calls]
                results[mode] = run_workload(impl, "logging_fluent.py", args, workdir)
            args = ["--url", server.url, "--calls", sizes.batch[impl.name]]
            results["batch"] = run_workload(impl, "logging_batch.py", args, workdir)
        figures = _combined(results)
        return figures | {"default_rate": figures[f"{DEFAULT_MODE[impl.name]}_rate"]}

    return execute


def _crash_and_restart(server: Server, workdir: Path, training: Future) -> float | None:
    """Wait for the training loop's signal, SIGKILL the server and start it again ``RESTART_GAP_S`` later.
    Returns the seconds from the kill until ``/health`` answered again (None if the loop ended first)."""
    while not (workdir / KILL_FILE).exists():
        if training.done():
            return None
        time.sleep(0.01)
    killed = time.perf_counter()
    server.kill()
    try:
        time.sleep(RESTART_GAP_S)
        server.start()
    finally:
        (workdir / BACK_FILE).touch()  # lets the loop finish even if the server did not come back
    return time.perf_counter() - killed


def _restart(sizes: Sizes) -> Execute:
    def execute(impl: Impl, workdir: Path) -> dict:
        steps = sizes.restart_steps
        with serve(impl, workdir, workers=1) as server:
            common = ["--url", server.url, "--metrics", RESTART_METRICS]
            train = ["train", *common, "--kill-at", steps, "--after", steps, "--step-seconds", TRAIN_STEP_S]
            train += ["--kill-file", workdir / KILL_FILE, "--back-file", workdir / BACK_FILE]
            # mltrail's client spools to disk while the server is away: keep that inside this repeat's directory.
            env = {"MLTRAIL_SPOOL_DIR": str(workdir / "spool")}
            with ThreadPoolExecutor(max_workers=1) as pool:
                training = pool.submit(run_workload, impl, "logging_restart.py", train, workdir, env)
                outage = _crash_and_restart(server, workdir, training)
                trained = training.result()
            read = ["read", *common, "--run-id", trained["run_id"], "--steps", trained["steps"]]
            checked = run_workload(impl, "logging_restart.py", read, workdir)
        logged = f"{trained['steps']:,} steps × {RESTART_METRICS} metrics"
        outage_note = f"server away {outage:.1f} s" if outage is not None else "the loop ended before the kill"
        detail = "; ".join(filter(None, [f"{checked['detail']} ({logged})", outage_note, trained["failure"]]))
        figures = {"lost": checked["lost"], "duplicated": checked["duplicated"]}
        figures |= {key: trained[key] for key in ("max_call_seconds", "end_run_seconds")} | {"outage_seconds": outage}
        verified = checked["verified"] and not trained["failure"] and outage is not None
        return figures | {"verified": verified, "detail": detail}

    return execute


def _cases(quick: bool) -> list[Case]:
    sizes = QUICK if quick else FULL
    calls = {impl: ", ".join(f"{mode} {n:,}" for mode, n in modes.items()) for impl, modes in sizes.fluent.items()}
    per_call_args = {
        impl: ["--synchronous", "false", "--count", count, "--per-call"] for impl, count in sizes.per_call.items()
    }
    restart_measures = [
        Measure("lost", "points lost", "points", False, Target(1), words=("fewer", "more")),
        Measure("duplicated", "points stored twice", "points", False, words=("fewer", "more")),
        Measure("outage_seconds", "server away: SIGKILL until /health answers again", "s", False),
        Measure("max_call_seconds", "longest log_metrics call (the training loop stalled)", "s", False),
        Measure("end_run_seconds", "end_run (stores what is left)", "s", False),
    ]
    return [
        Case(
            name="through a server",
            measures=[
                *(Measure(key, label, "/s", True, target) for key, label, target in FLUENT_ROWS),
                Measure("batch_rate", "log_batch points/s (1,000 metrics per call)", "/s", True),
            ],
            execute=_through_server(sizes),
            note=(
                f"log_metric calls per synchronous= mode: mltrail {calls['mltrail']}; MLflow {calls['mlflow']} (the "
                "default row repeats the library's default mode); log_batch calls: "
                f"mltrail {sizes.batch['mltrail']:,}, MLflow {sizes.batch['mlflow']:,}; timed until end_run / "
                "set_terminated returns"
            ),
        ),
        Case(
            name="log_metric, one call",
            measures=[
                Measure("call_p50_us", "median time of one call", "µs", False, Target(5)),
                Measure("call_p99_us", "p99 time of one call", "µs", False),
            ],
            execute=workload("logging_fluent.py", per_call_args),
            note=(
                f"synchronous=False into a local directory store (mltrail: its default batching, MLflow: its async "
                f"logging); {sizes.per_call['mltrail']:,} calls (mltrail) vs {sizes.per_call['mlflow']:,} (MLflow), "
                "each timed with perf_counter_ns"
            ),
        ),
        Case(
            name="server killed mid-run",
            measures=restart_measures,
            execute=_restart(sizes),
            note=(
                f"training loop: {TRAIN_STEP_S * 1000:g} ms of work, then log_metrics of {RESTART_METRICS} metrics per "
                f"step, default client settings; SIGKILL after step {sizes.restart_steps}, restart "
                f"{RESTART_GAP_S:g} s later on the same port and database, {sizes.restart_steps} more steps once it "
                "answers; a fresh process reads everything back"
            ),
        ),
    ]


SUITE = Suite(
    name="logging",
    title="Write path: log_metric through a server, per-call cost, server restart",
    cases=_cases,
    max_repeats=3,
    notes=(
        "Each library's own client against its own server (1 worker, SQLite), or into a local directory store for "
        "the per-call cost. Points/s run from the first call until `end_run`/`set_terminated` returns; every value "
        "is then read back (stored N/N)."
    ),
)
