"""Fluent ``log_metric`` end to end: ``--count`` calls of ``log_metric("m0", v, step=i)`` in one run, through a
tracking server (``--url``) or into a local directory store, timed from the first call until ``end_run``
returns (every point stored: mltrail's batching and MLflow's async queue are flushed by then). Afterwards a
separate client reads every value back.

``--synchronous default`` passes nothing (mltrail: background batching; MLflow: synchronous); ``true`` and
``false`` pass ``synchronous=`` (for MLflow, ``false`` is its async logging). ``--per-call`` also times each
call on its own with ``perf_counter_ns`` and reports the median and p99 in µs: what a training loop pays per
call (the timer's own ~0.1 µs included).
"""

from __future__ import annotations

import statistics
import time

import _common as c
import logging_points as points

SYNCHRONOUS = {"default": {}, "true": {"synchronous": True}, "false": {"synchronous": False}}


def _arguments(parser) -> None:
    parser.add_argument("--url", help="tracking server; without it, a local directory store")
    parser.add_argument("--synchronous", choices=SYNCHRONOUS, default="default")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--per-call", action="store_true")


def _log_all(lib, count: int, options: dict) -> None:
    key, value, log_metric = points.key(0), points.value, lib.log_metric
    for step in range(count):
        log_metric(key, value(0, step), step=step, **options)


def _log_all_timed(lib, count: int, options: dict) -> list[int]:
    """Like :func:`_log_all`, timing every call; returns the durations in ns."""
    key, value, log_metric, clock = points.key(0), points.value, lib.log_metric, time.perf_counter_ns
    durations = [0] * count
    for step in range(count):
        started = clock()
        log_metric(key, value(0, step), step=step, **options)
        durations[step] = clock() - started
    return durations


def _per_call_figures(durations: list[int]) -> dict:
    ordered = sorted(durations)
    return {
        "call_p50_us": statistics.median(ordered) / 1000,
        "call_p99_us": ordered[int(len(ordered) * 0.99)] / 1000,
    }


def main() -> None:
    args = c.parse_args(_arguments)
    uri = args.url or c.tracking_uri(args.impl, "dir")
    lib = c.load(args.impl)
    if uri:
        lib.set_tracking_uri(uri)
    options = SYNCHRONOUS[args.synchronous]
    run_id = lib.start_run().info.run_id
    figures: dict = {}
    started = time.perf_counter()
    if args.per_call:
        figures = _per_call_figures(_log_all_timed(lib, args.count, options))
    else:
        _log_all(lib, args.count, options)
    lib.end_run()
    seconds = time.perf_counter() - started
    check = points.tally(c.client(args.impl, uri), run_id, keys=1, steps=args.count)
    c.emit(
        calls=args.count,
        seconds=seconds,
        rate=args.count / seconds,
        **figures,
        verified=check.exact,
        detail=check.describe(),
    )


if __name__ == "__main__":
    main()
