"""``python -m bench [--all | --suite NAME ...] [--repeats N] [--quick]``"""

from __future__ import annotations

import argparse

from bench.environment import ensure_mlflow_venv, machine_facts, mltrail_impl
from bench.report import merge_results, render_section
from bench.runner import run_case
from bench.suites import all_suites


def _parse_args(names: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmark mltrail against MLflow.")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="run every suite, in order")
    which.add_argument("--suite", action="append", choices=names, help="run this suite (repeatable)")
    parser.add_argument("--repeats", type=int, help="repeats per workload (default 5, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes and 3 repeats")
    return parser.parse_args()


def main() -> None:
    suites = all_suites()
    args = _parse_args([suite.name for suite in suites])
    selected = [s for s in suites if args.all or s.name in args.suite]
    mlflow = ensure_mlflow_venv()
    mltrail = mltrail_impl()
    facts = machine_facts(mltrail, mlflow)
    for suite in selected:
        repeats = args.repeats or (3 if args.quick else 5)
        if suite.max_repeats and not args.repeats:
            repeats = min(repeats, suite.max_repeats)
        results = [run_case(case, [mltrail, mlflow], repeats, suite.name) for case in suite.cases(args.quick)]
        section = render_section(suite.name, suite.title, results, facts, repeats, args.quick, suite.notes)
        merge_results({suite.name: section}, [s.name for s in suites])
        print(section, flush=True)


if __name__ == "__main__":
    main()
