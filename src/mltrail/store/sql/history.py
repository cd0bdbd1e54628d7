"""Reading one metric's history, the store's largest result (often 10⁵–10⁶ points), at the driver's speed.

- Rows come straight from the DBAPI cursor (no SQLAlchemy row objects) as ``(value, timestamp, step)``, the
  positional order of :class:`Metric` after its key, so the objects are built in C by ``starmap``.
- Non-finite values come back as NULL (the CASE below); only a history that holds some is read again with its
  ``value_class`` column and decoded point by point.
- The cyclic garbage collector is paused while the rows and objects are allocated: otherwise every 700
  allocations start a collection, and the older generations get rescanned over and over, which costs as much as
  building the objects. Pausing is process-wide, so it only ever lasts for one fetch.
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
from mltrail.store.sql.loaders import fetch_tuples

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


def _query(columns: tuple[Any, ...], run_pk: int, key: str, limit: int | None, offset: int) -> sa.Select[Any]:
    query = sa.select(*columns).where(_m.c.run_pk == run_pk, _m.c.key == key).order_by(*_ORDER)
    if limit is not None:
        query = query.limit(limit)
    return query.offset(offset) if offset else query


def read_history(connection: sa.Connection, run_pk: int, key: str, limit: int | None, offset: int) -> list[Metric]:
    """Points ``offset .. offset + limit`` of the run's metric ``key`` in (timestamp, step, value) order."""
    with _gc_paused():
        rows = fetch_tuples(connection, _query((_FINITE_VALUE, _m.c.timestamp, _m.c.step), run_pk, key, limit, offset))
        if None in map(itemgetter(0), rows):
            columns = (_m.c.value, _m.c.value_class, _m.c.timestamp, _m.c.step)
            encoded = fetch_tuples(connection, _query(columns, run_pk, key, limit, offset))
            decode = t.decode_value
            rows = [(decode(value, value_class), ts, step) for value, value_class, ts, step in encoded]
        return list(starmap(partial(Metric, key), rows))
