"""Reading one metric's history, the store's largest result (often 10⁵–10⁶ points), at the driver's speed.

- Rows come straight from the DBAPI cursor (no SQLAlchemy row objects) as ``(value, timestamp, step)``, the
  positional order of :class:`Metric` after its key, so the store builds the objects in C by
  ``starmap``, and the server encodes the tuples without any objects. The statement is compiled once per dialect
  and finds the run by a subquery, so a read is one round trip.
- Non-finite values come back as NULL (the CASE below); only a history that holds some is read again with its
  ``value_class`` column and decoded point by point.
- The cyclic garbage collector is paused while the rows and objects are allocated: otherwise every 700
  allocations start a collection, and the older generations get rescanned over and over, which costs as much as
  building the tuples. Pausing is process-wide, so it only ever lasts for one fetch.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from itertools import starmap
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from mltrail.entities import Metric
from mltrail.store.sql import schema as t
from mltrail.store.sql.loaders import Baked

_m = t.metrics
_ORDER = (_m.c.timestamp, _m.c.step, _m.c.value_class, _m.c.value)
_FINITE_VALUE = sa.case((_m.c.value_class == t.FINITE, _m.c.value))


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


def _points(*value_columns: Any) -> Baked:
    """The points of the metric ``key`` of the run ``run_id`` (found by a subquery: no lookup of its own),
    ``value_columns`` then timestamp and step, rows ``offset .. offset + limit`` in history order."""
    run_pk = sa.select(t.runs.c.id).where(t.runs.c.run_uuid == sa.bindparam("run_id")).scalar_subquery()
    return Baked(
        sa.select(*value_columns, _m.c.timestamp, _m.c.step)
        .where(_m.c.run_pk == run_pk, _m.c.key == sa.bindparam("key"))
        .order_by(*_ORDER)
        .limit(sa.bindparam("limit"))
        .offset(sa.bindparam("offset")),
        binary_rows=True,
    )


_FINITE_POINTS = _points(_FINITE_VALUE)
_ENCODED_POINTS = _points(_m.c.value, _m.c.value_class)
#: The limit of a read of the whole history (a bound LIMIT needs a number; every dialect takes this one).
_NO_LIMIT = 2**63 - 1


def read_history(
    connection: sa.Connection, run_id: str, key: str, limit: int | None, offset: int
) -> list[tuple[float, int, int]]:
    """Points ``offset .. offset + limit`` of the run's metric ``key`` in (timestamp, step, value) order, as
    ``(value, timestamp, step)``. Empty also when there is no run ``run_id``: the caller tells the two apart."""
    parameters = {"run_id": run_id, "key": key, "limit": _NO_LIMIT if limit is None else limit, "offset": offset}
    with _gc_paused():
        rows = _FINITE_POINTS.fetch(connection, parameters)
        if None in map(itemgetter(0), rows):
            decode = t.decode_value
            rows = [
                (decode(value, value_class), ts, step)
                for value, value_class, ts, step in _ENCODED_POINTS.fetch(connection, parameters)
            ]
        return rows


def history_metrics(key: str, points: list[tuple[float, int, int]]) -> list[Metric]:
    """Metric entities of the points of the metric ``key`` that :func:`read_history` read."""
    with _gc_paused():
        return list(starmap(partial(Metric, key), points))
