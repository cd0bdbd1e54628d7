"""Metric files: one line per point, ``<timestamp> <value> <step>`` (MLflow's format).

Also read: legacy 2-field lines (``<timestamp> <value>``, step 0) and 5-field lines with the dataset name and
digest. Values are written the way Python prints floats (``nan``, ``inf``, ``-inf``), as MLflow does.
A last line without its newline is a write still in flight and is ignored; blank lines are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from mltrail.entities import Metric
from mltrail.errors import ErrorCode, MltrailException

#: (timestamp, value, step, dataset_name, dataset_digest)
Point = tuple[int, float, int, str | None, str | None]


def format_lines(metrics: Iterable[Metric]) -> bytes:
    """The bytes to append for ``metrics`` (all of one key), in logging order."""
    lines = []
    for m in metrics:
        if _writable_dataset(m.dataset_name) and _writable_dataset(m.dataset_digest):
            lines.append(f"{m.timestamp} {m.value!r} {m.step} {m.dataset_name} {m.dataset_digest}\n")
        else:
            lines.append(f"{m.timestamp} {m.value!r} {m.step}\n")
    return "".join(lines).encode("utf-8")


def _writable_dataset(text: str | None) -> bool:
    """A dataset name/digest fits in a metric line only without whitespace (MLflow writes it unquoted); if it
    does not, the point is kept and the pair dropped."""
    return bool(text) and not any(c.isspace() for c in text)  # type: ignore[union-attr]


def _complete_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    lines.pop()  # the text after the last newline: empty, or a partial line still being written
    return lines


def _malformed(key: str, experiment_id: str, detail: str) -> MltrailException:
    return MltrailException(
        f"Metric '{key}' is malformed; {detail}. Experiment id: {experiment_id}", ErrorCode.INTERNAL_ERROR
    )


def _parse_line(parts: list[bytes]) -> Point | None:
    n = len(parts)
    if n == 3:
        return int(parts[0]), float(parts[1]), int(parts[2]), None, None
    if n == 2:
        return int(parts[0]), float(parts[1]), 0, None, None
    if n == 5:
        return int(parts[0]), float(parts[1]), int(parts[2]), parts[3].decode(), parts[4].decode()
    return None


def iter_points(data: bytes, key: str, experiment_id: str) -> Iterator[Point]:
    for line in _complete_lines(data):
        parts = line.split()
        if not parts:
            continue
        try:
            point = _parse_line(parts)
        except ValueError:
            raise _malformed(key, experiment_id, f"could not parse line {line!r}") from None
        if point is None:
            raise _malformed(
                key,
                experiment_id,
                f"persisted metric data contained {len(parts)} fields. Expected 2, 3, or 5 fields",
            )
        yield point


def _rank(point: Point) -> tuple[int, int, float]:
    """MLflow's latest-value order: step, then timestamp, then value (NaN counted as 0, like the SQL store)."""
    value = point[1]
    return point[2], point[0], 0.0 if value != value else value


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Latest point of one metric key, and with ``with_range`` its min/max (NaN ignored unless all are NaN)."""

    latest: Point
    min: float | None = None
    max: float | None = None


def _range(values: Iterable[float]) -> tuple[float, float]:
    numbers = [v for v in values if v == v]
    return (min(numbers), max(numbers)) if numbers else (math.nan, math.nan)


def _summarize_uniform(tokens: list[bytes], with_range: bool) -> MetricSummary:
    """Fast path for files of 3-field lines only: C-level conversions over token slices."""
    steps = list(map(int, tokens[2::3]))
    top = max(steps)
    if steps.count(top) == 1:
        i = steps.index(top)
        latest: Point = (int(tokens[3 * i]), float(tokens[3 * i + 1]), top, None, None)
    else:
        candidates = [
            (int(tokens[3 * i]), float(tokens[3 * i + 1]), top, None, None) for i, s in enumerate(steps) if s == top
        ]
        latest = candidates[0]
        for point in candidates[1:]:
            if _rank(point) > _rank(latest):
                latest = point
    if not with_range:
        return MetricSummary(latest)
    return MetricSummary(latest, *_range(map(float, tokens[1::3])))


def summarize(data: bytes, key: str, experiment_id: str, with_range: bool = False) -> MetricSummary | None:
    """Latest point (and min/max) of a metric file in one pass; None if it holds no complete point."""
    data = data[: data.rfind(b"\n") + 1]
    tokens = data.split()
    if tokens and len(tokens) == 3 * data.count(b"\n"):
        try:
            return _summarize_uniform(tokens, with_range)
        except ValueError:
            pass  # a bad number somewhere: let the line-by-line reader name the problem
    latest: Point | None = None
    values = []
    for point in iter_points(data, key, experiment_id):
        if latest is None or _rank(point) > _rank(latest):
            latest = point
        values.append(point[1])
    if latest is None:
        return None
    return MetricSummary(latest, *_range(values)) if with_range else MetricSummary(latest)


def _history_order(point: Point) -> tuple[int, int, int, float]:
    value = point[1]
    is_nan = value != value
    return point[0], point[2], int(is_nan), 0.0 if is_nan else value


def history(data: bytes, key: str, experiment_id: str) -> list[Point]:
    """All points ordered by (timestamp, step, value), identical points (a retried write) returned once."""
    unique = {(p[0], repr(p[1]), p[2], p[3], p[4]): p for p in iter_points(data, key, experiment_id)}
    return sorted(unique.values(), key=_history_order)


def to_metric(key: str, point: Point, run_id: str | None = None) -> Metric:
    return Metric(key, point[1], point[0], point[2], point[3], point[4], None, run_id)


def group_by_key(metrics: Sequence[Metric]) -> dict[str, list[Metric]]:
    grouped: dict[str, list[Metric]] = {}
    for metric in metrics:
        grouped.setdefault(metric.key, []).append(metric)
    return grouped
