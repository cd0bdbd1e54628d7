"""Populate a SQL store with the sql suite's data set through the library's fastest public API (log_batch).

Experiment ``bench``: ``--runs`` runs, each with 20 params, 5 tags and 20 metrics × 100 steps, written with
``client.log_batch`` in chunks of ≤1000 entities, then ``set_terminated``. Experiment ``bench-history``: one
run with one metric ``h`` of ``--history-points`` points, logged in 1000-point batches. Reports the time of
each part separately.

``--resume`` continues an interrupted population of the same database (used for the suite's one-time
full-size caches, which can take longer than a working session): runs are written in start-time order, so the
latest run tells where to go on; an unfinished one is deleted and written again.
"""

from __future__ import annotations

import time

import _common as c


def _arguments(parser) -> None:
    parser.add_argument("--db-uri", required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--history-points", type=int, required=True)
    parser.add_argument("--params", type=int, default=20)
    parser.add_argument("--tags", type=int, default=5)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--resume", action="store_true")


def _resume_point(client, name: str) -> tuple[str | None, int]:
    """(experiment id or None, index of the first run still to write) of an earlier, interrupted population."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return None, 0
    latest = client.search_runs([experiment.experiment_id], max_results=1, order_by=["attributes.start_time DESC"])
    if not latest:
        return experiment.experiment_id, 0
    index = latest[0].info.start_time - c.BASE_TIMESTAMP
    if latest[0].info.status == "FINISHED":
        return experiment.experiment_id, index + 1
    client.delete_run(latest[0].info.run_id)
    return experiment.experiment_id, index


def _populate_runs(client, impl: str, args) -> int:
    """Returns how many runs it wrote."""
    metric_cls, param_cls, tag_cls = c.entity_classes(impl)
    experiment_id, first = _resume_point(client, "bench") if args.resume else (None, 0)
    experiment_id = experiment_id or client.create_experiment("bench")
    for i in range(first, args.runs):
        run_id = client.create_run(experiment_id, start_time=c.BASE_TIMESTAMP + i).info.run_id
        params = [param_cls(f"p{k}", c.param_value(i, k)) for k in range(args.params)]
        tags = [tag_cls(f"t{k}", c.tag_value(i, k)) for k in range(args.tags)]
        metrics = [
            metric_cls(f"m{k}", c.metric_value(i, k, s), c.BASE_TIMESTAMP + s, s)
            for k in range(args.metrics)
            for s in range(args.steps)
        ]
        for chunk_metrics, chunk_params, chunk_tags in c.batches(metrics, params, tags):
            client.log_batch(run_id, metrics=chunk_metrics, params=chunk_params, tags=chunk_tags)
        client.set_terminated(run_id)
    return args.runs - first


def _populate_history(client, impl: str, points: int, resume: bool) -> int:
    """Returns how many points it wrote (0 when resuming after a finished history run)."""
    metric_cls, _, _ = c.entity_classes(impl)
    experiment = client.get_experiment_by_name("bench-history") if resume else None
    if experiment is None:
        experiment_id = client.create_experiment("bench-history")
    else:
        experiment_id = experiment.experiment_id
        for run in client.search_runs([experiment_id]):
            if run.info.status == "FINISHED":
                return 0
            client.delete_run(run.info.run_id)
    run_id = client.create_run(experiment_id).info.run_id
    for start in range(0, points, 1000):
        steps = range(start, min(start + 1000, points))
        chunk = [metric_cls("h", (s % 977) / 977, c.BASE_TIMESTAMP + s, s) for s in steps]
        client.log_batch(run_id, metrics=chunk)
    client.set_terminated(run_id)
    return points


def main() -> None:
    args = c.parse_args(_arguments)
    client = c.client(args.impl, args.db_uri)
    client.get_experiment_by_name("bench")  # opens the store (creating its schema) before the clock starts
    started = time.perf_counter()
    runs = _populate_runs(client, args.impl, args)
    runs_seconds = time.perf_counter() - started
    started = time.perf_counter()
    points = _populate_history(client, args.impl, args.history_points, args.resume)
    history_seconds = time.perf_counter() - started
    c.emit(
        runs=runs,
        runs_seconds=runs_seconds,
        runs_per_s=runs / runs_seconds if runs else 0.0,
        history_points=points,
        history_seconds=history_seconds,
        history_points_per_s=points / history_seconds if points else 0.0,
    )


if __name__ == "__main__":
    main()
