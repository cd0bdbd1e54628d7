"""Suite ``embedded``: the fluent API writing straight to a local store (directory and SQLite)."""

from __future__ import annotations

from bench.runner import Case, Measure, Target, workload
from bench.suites import Suite

STORES = {"dir": "directory", "sqlite": "SQLite"}
# Calls per repeat. MLflow gets fewer (it does ~2,000 log_metric/s on its file store, ~300/s on SQLite) so a
# repeat stays within seconds; the rate is what is compared.
FULL_COUNTS = {
    "log_metric": {"mltrail": {"dir": 20_000, "sqlite": 20_000}, "mlflow": {"dir": 2_000, "sqlite": 500}},
    "log_param": {"mltrail": {"dir": 5_000, "sqlite": 5_000}, "mlflow": {"dir": 1_000, "sqlite": 300}},
}
QUICK_DIVISOR = 4
RATE_TARGETS = {("log_metric", "dir"): 20_000, ("log_metric", "sqlite"): 10_000}


def _count(call: str, impl: str, store: str, quick: bool) -> int:
    count = FULL_COUNTS[call][impl][store]
    return count // QUICK_DIVISOR if quick else count


def _logging_case(call: str, store: str, quick: bool) -> Case:
    target = RATE_TARGETS.get((call, store))
    counts = {impl: _count(call, impl, store, quick) for impl in ("mltrail", "mlflow")}
    args = {impl: ["--call", call, "--store", store, "--count", count] for impl, count in counts.items()}
    return Case(
        name=f"{call} ({STORES[store]})",
        measures=[Measure("rate", f"{call} calls/s", "/s", True, Target(target) if target else None)],
        execute=workload("fluent_logging.py", args),
        note=f"{counts['mltrail']:,} calls (mltrail) vs {counts['mlflow']:,} (MLflow), timed until end_run returns",
    )


def _cases(quick: bool) -> list[Case]:
    cases = [
        Case(
            name="import",
            measures=[Measure("import_seconds", "import time", "s", False, Target(0.15))],
            execute=workload("import_time.py", {"mltrail": [], "mlflow": []}),
            note="`python -c 'import X'` minus `python -c pass`, best of 5",
        )
    ]
    for store in STORES:
        cases.append(_logging_case("log_metric", store, quick))
        cases.append(_logging_case("log_param", store, quick))
        args = ["--store", store]
        cases.append(
            Case(
                name=f"first metric ({STORES[store]})",
                measures=[Measure("seconds", "python start → metric stored", "s", False)],
                execute=workload("first_metric.py", {"mltrail": args, "mlflow": args}),
                note="one `python -c` process in an empty directory: import, start_run, log_metric, end_run",
            )
        )
    return cases


SUITE = Suite(name="embedded", title="Core library: fluent logging into a local store", cases=_cases)
