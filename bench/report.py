"""Render a suite's results as markdown and merge them into bench/RESULTS.md and bench/README.md.

Each suite owns one marked section, so running one suite replaces only its own rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

from bench.environment import BENCH_DIR, MLFLOW_VERSION
from bench.runner import CaseResult, Measure, Outcome

RESULTS_FILE = BENCH_DIR / "RESULTS.md"
README_FILE = BENCH_DIR / "README.md"
_HEADER = (
    "# Benchmark results: mltrail vs MLflow\n\n"
    "Written by `python -m bench` (see README.md); each suite's section is replaced when that suite runs.\n"
    'Figures are medians over repeats; "ratio" is how many times better mltrail is.\n'
)


def _section_markers(name: str) -> tuple[str, str]:
    return f"<!-- suite:{name}:start -->", f"<!-- suite:{name}:end -->"


def _verdict(measure: Measure, ours: Outcome, theirs: Outcome) -> str:
    ours_value, theirs_value = ours.median(measure.key), theirs.median(measure.key)
    if ours_value is None:
        return "error"
    if not ours.verified:
        return "FAIL (data check)"
    if measure.target is None:
        return "–"
    met = measure.target.met(measure, ours_value, theirs_value)
    return "–" if met is None else ("pass" if met else "FAIL")


_MAX_DETAIL = 300


def _check_note(name: str, outcome: Outcome) -> str:
    """The read-back check of the last repeat (a failed one if any failed)."""
    if not outcome.details:
        return ""
    detail = outcome.details[-1] if outcome.verified else outcome.failed_detail()
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "…"
    return f"{name}: {detail} {'✓' if outcome.verified else '✗'}"


def _rows(result: CaseResult) -> list[str]:
    ours, theirs = result.outcomes["mltrail"], result.outcomes["mlflow"]
    checks = [n for n in (_check_note("mltrail", ours), _check_note("MLflow", theirs)) if n]
    note = "; ".join(filter(None, [result.case.note, *checks]))
    rows = []
    for index, measure in enumerate(result.case.measures):
        ours_value, theirs_value = ours.median(measure.key), theirs.median(measure.key)
        cells = [
            result.case.name,
            measure.label,
            measure.format(ours_value),
            measure.format(theirs_value),
            measure.describe_ratio(ours_value, theirs_value),
            measure.target.describe(measure) if measure.target else "–",
            _verdict(measure, ours, theirs),
            note if index == 0 else "",
        ]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return rows


def _errors(results: Sequence[CaseResult]) -> list[str]:
    lines = []
    for result in results:
        for impl, outcome in result.outcomes.items():
            for message in dict.fromkeys(outcome.errors):  # unique, in order
                count = outcome.errors.count(message)
                quoted = [f"  {line}" for line in message.splitlines()]
                lines += [f"- **{result.case.name}**, {impl} ({count}×):", "  ```", *quoted, "  ```"]
    return ["", "Failures:", "", *lines] if lines else []


def render_section(
    name: str, title: str, results: Sequence[CaseResult], facts: dict[str, str], repeats: int, quick: bool, notes: str
) -> str:
    start, end = _section_markers(name)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        start,
        f"## `{name}` — {title}",
        "",
        f"Run {when} · {'quick sizes' if quick else 'full sizes'} · {repeats} repeats, alternating mltrail/MLflow, "
        "each in a fresh process and directory.",
        "",
        "Machine: " + " · ".join(f"{key} {value}" for key, value in facts.items()),
        "",
        *([notes, ""] if notes else []),
        f"| workload | metric | mltrail | MLflow {MLFLOW_VERSION} | ratio | target | result | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        lines += _rows(result)
    lines += _errors(results)
    lines.append(end)
    return "\n".join(lines)


def _existing_sections(text: str) -> dict[str, str]:
    pattern = re.compile(r"<!-- suite:(\w+):start -->.*?<!-- suite:\1:end -->", re.S)
    return {match.group(1): match.group(0) for match in pattern.finditer(text)}


def merge_results(sections: dict[str, str], order: Sequence[str]) -> str:
    """Replace the given suites' sections in RESULTS.md, keep the others, and return the body."""
    existing = _existing_sections(RESULTS_FILE.read_text()) if RESULTS_FILE.exists() else {}
    existing.update(sections)
    body = "\n\n".join(existing[name] for name in order if name in existing)
    RESULTS_FILE.write_text(_HEADER + "\n" + body + "\n")
    _sync_readme(body)
    return body


def _sync_readme(body: str, readme: Path = README_FILE) -> None:
    """Copy the tables into README.md between its results markers (headings demoted one level)."""
    if not readme.exists():
        return
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in text or end not in text:
        return
    demoted = re.sub(r"^## ", "### ", body, flags=re.M)
    head, rest = text.split(start, 1)
    readme.write_text(head + start + "\n" + demoted + "\n" + end + rest.split(end, 1)[1])
