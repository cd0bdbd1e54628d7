"""Import cost: wall time of ``python -c "import <lib>"`` minus that of ``python -c pass``.

Each is run ``--samples`` times, alternating, and the minimum of each is kept (the least disturbed run)."""

from __future__ import annotations

import subprocess
import sys
import time

import _common as c


def _wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def main() -> None:
    args = c.parse_args(lambda parser: parser.add_argument("--samples", type=int, default=5))
    baseline, imported = [], []
    for _ in range(args.samples):
        baseline.append(_wall("pass"))
        imported.append(_wall(f"import {args.impl}"))
    c.emit(import_seconds=min(imported) - min(baseline), baseline_seconds=min(baseline), raw_seconds=min(imported))


if __name__ == "__main__":
    main()
