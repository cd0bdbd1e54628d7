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

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from itertools import groupby
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from mltrail.store.analytics import BLOCK_STEPS
from mltrail.store.sql import chunks
from mltrail.store.sql import schema as t
from mltrail.store.sql.bulk import Batch, BulkInsert
from mltrail.store.sql.expressions import lex_greater

#: A history point as the write path holds it: ``(run_pk, key, timestamp, step, value_class, value)``.
Point = tuple[int, str, int, int, int, float]
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


_RUN_KEY = itemgetter(0, 1)
_TIMESTAMP, _STEP, _CLASS, _VALUE = (itemgetter(i) for i in (2, 3, 4, 5))
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_ORDERED = itemgetter(3, 2, 5)  # (step, timestamp, value): the order of "first", "last" and of ties


def summarize(points: Sequence[Point]) -> list[tuple[Any, ...]]:
    """One ``metric_blocks`` row per (run, key, block) of ``points`` (sorted by run, key, timestamp), in key
    order. Every point is counted: callers pass only points that are not stored yet, or a block's whole history.

    This runs on every write, so the work per point is done a column at a time in C where it can be."""
    rows = []
    for (run_pk, key), group in groupby(points, _RUN_KEY):
        series = list(group)
        numbers = [step // BLOCK_STEPS for step in map(_STEP, series)]
        rows.extend(_summary(run_pk, key, block, block_points) for block, block_points in _blocks(numbers, series))
    return rows


def _blocks(numbers: list[int], series: list[Point]) -> list[tuple[int, list[Point]]]:
    """``series`` split by block number (``numbers``, one per point), in block order. Steps usually grow with
    timestamps, so the numbers are usually sorted already and each block is one run of them."""
    if numbers == sorted(numbers):
        pairs = groupby(zip(numbers, series, strict=True), _FIRST)
        return [(block, list(map(_SECOND, run))) for block, run in pairs]
    blocks: dict[int, list[Point]] = defaultdict(list)
    for block, point in zip(numbers, series, strict=True):
        blocks[block].append(point)
    return sorted(blocks.items())


def _summary(run_pk: int, key: str, block: int, points: list[Point]) -> tuple[Any, ...]:
    timestamps = list(map(_TIMESTAMP, points))
    ts_from, ts_to = min(timestamps), max(timestamps)
    finite = [p for p in points if p[4] == t.FINITE] if any(map(_CLASS, points)) else points
    if not finite:
        return (run_pk, key, block, 0, len(points), *_EMPTY, ts_from, ts_to)
    ordered = list(map(_ORDERED, finite))
    values = list(map(_VALUE, finite))
    return (
        run_pk,
        key,
        block,
        len(finite),
        len(points) - len(finite),
        *min(ordered),
        *max(ordered),
        *_first_with(min(values), ordered, values),
        *_first_with(max(values), ordered, values),
        ts_from,
        ts_to,
    )


def _first_with(value: float, ordered: list[tuple[int, int, float]], values: list[float]) -> tuple[int, int, float]:
    """The first point (by step, then timestamp) of those holding ``value``; usually there is only one."""
    if values.count(value) == 1:
        return ordered[values.index(value)]
    return min(point for point in ordered if point[2] == value)


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


def record(connection: sa.Connection, batch: Batch, points: Sequence[Point], *, complete: bool) -> None:
    """Queue in ``batch`` the accounting for the new history ``points`` (sorted, distinct); ``complete`` tells
    whether all of them were stored by this write. If not, the blocks are rebuilt from the stored history, which
    must hold the points by now."""
    merge, replace = _writers(connection.dialect)
    summaries = summarize(points)
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
