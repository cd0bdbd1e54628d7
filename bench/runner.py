"""Run each case for both implementations, alternating, in fresh processes and directories; keep medians."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.environment import WORK_DIR, WORKLOADS_DIR, Impl, subprocess_env

WORKLOAD_TIMEOUT_S = 3600


class WorkloadError(RuntimeError):
    """A workload (or the server it needed) failed; the message says exactly what happened."""


@dataclass(frozen=True)
class Target:
    """What mltrail must reach: a bound on its own figure, or (``relative``) a factor over MLflow's."""

    bound: float
    relative: bool = False

    def met(self, measure: Measure, ours: float, theirs: float | None) -> bool | None:
        if self.relative:
            ratio = measure.ratio(ours, theirs)
            return None if ratio is None else ratio >= self.bound
        return ours >= self.bound if measure.higher_is_better else ours < self.bound

    def describe(self, measure: Measure) -> str:
        if self.relative:
            return f"≥{self.bound:g}×"
        return f"{'≥' if measure.higher_is_better else '<'} {measure.format(self.bound)}"


@dataclass(frozen=True)
class Measure:
    """One figure a workload reports (``key`` in its JSON line) and how to judge it."""

    key: str
    label: str
    unit: str  # "/s", "s", "MB"
    higher_is_better: bool
    target: Target | None = None
    words: tuple[str, str] = ("faster", "slower")

    def format(self, value: float | None) -> str:
        if value is None:
            return "error"
        if self.unit == "/s":
            return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"
        if self.unit == "s":
            return f"{value * 1000:.1f} ms" if value < 1 else f"{value:,.2f} s"
        return f"{value:,.1f} {self.unit}"

    def ratio(self, ours: float | None, theirs: float | None) -> float | None:
        """How many times better mltrail is (>1 = better), whatever the direction of the figure."""
        if not ours or not theirs:
            return None
        return ours / theirs if self.higher_is_better else theirs / ours

    def describe_ratio(self, ours: float | None, theirs: float | None) -> str:
        ratio = self.ratio(ours, theirs)
        if ratio is None:
            return "–"
        return f"{ratio:.1f}× {self.words[0]}" if ratio >= 1 else f"{1 / ratio:.1f}× {self.words[1]}"


Execute = Callable[[Impl, Path], dict]


@dataclass
class Case:
    """One workload row group: how to run one repeat for one implementation, and what it measures."""

    name: str
    measures: Sequence[Measure]
    execute: Execute
    note: str = ""


@dataclass
class Outcome:
    """Everything one case produced for one implementation over all repeats."""

    values: dict[str, list[float]] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # details of repeats whose read-back check failed
    verified: bool = True
    errors: list[str] = field(default_factory=list)

    def failed_detail(self) -> str:
        return self.failures[0] if self.failures else ""

    def median(self, key: str) -> float | None:
        values = self.values.get(key)
        return statistics.median(values) if values else None

    def add(self, measurements: dict) -> None:
        for key, value in measurements.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.values.setdefault(key, []).append(float(value))
        detail = str(measurements.get("detail", ""))
        if detail:
            self.details.append(detail)
        if "verified" in measurements and not measurements["verified"]:
            self.verified = False
            self.failures.append(detail)


@dataclass
class CaseResult:
    case: Case
    outcomes: dict[str, Outcome]


def run_workload(
    impl: Impl,
    script: str,
    args: Sequence[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = WORKLOAD_TIMEOUT_S,
) -> dict:
    """Run ``bench/workloads/<script>`` with the implementation's interpreter; return its JSON line."""
    command = [str(impl.python), str(WORKLOADS_DIR / script), "--impl", impl.name, *map(str, args)]
    try:
        result = subprocess.run(
            command, cwd=cwd, env=subprocess_env(env), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkloadError(f"`{script} --impl {impl.name}` timed out after {timeout:.0f} s") from exc
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = "\n".join(result.stderr.strip().splitlines()[-12:])
        shown = " ".join([script, "--impl", impl.name, *map(str, args)])
        raise WorkloadError(f"`{shown}` exited {result.returncode}:\n{tail}")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"`{script} --impl {impl.name}` printed no JSON line: {lines[-1][:200]}") from exc


def workload(script: str, args: dict[str, Sequence[object]]) -> Execute:
    """The common case: one workload subprocess per repeat, with per-implementation arguments."""

    def execute(impl: Impl, workdir: Path) -> dict:
        return run_workload(impl, script, [str(a) for a in args[impl.name]], workdir)

    return execute


def run_case(case: Case, impls: Sequence[Impl], repeats: int, label: str) -> CaseResult:
    """Alternate implementations (A, B, A, B, ...), each repeat in a fresh temp directory."""
    outcomes = {impl.name: Outcome() for impl in impls}
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    for repeat in range(1, repeats + 1):
        for impl in impls:
            workdir = Path(tempfile.mkdtemp(prefix=f"{impl.name}-", dir=WORK_DIR))
            try:
                measurements = case.execute(impl, workdir)
                outcomes[impl.name].add(measurements)
                shown = ", ".join(
                    f"{m.label}={m.format(measurements.get(m.key))}" for m in case.measures if m.key in measurements
                )
                print(f"[{label}] {case.name} #{repeat} {impl.name}: {shown}", flush=True)
            except WorkloadError as exc:
                outcomes[impl.name].errors.append(str(exc))
                print(f"[{label}] {case.name} #{repeat} {impl.name}: FAILED\n{exc}", flush=True)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    return CaseResult(case, outcomes)
