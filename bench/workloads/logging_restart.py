"""A training loop logging through a tracking server that crashes and comes back (the ``logging`` suite's
restart test). Two commands, each a fresh process of the library's interpreter:

``train``: every step sleeps ``--step-seconds`` (the "computation"), then ``log_metrics`` ``--metrics`` values
for that step. After step ``--kill-at`` it creates ``--kill-file``: the suite then SIGKILLs the server, waits a
few seconds, starts it again on the same port and database, and creates ``--back-file``. The loop goes on for
``--after`` steps once it sees that file (so it logs before, during and after the outage), then ends the run.
An exception from the library ends the loop, as it would end a training script; it is reported, not raised.
Reports the steps logged, the longest ``log_metrics`` call (how long the loop stalled), how long ``end_run``
took, and the run id.

``read``: reads every value of the run back (after ``train`` has exited, so anything the client still held
when its process ended counts as lost) and counts points lost and stored twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import _common as c
import logging_points as points


def _arguments(parser) -> None:
    parser.add_argument("command", choices=("train", "read"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--metrics", type=int, required=True, help="metric keys logged per step")
    parser.add_argument("--kill-at", type=int, help="train: step after which the server is killed")
    parser.add_argument("--after", type=int, help="train: steps to log once the server is back")
    parser.add_argument("--step-seconds", type=float, default=0.01, help="train: simulated work per step")
    parser.add_argument("--kill-file", type=Path, help="train: created after step --kill-at")
    parser.add_argument("--back-file", type=Path, help="train: appears once the server is back")
    parser.add_argument("--max-seconds", type=float, default=600, help="train: give up if the server stays away")
    parser.add_argument("--run-id", help="read: the run to check")
    parser.add_argument("--steps", type=int, help="read: steps the training loop logged")


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _train(lib, args) -> dict:
    """The loop; returns how far it got and, if the library raised, what it raised."""
    deadline = time.monotonic() + args.max_seconds
    steps, last_step, longest, failure = 0, None, 0.0, ""
    while not failure and (last_step is None or steps < last_step):
        time.sleep(args.step_seconds)
        values = {points.key(k): points.value(k, steps) for k in range(args.metrics)}
        started = time.perf_counter()
        try:
            lib.log_metrics(values, step=steps)
        except Exception as exc:
            failure = f"log_metrics raised at step {steps:,}: {_describe(exc)}"
        longest = max(longest, time.perf_counter() - started)
        steps += 1  # a call that raised may still have stored its points: they count as expected
        if steps == args.kill_at:
            args.kill_file.touch()
        if last_step is None and args.back_file.exists():
            last_step = steps + args.after
        if not failure and time.monotonic() > deadline:
            failure = f"gave up: the server was not back after {args.max_seconds:g} s"
    end_run_seconds = None
    if not failure:
        started = time.perf_counter()
        try:
            lib.end_run()
        except Exception as exc:
            failure = f"end_run raised: {_describe(exc)}"
        end_run_seconds = time.perf_counter() - started
    return {"steps": steps, "max_call_seconds": longest, "end_run_seconds": end_run_seconds, "failure": failure}


def main() -> None:
    args = c.parse_args(_arguments)
    lib = c.load(args.impl)
    if args.command == "train":
        lib.set_tracking_uri(args.url)
        run_id = lib.start_run().info.run_id
        c.emit(run_id=run_id, **_train(lib, args))
        return
    check = points.tally(c.client(args.impl, args.url), args.run_id, keys=args.metrics, steps=args.steps)
    c.emit(lost=check.lost, duplicated=check.duplicated, verified=check.exact, detail=check.describe())


if __name__ == "__main__":
    main()
