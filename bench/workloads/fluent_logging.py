"""Fluent logging rate: ``--count`` calls of ``log_metric`` (one key, increasing steps) or ``log_param``
(distinct keys) in one run, timed from the first call until ``end_run`` returns, so every value is stored.
Afterwards a separate client reads the run back and counts what was stored."""

from __future__ import annotations

import time

import _common as c


def _arguments(parser) -> None:
    parser.add_argument("--call", choices=("log_metric", "log_param"), required=True)
    parser.add_argument("--store", choices=("dir", "sqlite"), required=True)
    parser.add_argument("--count", type=int, required=True)


def _stored(client, call: str, run_id: str) -> int:
    if call == "log_metric":
        return len(client.get_metric_history(run_id, "loss"))
    return len(client.get_run(run_id).data.params)


def main() -> None:
    args = c.parse_args(_arguments)
    uri = c.tracking_uri(args.impl, args.store)
    lib = c.load(args.impl)
    if uri:
        lib.set_tracking_uri(uri)
    run_id = lib.start_run().info.run_id
    started = time.perf_counter()
    if args.call == "log_metric":
        for step in range(args.count):
            lib.log_metric("loss", step * 0.001, step=step)
    else:
        for index in range(args.count):
            lib.log_param(f"p{index}", index)
    lib.end_run()
    seconds = time.perf_counter() - started
    stored = _stored(c.client(args.impl, uri), args.call, run_id)
    c.emit(
        calls=args.count,
        seconds=seconds,
        rate=args.count / seconds,
        stored=stored,
        verified=stored == args.count,
        detail=f"stored {stored:,}/{args.count:,}",
    )


if __name__ == "__main__":
    main()
