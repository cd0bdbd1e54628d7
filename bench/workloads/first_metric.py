"""Cold start: wall time of a ``python -c`` process that imports the library, starts a run, logs one metric
and ends the run, in an empty directory (so it includes creating the store). Then checks the metric is there."""

from __future__ import annotations

import subprocess
import sys
import time

import _common as c


def _arguments(parser) -> None:
    parser.add_argument("--store", choices=("dir", "sqlite"), required=True)


def main() -> None:
    args = c.parse_args(_arguments)
    uri = c.tracking_uri(args.impl, args.store)
    lines = [f"import {args.impl} as lib"]
    if uri:
        lines.append(f"lib.set_tracking_uri({uri!r})")
    lines += ["with lib.start_run() as run:", "    lib.log_metric('x', 1.0)", "print(run.info.run_id)"]
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(result.returncode)
    run_id = result.stdout.strip().splitlines()[-1]
    stored = len(c.client(args.impl, uri).get_metric_history(run_id, "x"))
    c.emit(seconds=seconds, verified=stored == 1, detail=f"stored {stored}/1")


if __name__ == "__main__":
    main()
