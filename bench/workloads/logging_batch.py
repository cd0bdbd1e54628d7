"""Bulk ``client.log_batch`` through a tracking server with the library's own client (mltrail
``TrackingClient``, MLflow ``MlflowClient``): ``--calls`` calls of 1,000 metric points each (10 keys × 100 steps)
into one run, timed from the first call until ``set_terminated`` returns (mltrail's client batches in the
background; terminating the run waits for that). The batches are built before the clock starts. Then every
value is read back.
"""

from __future__ import annotations

import time

import _common as c
import logging_points as points

KEYS = 10
STEPS_PER_CALL = 100  # KEYS × STEPS_PER_CALL = 1,000 metrics per call, MLflow's per-request limit


def _arguments(parser) -> None:
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, required=True)


def _batches(metric_class: type, calls: int) -> list[list]:
    batches = []
    for call in range(calls):
        steps = range(call * STEPS_PER_CALL, (call + 1) * STEPS_PER_CALL)
        batches.append(
            [
                metric_class(points.key(k), points.value(k, step), c.BASE_TIMESTAMP + step, step)
                for k in range(KEYS)
                for step in steps
            ]
        )
    return batches


def main() -> None:
    args = c.parse_args(_arguments)
    client = c.client(args.impl, args.url)
    metric_class = c.entity_classes(args.impl)[0]
    run_id = client.create_run(client.create_experiment("log-batch")).info.run_id
    batches = _batches(metric_class, args.calls)
    started = time.perf_counter()
    for batch in batches:
        client.log_batch(run_id, metrics=batch)
    client.set_terminated(run_id)
    seconds = time.perf_counter() - started
    total = KEYS * STEPS_PER_CALL * args.calls
    check = points.tally(client, run_id, keys=KEYS, steps=STEPS_PER_CALL * args.calls)
    c.emit(
        points=total,
        seconds=seconds,
        rate=total / seconds,
        verified=check.exact,
        detail=check.describe(),
    )


if __name__ == "__main__":
    main()
