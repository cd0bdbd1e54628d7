"""Metric histories stored as chunks: the points one write added to one (run, key), packed in one row.

A row per point cost PostgreSQL about 3 µs of server time per point (a heap tuple, a primary-key entry and their
WAL records), far more than the client's work; a chunk of 1,000 points costs about as much as one such row. Each
``metric_chunks`` row holds:

- ``data``: the points in history order, ``(timestamp, step, value)`` ascending with values ordered
  ``-inf < numbers < +inf < NaN``, as three little-endian arrays one after the other: int64 timestamps, int64
  steps, IEEE float64 values (NaN and ±Inf as they are; this is the stored format, which migrations rely on);
- ``points`` and the ranges ``ts_from..ts_to`` and ``step_from..step_to`` of its points, so that readers and
  writers find the chunks that may hold a point without unpacking any;
- ``digest``: a BLAKE2b hash of ``data``. The primary key ``(run_pk, key, ts_to, digest)`` makes a client's
  retried batch (the same points again) a conflict, and orders a history's chunks by their last timestamp.

Writers store only points that no chunk of the series holds yet (:func:`overlapping` finds the chunks to check),
so a history never holds a point twice; readers still merge chunks whose ranges overlap.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

import sqlalchemy as sa

from mltrail.store.bucket_arrays import finite_columns
from mltrail.store.sql import schema as t
from mltrail.store.sql.points import Point, Series, float_values

#: A chunk row in the order of :data:`COLUMNS`.
ChunkRow = tuple[int, str, int, bytes, int, int, int, int, bytes]
COLUMNS = ("run_pk", "key", "ts_to", "digest", "ts_from", "step_from", "step_to", "points", "data")
#: A point as histories are read: ``(value, timestamp, step)``, the positional order of ``Metric`` after its key.
HistoryPoint = tuple[float, int, int]

_LITTLE_ENDIAN = sys.byteorder == "little"


def pack(timestamps: Sequence[int], steps: Sequence[int], values: Sequence[float]) -> bytes:
    """The ``data`` of a chunk whose points are given as three parallel columns, already in history order."""
    columns = _little_endian(array("q", timestamps), array("q", steps), array("d", values))
    return b"".join(column.tobytes() for column in columns)


def unpack(data: bytes) -> tuple[list[int], list[int], list[float]]:
    """``(timestamps, steps, values)`` of a chunk's ``data``."""
    size = len(data) // 3
    ts, steps, values = _little_endian(
        array("q", data[:size]), array("q", data[size : 2 * size]), array("d", data[2 * size :])
    )
    return ts.tolist(), steps.tolist(), values.tolist()


def _little_endian(*columns: array[Any]) -> tuple[array[Any], ...]:
    """The columns in (or from) the stored byte order: swapped in place on a big-endian machine."""
    if not _LITTLE_ENDIAN:
        for column in columns:
            column.byteswap()
    return columns


def as_arrays(datas: Sequence[bytes]) -> tuple[Any, Any, Any, int] | None:
    """``(timestamps, values, steps)`` numpy arrays of the finite points of chunks' ``data`` (in no set order),
    and the number of distinct non-finite points; None without numpy."""
    try:
        import numpy as np
    except ImportError:
        return None
    parts = [np.frombuffer(data, dtype="<i8").reshape(3, -1) for data in datas]
    table = np.concatenate(parts, axis=1) if parts else np.empty((3, 0), dtype="<i8")
    timestamps, steps = table[0].astype(np.int64), table[1].astype(np.int64)
    values = table[2].view("<f8").astype(np.float64)
    return finite_columns(timestamps, values, steps)


def write_points(run_pk: int, key: str, data: bytes) -> Iterator[Point]:
    """The points of a chunk's ``data`` as the write path's ``(run_pk, key, timestamp, step, value_class, value)``."""
    for ts, step, value in zip(*unpack(data), strict=True):
        yield run_pk, key, ts, step, *reversed(t.encode_value(value))


def rows(series: Sequence[Series]) -> list[ChunkRow]:
    """One chunk row per series (the points of one write to one (run, key), in history order, distinct)."""
    out = []
    for one in series:
        timestamps, steps = one.timestamps, one.steps
        data = pack(timestamps, steps, float_values(one))
        digest = hashlib.blake2b(data, digest_size=16).digest()
        ranges = (timestamps[0], min(steps), max(steps))
        out.append((one.run_pk, one.key, timestamps[-1], digest, *ranges, len(steps), data))
    return out


_c = t.metric_chunks.c
#: The stored chunks of some keys of a run that end at or after a timestamp: a primary-key range per key.
_ENDING_AFTER = sa.select(_c.key, _c.ts_from, _c.ts_to, _c.step_from, _c.step_to, _c.digest).where(
    _c.run_pk == sa.bindparam("run_pk"),
    _c.key.in_(sa.bindparam("keys", expanding=True)),
    _c.ts_to >= sa.bindparam("ts_from"),
)


def overlapping(connection: sa.Connection, run_pk: int, chunk_rows: Sequence[ChunkRow]) -> list[tuple[str, bytes]]:
    """``(key, data)`` of the stored chunks that may hold a point of ``chunk_rows``: those of the same key whose
    timestamp and step ranges both meet the new chunk's. Usually there are none, and one query tells."""
    if not chunk_rows:
        return []
    new = {row[1]: row for row in chunk_rows}
    parameters = {"run_pk": run_pk, "keys": list(new), "ts_from": min(row[4] for row in chunk_rows)}
    meeting = [
        (key, ts_to, digest)
        for key, ts_from, ts_to, step_from, step_to, digest in connection.execute(_ENDING_AFTER, parameters)
        if ts_to >= new[key][4] and ts_from <= new[key][2] and step_to >= new[key][5] and step_from <= new[key][6]
    ]
    if not meeting:
        return []
    found = sa.select(_c.key, _c.data).where(_c.run_pk == run_pk, sa.tuple_(_c.key, _c.ts_to, _c.digest).in_(meeting))
    return [(key, data) for key, data in connection.execute(found)]


def follow_in_time(chunks: Sequence[tuple[int, int, Any]]) -> bool:
    """Whether chunks (``(ts_from, ts_to, ...)`` in ``ts_to`` order) have disjoint timestamp ranges, each after
    the one before: then their points, concatenated, are in history order."""
    return all(later[0] > earlier[1] for earlier, later in pairwise(chunks))


def in_history_order(chunks: Sequence[tuple[int, int, bytes]]) -> list[HistoryPoint]:
    """The points of one history's chunks (``(ts_from, ts_to, data)``, ordered by ``ts_to``) in history order.
    Chunks whose timestamp ranges are disjoint are simply concatenated (the usual case: a run logs forward in
    time); otherwise the points are sorted and any point held twice is kept once."""
    timestamps: list[int] = []
    steps: list[int] = []
    values: list[float] = []
    for _, _, data in chunks:
        chunk_ts, chunk_steps, chunk_values = unpack(data)
        timestamps += chunk_ts
        steps += chunk_steps
        values += chunk_values
    points = list(zip(values, timestamps, steps, strict=True))
    if follow_in_time(chunks):
        return points
    distinct = {_history_order(point): point for point in points}
    return [distinct[order] for order in sorted(distinct)]


def _history_order(point: HistoryPoint) -> tuple[int, int, int, float]:
    """``(timestamp, step, value_class, value)``: sorts like history order, and is equal for equal points (also
    for NaN, which is not equal to itself)."""
    value, value_class = t.encode_value(point[0])
    return point[1], point[2], value_class, value
