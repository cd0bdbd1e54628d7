"""Helpers shared by the workload scripts.

Every workload is a stand-alone script run by ``python -m bench`` in a fresh process and a fresh working
directory, either with mltrail's interpreter or with the MLflow venv's. ``--impl`` picks which library to
import; both expose the same fluent API and the same client methods, so one script serves both. A workload
prints exactly one JSON line of measurements on stdout (anything else goes to stderr).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

IMPLS = ("mltrail", "mlflow")
BASE_TIMESTAMP = 1_700_000_000_000  # fixed, so generated data (and search results) are the same every time


def parse_args(add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=IMPLS, required=True)
    if add_arguments:
        add_arguments(parser)
    return parser.parse_args()


def load(impl: str) -> ModuleType:
    return importlib.import_module(impl)


def tracking_uri(impl: str, store: str) -> str | None:
    """Tracking URI of an embedded store kind, relative to the workload's fresh working directory.

    ``dir``: mltrail's default (nothing set → ``./mlruns``); MLflow's file store must be named explicitly since
    its default became ``sqlite:///mlflow.db``. ``sqlite``: ``sqlite:///bench.db`` for both.
    """
    if store == "sqlite":
        return "sqlite:///bench.db"
    return None if impl == "mltrail" else Path("mlruns").resolve().as_uri()


def client(impl: str, tracking_uri: str | None) -> Any:
    """The library's low-level client: ``mltrail.TrackingClient`` or ``mlflow.MlflowClient``."""
    if impl == "mlflow":
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=tracking_uri)
    from mltrail import TrackingClient

    return TrackingClient(tracking_uri=tracking_uri)


def entity_classes(impl: str) -> tuple[type, type, type]:
    """(Metric, Param, RunTag) of the library; both take the same positional fields."""
    entities = importlib.import_module(f"{impl}.entities")
    return entities.Metric, entities.Param, entities.RunTag


def emit(**measurements: object) -> None:
    sys.stdout.write(json.dumps(measurements) + "\n")
    sys.stdout.flush()


def batches(
    metrics: Sequence[Any], params: Sequence[Any] = (), tags: Sequence[Any] = ()
) -> Iterator[tuple[list[Any], list[Any], list[Any]]]:
    """Split one run's data into log_batch calls within MLflow's limits (≤100 params+tags, ≤1000 entities)."""
    params_tags = [("p", p) for p in params] + [("t", t) for t in tags]
    metric_list = list(metrics)
    while params_tags or metric_list:
        head, params_tags = params_tags[:100], params_tags[100:]
        room = 1000 - len(head)
        chunk, metric_list = metric_list[:room], metric_list[room:]
        yield chunk, [e for kind, e in head if kind == "p"], [e for kind, e in head if kind == "t"]


# --- the synthetic "many runs" data set of the sql suite ----------------------------------------------


def metric_value(run_index: int, metric_index: int, step: int) -> float:
    return ((run_index * 7919 + metric_index * 104729 + step * 31) % 1000) / 1000


def param_value(run_index: int, param_index: int) -> str:
    if param_index == 1:
        return "a" if run_index % 2 == 0 else "b"
    return f"v{(run_index * (param_index + 3)) % 97}"


def tag_value(run_index: int, tag_index: int) -> str:
    if tag_index == 1:
        return "xyz" if run_index % 3 == 0 else "abc"
    return f"tag{tag_index}"


def expected_filter_count(runs: int, steps: int) -> int:
    """Runs matching ``metrics.m1 > 0.5 and params.p1 = 'a'`` (latest value = last step)."""
    return sum(1 for i in range(runs) if metric_value(i, 1, steps - 1) > 0.5 and param_value(i, 1) == "a")


def expected_like_count(runs: int) -> int:
    """Runs matching ``tags.t1 LIKE '%x%'``."""
    return sum(1 for i in range(runs) if "x" in tag_value(i, 1))


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its descendants (robust to a busy machine, unlike wall
    time)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total
