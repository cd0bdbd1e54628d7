"""Reading one metric's history, the store's largest result (often 10⁵–10⁶ points), at the driver's speed.

- A history is read from its chunks (:mod:`mltrail.store.sql.chunks`): about one row per 1,000 points, fetched
  straight from the DBAPI cursor, in binary format on PostgreSQL. The statement is compiled once per dialect and
  finds the run by a subquery, so reading a whole history is one round trip.
- Points are returned as ``(value, timestamp, step)``, the positional order of :class:`Metric` after its key, so
  the store builds the objects in C by ``starmap``, and the server encodes the tuples without any objects.
- A page after the first (``offset``) first reads the chunks' point counts and ranges, then only the chunks
  that hold the page, when the history's chunks follow each other in time (else the whole history is merged).
- The cyclic garbage collector is paused while the points and objects are allocated: otherwise every 700
  allocations start a collection, and the older generations get rescanned over and over, which costs as much as
  building the tuples. Pausing is process-wide, so it only ever lasts for one read.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import starmap
from typing import Any

import sqlalchemy as sa

from mltrail.entities import Metric
from mltrail.store.sql import chunks
from mltrail.store.sql import schema as t
from mltrail.store.sql.chunks import HistoryPoint
from mltrail.store.sql.loaders import Baked

_c = t.metric_chunks.c


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block (unless someone re-enables it meanwhile; nothing is leaked then)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _chunks(*columns: Any, ts_range: bool = False) -> Baked:
    """``columns`` of the chunks of the metric ``key`` of the run ``run_id`` (found by a subquery: no lookup of
    its own) in ``ts_to`` order; if ``ts_range``, only those whose ``ts_to`` is within ``first .. last``."""
    run_pk = sa.select(t.runs.c.id).where(t.runs.c.run_uuid == sa.bindparam("run_id")).scalar_subquery()
    query = sa.select(*columns).where(_c.run_pk == run_pk, _c.key == sa.bindparam("key"))
    if ts_range:
        query = query.where(_c.ts_to.between(sa.bindparam("first"), sa.bindparam("last")))
    return Baked(query.order_by(_c.ts_to, _c.digest), binary_rows=True)


_WHOLE = _chunks(_c.ts_from, _c.ts_to, _c.data)
_SIZES = _chunks(_c.ts_from, _c.ts_to, _c.points)
_SPAN = _chunks(_c.ts_from, _c.ts_to, _c.data, ts_range=True)


def read_history(
    connection: sa.Connection, run_id: str, key: str, limit: int | None, offset: int
) -> list[HistoryPoint]:
    """Points ``offset .. offset + limit`` of the run's metric ``key`` in (timestamp, step, value) order, as
    ``(value, timestamp, step)``. Empty also when there is no run ``run_id``: the caller tells the two apart."""
    parameters = {"run_id": run_id, "key": key}
    end = None if limit is None else offset + limit
    with _gc_paused():
        if offset:
            span = _page_span(_SIZES.fetch(connection, parameters), offset, end)
            if span is not None:
                first, last, skipped = span
                found = _SPAN.fetch(connection, {**parameters, "first": first, "last": last})
                return chunks.in_history_order(found)[offset - skipped : None if end is None else end - skipped]
        return chunks.in_history_order(read_chunks(connection, run_id, key))[offset:end]


def read_chunks(connection: sa.Connection, run_id: str, key: str) -> list[tuple[int, int, bytes]]:
    """``(ts_from, ts_to, data)`` of every chunk of the run's metric ``key``, in ``ts_to`` order."""
    return _WHOLE.fetch(connection, {"run_id": run_id, "key": key})


def _page_span(sizes: Sequence[tuple[int, int, int]], offset: int, end: int | None) -> tuple[int, int, int] | None:
    """``(first ts_to, last ts_to, points before)`` of the chunks that hold points ``offset .. end`` when the
    chunks (``(ts_from, ts_to, points)`` in ``ts_to`` order) follow each other in time; else None, as is when the
    page is past the end."""
    if not chunks.follow_in_time(sizes):
        return None
    before, first, last, skipped = 0, None, None, 0
    for _, ts_to, points in sizes:
        if before + points > offset and (end is None or before < end):
            if first is None:
                first, skipped = ts_to, before
            last = ts_to
        before += points
    return None if first is None or last is None else (first, last, skipped)


def history_metrics(key: str, points: list[HistoryPoint]) -> list[Metric]:
    """Metric entities of the points of the metric ``key`` that :func:`read_history` read."""
    with _gc_paused():
        return list(starmap(partial(Metric, key), points))
