"""Per-block summaries of metric histories (table ``metric_blocks``), kept up to date inside each write.

A block is the points of one (run, key) whose steps fall in ``[k * BLOCK_STEPS, (k + 1) * BLOCK_STEPS)``. Its row
holds what downsampling needs (:mod:`mltrail.store.sql.analytics`): the number of finite points, the first and
the last finite point by ``(step, timestamp, value)``, the first minimum and the first maximum (ties broken by
step, then timestamp), the number of non-finite points, and the timestamp range of all its points.

A write merges its batch's summary of each block into the stored row with one upsert. Because the summary
counts points, it may only see points that were not stored before: when some of the write's chunks were stored
already (a concurrent retry of the same batch stored them first), the touched blocks are rebuilt from the stored
history instead, each from the chunks whose step range meets the block's.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from mltrail.store.analytics import BLOCK_STEPS
from mltrail.store.sql import chunks
from mltrail.store.sql import schema as t
from mltrail.store.sql.bulk import Batch, BulkInsert
from mltrail.store.sql.expressions import lex_greater
from mltrail.store.sql.points import Point, Series, series_of

_POINTS = ("first", "last", "low", "high")
COLUMNS = (
    "run_pk",
    "key",
    "block",
    "finite",
    "non_finite",
    *(f"{point}_{field}" for point in _POINTS for field in ("step", "ts", "value")),
    "ts_from",
    "ts_to",
)
_EMPTY = (0, 0, 0.0) * len(_POINTS)


def summarize(points: Sequence[Point]) -> list[tuple[Any, ...]]:
    """One ``metric_blocks`` row per (run, key, block) of ``points`` (sorted by run, key, timestamp), in key
    order. Every point is counted: callers pass only points that are not stored yet, or a block's whole history."""
    return summarize_series(series_of(points))


def summarize_series(series: Sequence[Series]) -> list[tuple[Any, ...]]:
    """:func:`summarize` of points held as series. This runs on every write: the work per point is done a column
    at a time in C where it can be."""
    return [_summary(block, part) for one in series for block, part in _blocks(one)]


