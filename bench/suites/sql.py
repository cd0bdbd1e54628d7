"""Suite ``sql``: a SQL store at scale (SQLite and PostgreSQL) through each library's client.

Per repeat and implementation, in fresh processes:
1. population: a fresh database is populated with a slice of the data set (timed) and the time is scaled
   linearly to the full size — a full 10,000-run population takes MLflow over half an hour per database here;
2. queries (``workloads/sql_query.py``) on a private copy of a full-size database that the same library
   populated once with the same script and data, kept in ``bench/.work/cache`` (MLflow's client writes its first
   300 runs; ``bench/mlflow_fill.py`` adds the rest as the same rows, since the client would take hours).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import mlflow_fill, postgres
from bench.db_copy import copy_sqlite_to_postgres
from bench.environment import MLFLOW_VERSION, WORK_DIR, Impl
from bench.runner import Case, Execute, Measure, Target, run_workload
from bench.suites import Suite

CACHE_DIR = WORK_DIR / "cache"
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_database_numbers = itertools.count()
_CACHE_BUILD_TIMEOUT_S = 6 * 3600
#: What MLflow's client writes of its full-size database (see bench/mlflow_fill.py).
MLFLOW_CLIENT_RUNS = 300
MLFLOW_CLIENT_HISTORY_POINTS = 20_000


@dataclass(frozen=True)
class Sizes:
    runs: int
    history_points: int
    slice_runs: dict[str, int]  # runs populated (and timed) per repeat, by implementation
    slice_history_points: dict[str, int]


FULL = Sizes(10_000, 1_000_000, {"mltrail": 500, "mlflow": 100}, {"mltrail": 100_000, "mlflow": 20_000})
QUICK = Sizes(1_000, 100_000, {"mltrail": 200, "mlflow": 50}, {"mltrail": 20_000, "mlflow": 10_000})


def _populate(impl: Impl, uri: str, runs: int, points: int, workdir: Path) -> dict:
    return run_workload(impl, "sql_populate.py", ["--db-uri", uri, "--runs", runs, "--history-points", points], workdir)


@contextmanager
def _fresh_database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'slice.db'}"
        return
    name = f"bench_{os.getpid()}_{next(_database_numbers)}"
    postgres.drop(name)
    try:
        yield postgres.create(name)
    finally:
        postgres.drop(name)


# --- the full-size databases, built once per library version --------------------------------------------


def _code_version(impl: Impl) -> str:
    """MLflow: its version. mltrail: a digest of its SQL store's code, so a schema change rebuilds the cache."""
    if impl.name == "mlflow":
        return MLFLOW_VERSION.replace(".", "_")
    import mltrail

    sources = sorted((Path(mltrail.__file__).parent / "store" / "sql").rglob("*.py"))
    return hashlib.sha1(b"".join(path.read_bytes() for path in sources)).hexdigest()[:10]


def _cache_key(impl: Impl, backend: str, sizes: Sizes) -> str:
    return f"bench_{impl.name}_{_code_version(impl)}_{backend}_r{sizes.runs}_h{sizes.history_points}"


def _drop_stale_caches(impl: Impl, backend: str, sizes: Sizes, keep: str) -> None:
    suffix = f"_{backend}_r{sizes.runs}_h{sizes.history_points}"
    for path in CACHE_DIR.glob(f"bench_{impl.name}_*{suffix}.*"):
        if not path.name.startswith(keep):
            path.unlink()
    if backend == "postgresql":
        for name in postgres.names(f"bench_{impl.name}_"):
            if name.endswith(suffix) and name != keep:
                postgres.drop(name)


def _seal(database: Path) -> None:
    """Fold any write-ahead log into the file and remove the side files (WAL, shared memory, a library's lock
    file), so the database is one self-contained file that can be renamed and copied."""
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for side_file in database.parent.glob(f"{database.name}?*"):
        side_file.unlink()


def _build_cache(impl: Impl, backend: str, sizes: Sizes, workdir: Path) -> None:
    """Build a library's full-size database (untimed here; the population figures are kept beside it).

    SQLite: populated by the library through ``sql_populate.py`` (resuming an interrupted build); for MLflow,
    whose client would take hours, only the first runs and points, the rest added by ``bench/mlflow_fill.py``
    with the rows that client writes. PostgreSQL:
    the library creates its schema (``open_store.py``) and the rows it wrote into its SQLite database are
    copied over (``bench/db_copy.py``).
    """
    key = _cache_key(impl, backend, sizes)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    _drop_stale_caches(impl, backend, sizes, keep=key)
    if backend == "sqlite":
        partial = CACHE_DIR / f"{key}.db.partial"
        resume = ["--resume"] if partial.exists() else []
        print(f"[sql] {impl.name} populates its full-size SQLite database {key} (once{', resuming' * bool(resume)})")
        runs, points = sizes.runs, sizes.history_points
        if impl.name == "mlflow":  # its client writes a part; bench/mlflow_fill.py adds the same rows for the rest
            runs, points = min(runs, MLFLOW_CLIENT_RUNS), min(points, MLFLOW_CLIENT_HISTORY_POINTS)
        args = ["--db-uri", f"sqlite:///{partial}", "--runs", runs, "--history-points", points]
        figures = run_workload(impl, "sql_populate.py", [*args, *resume], workdir, timeout=_CACHE_BUILD_TIMEOUT_S)
        if impl.name == "mlflow":
            mlflow_fill.complete(partial, sizes.runs, sizes.history_points)
        _seal(partial)
        partial.rename(CACHE_DIR / f"{key}.db")
        (CACHE_DIR / f"{key}.json").write_text(json.dumps(figures))
        return
    sqlite_cache = CACHE_DIR / f"{_cache_key(impl, 'sqlite', sizes)}.db"
    if not sqlite_cache.exists():
        _build_cache(impl, "sqlite", sizes, workdir)
    print(f"[sql] copying {impl.name}'s rows into its full-size PostgreSQL database {key} (once)", flush=True)
    partial = f"{key}_partial"
    postgres.drop(partial)
    url = postgres.create(partial)
    run_workload(impl, "open_store.py", ["--db-uri", url], workdir)
    copy_sqlite_to_postgres(sqlite_cache, url)
    postgres.rename(partial, key)


