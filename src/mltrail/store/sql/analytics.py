"""The SQL store's :class:`~mltrail.store.analytics.AnalyticsStore` methods: the web UI's aggregates as queries.

- ``count_runs``, ``list_keys`` and ``group_runs`` select the runs with the filter ``search_runs`` compiles
  (:mod:`mltrail.store.sql.search_sql`) and aggregate in the database; no run is loaded.
- ``get_metric_summaries`` adds up the point counts and finite min/max of each history's ``metric_blocks`` rows
  with one ``GROUP BY (run, key)``, and takes the latest point from ``latest_metrics``.
- ``get_bucketed_metric_history`` of a whole history on the step axis, when its buckets are at least a block wide,
  reads the history's ``metric_blocks`` rows (:mod:`mltrail.store.sql.blocks`): each block lies in one bucket,
  so a bucket's first minimum and first maximum are the least of its blocks'. A 1,000,000-point history is
  about 4,000 rows. Otherwise (a zoomed range, a time axis) it unpacks the history's chunks and downsamples them
  with array operations (:mod:`mltrail.store.bucket_arrays`), or through ``Metric`` objects without numpy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa

from mltrail.entities import Metric, ViewType
from mltrail.errors import MltrailException
from mltrail.search.parser import parse_run_filter
from mltrail.store import analytics as a
from mltrail.store.bucket_arrays import bucket_arrays
from mltrail.store.sql import blocks, chunks, search_sql, transactions
from mltrail.store.sql import schema as t
from mltrail.store.sql.engine import is_memory_sqlite
from mltrail.store.sql.history import read_chunks
from mltrail.store.sql.loaders import fetch_tuples

T = TypeVar("T")
_b = t.metric_blocks
#: Series downsampled at the same time, each in its own connection.
_PARALLEL_SERIES = 4


def _run_conditions(
    experiment_ids: Sequence[str], filter_string: str | None, run_view_type: ViewType
) -> list[sa.ColumnElement[bool]] | None:
    """WHERE clauses over ``runs`` selecting what ``search_runs`` would (None: no experiment, nothing matches)."""
    from mltrail.store.sql.store import _experiment_pk  # here: store.py imports this module

    if isinstance(experiment_ids, str):
        experiment_ids = [experiment_ids]
    stages = ViewType.parse(run_view_type).stages()
    where = search_sql.run_filter(parse_run_filter(filter_string))
    ids = [_experiment_pk(experiment_id) for experiment_id in experiment_ids]
    if not ids:
        return None
    conditions = [t.runs.c.experiment_id.in_(ids), t.runs.c.lifecycle_stage.in_(stages)]
    return conditions if where is None else [*conditions, where]


def _group_column(group_by: a.GroupBy) -> tuple[Any, Any]:
    """(FROM clause, the grouping value column) for a grouping key."""
    if group_by.kind in ("param", "tag"):
        table = (t.params if group_by.kind == "param" else t.tags).alias("grouping")
        on = sa.and_(table.c.run_pk == t.runs.c.id, table.c.key == group_by.key)
        return t.runs.outerjoin(table, on), table.c.value
    column = {"status": t.runs.c.status, "user_id": t.runs.c.user_id, "run_name": t.runs.c.name}[group_by.key]
    return t.runs, column if group_by.key == "status" else sa.func.nullif(column, "")


class SqlAnalytics:
    """Mixin of :class:`mltrail.store.sql.SqlStore` (which provides ``engine``)."""

    engine: sa.Engine

    def _analytics(self, operation: Callable[[sa.Connection], T]) -> T:
        return transactions.run(self.engine, operation, write=False)

    # --- runs ------------------------------------------------------------------------------------------------
    def count_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> int:
        conditions = _run_conditions(experiment_ids, filter_string, run_view_type)
        if conditions is None:
            return 0
        query = sa.select(sa.func.count()).select_from(t.runs).where(*conditions)
        return self._analytics(lambda c: int(c.execute(query).scalar_one()))

    def list_keys(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    ) -> a.RunKeys:
        conditions = _run_conditions(experiment_ids, filter_string, run_view_type)
        if conditions is None:
            return a.RunKeys([], [], [], 0)
        run_pks = sa.select(t.runs.c.id).where(*conditions)
        count = sa.select(sa.func.count()).select_from(t.runs).where(*conditions)

        def keys(connection: sa.Connection) -> a.RunKeys:
            found = []
            for table in (t.params, t.latest_metrics, t.tags):
                used = table.alias("used")  # not the filter's own EXISTS tables, or SQLAlchemy would correlate them
                keys = connection.execute(sa.select(used.c.key).where(used.c.run_pk.in_(run_pks)).distinct())
                found.append(sorted(keys.scalars()))
            return a.RunKeys(*found, run_count=int(connection.execute(count).scalar_one()))

        return self._analytics(keys)

    def group_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: ViewType,
        group_by: a.GroupBy,
        metric_keys: Sequence[str],
    ) -> list[a.RunGroup]:
        """Counts with ``GROUP BY``; the latest finite values of the requested keys are fetched (one row per run
        and key) and described in Python, so the statistics are exactly the generic ones."""
        conditions = _run_conditions(experiment_ids, filter_string, run_view_type)
        if conditions is None:
            return []
        source, value = _group_column(group_by)
        counts_query = sa.select(value, sa.func.count()).select_from(source).where(*conditions).group_by(value)
        lm = t.latest_metrics.alias("latest")  # not the filter's own latest_metrics (see list_keys)
        keys = list(dict.fromkeys(metric_keys))
        with_metrics = source.join(lm, sa.and_(lm.c.run_pk == t.runs.c.id, lm.c.key.in_(keys)))
        values_query = (
            sa.select(value, lm.c.key, lm.c.value)
            .select_from(with_metrics)
            .where(*conditions, lm.c.value_class == t.FINITE)
        )

        def groups(connection: sa.Connection) -> list[a.RunGroup]:
            counts = dict(fetch_tuples(connection, counts_query))
            values: dict[str | None, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
            if keys:
                for group, key, number in fetch_tuples(connection, values_query):
                    values[group][key].append(number)
            return a.make_groups(counts, values, keys)

        return self._analytics(groups)

    # --- metric histories --------------------------------------------------------------------------------------
    @staticmethod
    def _runs_by_id(connection: sa.Connection, run_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """run id -> (primary key, start time); the first unknown id raises like ``get_run``."""
        r = t.runs
        rows = connection.execute(sa.select(r.c.run_uuid, r.c.id, r.c.start_time).where(r.c.run_uuid.in_(run_ids)))
        found = {run_id: (pk, start) for run_id, pk, start in rows}
        for run_id in run_ids:
            if run_id not in found:
                raise MltrailException.not_found(f"Run with id={run_id} not found")
        return found

    def get_metric_summaries(self, run_ids: Sequence[str], keys: Sequence[str]) -> list[a.MetricSummary]:
        run_ids, keys = list(dict.fromkeys(run_ids)), list(dict.fromkeys(keys))
        if not run_ids or not keys:
            return []
        lm = t.latest_metrics
        has_finite = _b.c.finite > 0
        counted = (
            sa.func.sum(_b.c.finite + _b.c.non_finite),
            sa.func.min(sa.case((has_finite, _b.c.low_value))),
            sa.func.max(sa.case((has_finite, _b.c.high_value))),
        )

        def summaries(connection: sa.Connection) -> list[a.MetricSummary]:
            runs = self._runs_by_id(connection, run_ids)
            pks = [pk for pk, _ in runs.values()]
            counts = sa.select(_b.c.run_pk, _b.c.key, *counted)
            counts = counts.where(_b.c.run_pk.in_(pks), _b.c.key.in_(keys)).group_by(_b.c.run_pk, _b.c.key)
            ranges = {(pk, key): rest for pk, key, *rest in fetch_tuples(connection, counts)}
            latest = sa.select(lm.c.run_pk, lm.c.key, lm.c.value, lm.c.value_class, lm.c.timestamp, lm.c.step)
            latest = latest.where(lm.c.run_pk.in_(pks), lm.c.key.in_(keys))
            points = {(pk, key): rest for pk, key, *rest in fetch_tuples(connection, latest)}
            out = []
            for run_id in run_ids:
                pk = runs[run_id][0]
                for key in keys:
                    if (pk, key) not in ranges or (pk, key) not in points:
                        continue
                    count, low, high = ranges[(pk, key)]
                    value, value_class, timestamp, step = points[(pk, key)]
                    metric = Metric(key, t.decode_value(value, value_class), timestamp, step)
                    out.append(a.MetricSummary(run_id, key, int(count), metric, low, high))
            return out

        return self._analytics(summaries)

    def get_bucketed_metric_history(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str],
        x_axis: str = "step",
        x_min: float | None = None,
        x_max: float | None = None,
        buckets: int = 1000,
    ) -> list[a.Series]:
        axis = a.validate_axis(x_axis)
        runs = self._analytics(lambda c: self._runs_by_id(c, list(dict.fromkeys(run_ids))))

        def downsample(pairs: Sequence[tuple[str, str]]) -> list[a.Series]:
            def run(connection: sa.Connection) -> list[a.Series]:
                out = []
                for run_id, key in pairs:
                    pk, start_time = runs[run_id]
                    offset = start_time if axis == "relative" else 0
                    if axis == "step" and x_min is None and x_max is None:
                        series = _from_blocks(connection, pk, key, buckets)
                        if series is not None:
                            out.append(series)
                            continue
                    out.append(_downsample(connection, run_id, key, axis, offset, buckets, x_min, x_max))
                return out

            return self._analytics(run)

        pairs = [(run_id, key) for run_id in run_ids for key in keys]
        workers = 1 if is_memory_sqlite(self.engine.url) else min(_PARALLEL_SERIES, len(pairs))  # shared connection
        if workers <= 1:
            return downsample(pairs)
        # Drivers and numpy release the GIL while they fetch and sort: slices of the pairs run side by side.
        size = -(-len(pairs) // workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = pool.map(downsample, [pairs[i : i + size] for i in range(0, len(pairs), size)])
            return [series for part in parts for series in part]


def _downsample(
    connection: sa.Connection,
    run_id: str,
    key: str,
    axis: str,
    origin: int,
    buckets: int,
    x_min: float | None,
    x_max: float | None,
) -> a.Series:
    """:func:`mltrail.store.analytics.bucket_min_max` of one history, read whole from its chunks: with array
    operations when numpy is installed, else through ``Metric`` objects."""
    found = read_chunks(connection, run_id, key)
    columns = chunks.as_arrays([data for _, _, data in found])
    if columns is not None:
        return bucket_arrays(*columns, axis, origin, buckets, x_min, x_max)
    history = [Metric(key, value, ts, step) for value, ts, step in chunks.in_history_order(found)]
    return a.bucket_min_max(a.history_points(history, axis, origin), buckets, x_min, x_max)


def _from_blocks(connection: sa.Connection, run_pk: int, key: str, buckets: int) -> a.Series | None:
    """A whole history on the step axis, downsampled from its block summaries; None when the history is small
    enough to return in full or its buckets are narrower than a block (then the points must be read)."""
    columns = [_b.c[name] for name in blocks.COLUMNS[3:-2]]
    rows = fetch_tuples(
        connection, sa.select(*columns).where(_b.c.run_pk == run_pk, _b.c.key == key).order_by(_b.c.block)
    )
    summaries = [row for row in rows if row[0]]
    count = sum(row[0] for row in summaries)
    if count <= 2 * buckets:
        return None
    first, last = tuple(summaries[0][2:5]), tuple(summaries[-1][5:8])
    origin, width = a.bucket_grid(first[0], last[0], buckets)
    if width < a.BLOCK_STEPS:
        return None
    lows: dict[int, tuple[float, int, int]] = {}  # bucket -> its least (value, step, timestamp)
    highs: dict[int, tuple[float, int, int]] = {}  # bucket -> its least (-value, step, timestamp)
    for row in summaries:
        low_step, low_ts, low_value, high_step, high_ts, high_value = row[8:14]
        bucket = a.bucket_of(low_step, origin, width, buckets)  # the whole block is in this bucket
        low, high = (low_value, low_step, low_ts), (-high_value, high_step, high_ts)
        if bucket not in lows or low < lows[bucket]:
            lows[bucket] = low
        if bucket not in highs or high < highs[bucket]:
            highs[bucket] = high
    kept = {first, last}
    kept.update((step, ts, value) for value, step, ts in lows.values())
    kept.update((step, ts, -value) for value, step, ts in highs.values())
    ordered = sorted(kept)
    non_finite = sum(row[1] for row in rows)
    return a.Series([p[0] for p in ordered], [p[2] for p in ordered], count, True, non_finite)