def _blocks(series: Series) -> list[tuple[int, Series]]:
    """``series`` split by block, in block order. Steps usually grow with timestamps (then each block is a slice
    of the series), and a batch often lies in one block."""
    steps = series.steps
    first, last = min(steps) // BLOCK_STEPS, max(steps) // BLOCK_STEPS
    if first == last:
        return [(first, series)]
    if list(steps) == sorted(steps):
        parts, start = [], 0
        while start < len(steps):
            block = steps[start] // BLOCK_STEPS
            stop = bisect_left(steps, (block + 1) * BLOCK_STEPS, start)
            parts.append((block, series.part(start, stop)))
            start = stop
        return parts
    members: dict[int, list[int]] = defaultdict(list)
    for i, step in enumerate(steps):
        members[step // BLOCK_STEPS].append(i)
    return [(block, series.select(indices)) for block, indices in sorted(members.items())]


def _summary(block: int, series: Series) -> tuple[Any, ...]:
    timestamps = series.timestamps
    ts_from, ts_to = min(timestamps), max(timestamps)
    if not series.finite:
        series = series.select([i for i, value_class in enumerate(series.classes) if value_class == t.FINITE])
    finite = len(series.timestamps)
    start = (series.run_pk, series.key, block, finite, len(timestamps) - finite)
    if not finite:
        return (*start, *_EMPTY, ts_from, ts_to)
    steps, stamps, values = series.steps, series.timestamps, series.values
    return (
        *start,
        *_extreme_point(min, steps, stamps, values),
        *_extreme_point(max, steps, stamps, values),
        *_first_holding(min(values), steps, stamps, values),
        *_first_holding(max(values), steps, stamps, values),
        ts_from,
        ts_to,
    )


def _extreme_point(
    pick: Callable[..., Any], steps: Sequence[int], timestamps: Sequence[int], values: Sequence[float]
) -> tuple[int, int, float]:
    """The least (``pick=min``) or greatest point by ``(step, timestamp, value)``; usually its step is unique."""
    step = pick(steps)
    if steps.count(step) == 1:
        i = steps.index(step)
        return step, timestamps[i], values[i]
    return pick(point for point in zip(steps, timestamps, values, strict=True) if point[0] == step)


def _first_holding(
    value: float, steps: Sequence[int], timestamps: Sequence[int], values: Sequence[float]
) -> tuple[int, int, float]:
    """The first point (by step, then timestamp) of those holding ``value``; usually there is only one."""
    if values.count(value) == 1:
        i = values.index(value)
        return steps[i], timestamps[i], values[i]
    return min(point for point in zip(steps, timestamps, values, strict=True) if point[2] == value)


def _merge(new: Any, old: Any) -> list[tuple[str, Any]]:
    """The upsert's update: the stored summary and the batch's, combined. ``finite`` is assigned last, as the
    conditions read the stored count (MySQL evaluates assignments left to right, see :mod:`~.writes`); within a
    point the least significant column is assigned first, which keeps the later comparisons' answers."""
    zero = sa.literal_column("0")  # rows are bound positionally: constants must be inline
    has_new = new.finite > zero

    def better(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        return sa.and_(has_new, sa.or_(old.finite == zero, condition))

    def columns(point: str, *fields: str) -> list[Any]:
        return [getattr(new, f"{point}_{f}") for f in fields], [getattr(old, f"{point}_{f}") for f in fields]

    first_new, first_old = columns("first", "step", "ts", "value")
    last_new, last_old = columns("last", "step", "ts", "value")
    low_new, low_old = columns("low", "value", "step", "ts")
    high_new, high_old = columns("high", "step", "ts")
    conditions = {
        "first": better(lex_greater(first_old, first_new)),
        "last": better(lex_greater(last_new, last_old)),
        "low": better(lex_greater(low_old, low_new)),
        "high": better(
            sa.or_(
                new.high_value > old.high_value,
                sa.and_(new.high_value == old.high_value, lex_greater(high_old, high_new)),
            )
        ),
    }
    significance = {"first": "value ts step", "last": "value ts step", "low": "ts step value", "high": "ts step value"}
    assignments = [
        (column, sa.case((conditions[point], getattr(new, column)), else_=getattr(old, column)))
        for point in _POINTS
        for column in (f"{point}_{field}" for field in significance[point].split())
    ]
    return [
        *assignments,
        ("ts_from", sa.case((new.ts_from < old.ts_from, new.ts_from), else_=old.ts_from)),
        ("ts_to", sa.case((new.ts_to > old.ts_to, new.ts_to), else_=old.ts_to)),
        ("non_finite", old.non_finite + new.non_finite),
        ("finite", old.finite + new.finite),
    ]


def _replace(new: Any, old: Any) -> list[tuple[str, Any]]:
    return [(column, getattr(new, column)) for column in COLUMNS[3:]]


@lru_cache(maxsize=16)
def _writers(dialect: sa.Dialect) -> tuple[BulkInsert, BulkInsert]:
    """(merging, replacing) upserts of one dialect, compiled once."""
    return BulkInsert(dialect, t.metric_blocks, COLUMNS, _merge), BulkInsert(
        dialect, t.metric_blocks, COLUMNS, _replace
    )


def record(connection: sa.Connection, batch: Batch, series: Sequence[Series], *, complete: bool) -> None:
    """Queue in ``batch`` the accounting for the new history points ``series`` (distinct); ``complete`` tells
    whether all of them were stored by this write. If not, the blocks are rebuilt from the stored history, which
    must hold the points by now."""
    merge, replace = _writers(connection.dialect)
    summaries = summarize_series(series)
    if complete:
        batch.add(merge, summaries)
        return
    batch.add(replace, [_rebuilt(connection, row) for row in summaries])


def _rebuilt(connection: sa.Connection, batch: tuple[Any, ...]) -> tuple[Any, ...]:
    """The summary of a whole block, read from the stored chunks whose step range meets the block's."""
    run_pk, key, block = batch[:3]
    c = t.metric_chunks.c
    low, high = block * BLOCK_STEPS, (block + 1) * BLOCK_STEPS - 1
    stored = connection.execute(
        sa.select(c.data).where(c.run_pk == run_pk, c.key == key, c.step_to >= low, c.step_from <= high)
    ).scalars()
    points = {point for data in stored for point in chunks.write_points(run_pk, key, data) if low <= point[3] <= high}
    (row,) = summarize(sorted(points))
    return row