@contextmanager
def _full_database(impl: Impl, backend: str, sizes: Sizes, workdir: Path) -> Iterator[str]:
    """A private copy of the library's cached full-size database (file copy / template clone)."""
    key = _cache_key(impl, backend, sizes)
    if backend == "sqlite":
        if not (CACHE_DIR / f"{key}.db").exists():
            _build_cache(impl, backend, sizes, workdir)
        copy = workdir / "full.db"
        shutil.copyfile(CACHE_DIR / f"{key}.db", copy)
        yield f"sqlite:///{copy}"
        return
    if not postgres.exists(key):
        _build_cache(impl, backend, sizes, workdir)
    clone = f"bench_{os.getpid()}_{next(_database_numbers)}"
    postgres.drop(clone)
    try:
        yield postgres.create(clone, template=key)
    finally:
        postgres.drop(clone)


def _execute(backend: str, sizes: Sizes) -> Execute:
    def execute(impl: Impl, workdir: Path) -> dict:
        runs, points = sizes.slice_runs[impl.name], sizes.slice_history_points[impl.name]
        with _fresh_database(backend, workdir) as uri:
            population = _populate(impl, uri, runs, points, workdir)
        with _full_database(impl, backend, sizes, workdir) as uri:
            query_args = ["--db-uri", uri, "--runs", sizes.runs, "--history-points", sizes.history_points]
            queries = run_workload(impl, "sql_query.py", query_args, workdir)
        return {
            "populate_seconds": population["runs_seconds"] * sizes.runs / runs,
            "history_load_seconds": population["history_seconds"] * sizes.history_points / points,
            **queries,
        }

    return execute


def _measures(sizes: Sizes) -> list[Measure]:
    def timed(key: str, label: str, factor: float) -> Measure:
        return Measure(key, label, "s", False, Target(factor, relative=True))

    return [
        timed("populate_seconds", f"populate {sizes.runs:,} runs (log_batch), scaled", 20),
        timed("history_load_seconds", f"log {sizes.history_points:,}-point history, scaled", 20),
        timed("search_all_seconds", "search_runs, all pages", 10),
        timed("search_filter_seconds", "filter m1>0.5 & p1='a', order m2 DESC", 10),
        timed("search_like_seconds", "filter tags.t1 LIKE '%x%'", 10),
        timed("history_seconds", f"get_metric_history ({sizes.history_points:,} points)", 20),
    ]


def _full_population_note(sizes: Sizes) -> str:
    """The one-time full SQLite populations (cache builds), when on record."""
    from bench.environment import mlflow_impl, mltrail_impl

    notes = []
    for impl in (mltrail_impl(), mlflow_impl()):
        record = CACHE_DIR / f"{_cache_key(impl, 'sqlite', sizes)}.json"
        if record.exists():
            figures = json.loads(record.read_text())
            notes.append(
                f"{impl.name} {figures['runs']:,} runs in {figures['runs_seconds']:,.0f} s, "
                f"{figures['history_points']:,} points in {figures['history_seconds']:,.0f} s"
            )
    return f"; one-time population of the cached SQLite database: {'; '.join(notes)}" if notes else ""


def _cases(quick: bool) -> list[Case]:
    sizes = QUICK if quick else FULL
    slices = {
        impl: f"{sizes.slice_runs[impl]:,} runs / {sizes.slice_history_points[impl]:,} points"
        for impl in sizes.slice_runs
    }
    note = (
        f"population timed on a slice (mltrail {slices['mltrail']}, MLflow {slices['mlflow']}) and scaled "
        f"linearly; queries on a full-size database the same library populated{_full_population_note(sizes)}"
    )
    return [Case(BACKENDS[backend], _measures(sizes), _execute(backend, sizes), note) for backend in BACKENDS]


SUITE = Suite(
    name="sql",
    title="SQL store at scale: population and search (runs × 20 params, 20 metrics × 100 steps, 5 tags)",
    cases=_cases,
    max_repeats=3,
)
