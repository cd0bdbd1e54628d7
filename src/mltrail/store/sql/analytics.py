"""The SQL store's :class:`~mltrail.store.analytics.AnalyticsStore` methods: the web UI's aggregates as queries.

- ``count_runs``, ``list_keys`` and ``group_runs`` select the runs with the filter ``search_runs`` compiles
  (:mod:`mltrail.store.sql.search_sql`) and aggregate in the database; no run is loaded.
- ``get_metric_summaries`` counts points and takes finite min/max with one ``GROUP BY (run, key)`` that follows
  the metrics primary key, and the latest point from ``latest_metrics``.
- ``get_bucketed_metric_history`` of a whole history on the step axis, when its buckets are at least a block wide,
  reads the history's ``metric_blocks`` rows (:mod:`mltrail.store.sql.blocks`): each block lies in one bucket,
  so a bucket's first minimum and first maximum are the least of its blocks'. A 1,000,000-point history is
  about 4,000 rows. Otherwise it downsamples in the database: one pass for the count and x range, and when the
  range must be sampled, ``GROUP BY bucket`` for each bucket's min and max value, then one pass picking the first
  point holding each of those values (a window over the few matching rows), plus the range's first and last
  points; on the step axis the blocks overlapping the range bound its timestamps, so the primary key narrows the
  scan. Only the kept points leave the database.
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
from mltrail.store.sql import blocks, search_sql, transactions
from mltrail.store.sql import schema as t
from mltrail.store.sql.engine import is_memory_sqlite
from mltrail.store.sql.loaders import fetch_tuples

T = TypeVar("T")
_m = t.metrics
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
        finite = sa.case((_m.c.value_class == t.FINITE, _m.c.value))

        def summaries(connection: sa.Connection) -> list[a.MetricSummary]:
            runs = self._runs_by_id(connection, run_ids)
            pks = [pk for pk, _ in runs.values()]
            counts = sa.select(_m.c.run_pk, _m.c.key, sa.func.count(), sa.func.min(finite), sa.func.max(finite))
            counts = counts.where(_m.c.run_pk.in_(pks), _m.c.key.in_(keys)).group_by(_m.c.run_pk, _m.c.key)
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
        low, high = a.int_range(x_min, x_max)
        explicit = (x_min is not None, x_max is not None)
        runs = self._analytics(lambda c: self._runs_by_id(c, list(dict.fromkeys(run_ids))))

        def downsample(pairs: Sequence[tuple[str, str]]) -> list[a.Series]:
            def run(connection: sa.Connection) -> list[a.Series]:
                out = []
                for run_id, key in pairs:
                    pk, start_time = runs[run_id]
                    offset = start_time if axis == "relative" else 0
                    if axis == "step" and not any(explicit):
                        series = _from_blocks(connection, pk, key, buckets)
                        if series is not None:
                            out.append(series)
                            continue
                    query = _SeriesQuery(connection, pk, key, axis, offset, low, high)
                    out.append(query.downsample(buckets, explicit))
                return out

            return self._analytics(run)

        pairs = [(run_id, key) for run_id in run_ids for key in keys]
        workers = 1 if is_memory_sqlite(self.engine.url) else min(_PARALLEL_SERIES, len(pairs))  # shared connection
        if workers <= 1:
            return downsample(pairs)
        # The database does the work and drivers release the GIL meanwhile: slices of the pairs run side by side.
        size = -(-len(pairs) // workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = pool.map(downsample, [pairs[i : i + size] for i in range(0, len(pairs), size)])
            return [series for part in parts for series in part]


class _SeriesQuery:
    """The queries that downsample one (run, key) history on one x axis, with the semantics of
    :func:`mltrail.store.analytics.bucket_min_max`.

    Points are ordered by ``(x, second, value)`` where ``second`` is the timestamp on the step axis and the step on
    the time axes; ``(x, second, value)`` identifies a finite point. ``offset`` is subtracted from timestamps
    (relative axis); bounds are turned into raw column values instead, so the timestamp index serves ranges.
    """

    def __init__(
        self,
        connection: sa.Connection,
        run_pk: int,
        key: str,
        axis: str,
        offset: int,
        low: int | None,
        high: int | None,
    ) -> None:
        self.connection = connection
        self.offset = offset
        self.x = _m.c.step if axis == "step" else _m.c.timestamp
        self.second = _m.c.timestamp if axis == "step" else _m.c.step
        self.series = [_m.c.run_pk == run_pk, _m.c.key == key]
        self.blocks = [_b.c.run_pk == run_pk, _b.c.key == key]
        self.low = None if low is None else low + offset
        self.high = None if high is None else high + offset
        #: finite points inside the range (conditions beyond the series' own)
        self.range_only: list[sa.ColumnElement[bool]] = [_m.c.value_class == t.FINITE]
        if self.low is not None:
            self.range_only.append(self.x >= self.low)
        if self.high is not None:
            self.range_only.append(self.x <= self.high)
        if axis == "step" and (low is not None or high is not None):
            self.range_only.extend(self._timestamp_bounds(low, high))
        self.in_range = [*self.series, *self.range_only]

    def _timestamp_bounds(self, low: int | None, high: int | None) -> list[sa.ColumnElement[bool]]:
        """Conditions on ``metrics.timestamp`` that every point with a step in ``[low, high]`` meets: the timestamp
        range of the blocks overlapping it (no condition when none does: then nothing is in range anyway)."""
        where = list(self.blocks)
        if low is not None:
            where.append(_b.c.block >= low // a.BLOCK_STEPS)
        if high is not None:
            where.append(_b.c.block <= high // a.BLOCK_STEPS)
        span = sa.select(sa.func.min(_b.c.ts_from), sa.func.max(_b.c.ts_to)).where(*where)
        ts_from, ts_to = self.connection.execute(span).one()
        return [] if ts_from is None else [_m.c.timestamp >= ts_from, _m.c.timestamp <= ts_to]

    def _points(self, query: sa.Select[Any]) -> list[tuple[int, int, float]]:
        return [tuple(row) for row in fetch_tuples(self.connection, query)]  # type: ignore[misc]

    def _select(self) -> sa.Select[Any]:
        return sa.select(self.x, self.second, _m.c.value)

    def _first(self, *where: sa.ColumnElement[bool], last: bool = False) -> list[tuple[int, int, float]]:
        columns = (self.x, self.second, _m.c.value)
        order = [c.desc() for c in columns] if last else list(columns)
        return self._points(self._select().where(*where).order_by(*order).limit(1))

    def downsample(self, buckets: int, explicit: tuple[bool, bool]) -> a.Series:
        stats = sa.select(sa.func.count(), sa.func.min(self.x), sa.func.max(self.x)).where(*self.in_range)
        count, lo, hi = self.connection.execute(stats).one()
        non_finite_query = sa.select(sa.func.coalesce(sa.func.sum(_b.c.non_finite), 0)).where(*self.blocks)
        non_finite = int(self.connection.execute(non_finite_query).scalar_one())
        if count > 2 * buckets:
            kept = self._extremes(buckets, lo, hi)
        else:
            kept = self._points(self._select().where(*self.in_range).order_by(self.x, self.second, _m.c.value))
        before = self._outside(self.low, below=True) if explicit[0] else []
        after = self._outside(self.high, below=False) if explicit[1] else []
        out = before + kept + after
        return a.Series([p[0] - self.offset for p in out], [p[2] for p in out], count, count > 2 * buckets, non_finite)

    def _outside(self, bound: int, below: bool) -> list[tuple[int, int, float]]:
        """The finite point nearest to ``bound`` outside the range (before ``low`` or after ``high``), if any."""
        finite = _m.c.value_class == t.FINITE
        beyond = self.x < bound if below else self.x > bound
        if self.x is not _m.c.step:  # time axes: the primary key orders timestamps
            return self._first(*self.series, finite, beyond, last=below)
        # Step axis: first the block holding the step next to the bound, read within its timestamp range; else
        # the nearest non-empty block further out, whose own last (first) point is the answer.
        edge = (bound - 1 if below else bound + 1) // a.BLOCK_STEPS
        found = self.connection.execute(sa.select(_b.c.ts_from, _b.c.ts_to).where(*self.blocks, _b.c.block == edge))
        span = found.one_or_none()
        if span is not None:
            near = [
                beyond,
                _m.c.timestamp.between(*span),
                self.x.between(edge * a.BLOCK_STEPS, (edge + 1) * a.BLOCK_STEPS - 1),
            ]
            points = self._first(*self.series, finite, *near, last=below)
            if points:
                return points
        point = "last" if below else "first"
        columns = [_b.c[f"{point}_{field}"] for field in ("step", "ts", "value")]
        further = _b.c.block < edge if below else _b.c.block > edge
        order = _b.c.block.desc() if below else _b.c.block
        query = sa.select(*columns).where(*self.blocks, further, _b.c.finite > 0).order_by(order).limit(1)
        return self._points(query)

    def _extremes(self, buckets: int, lo: int, hi: int) -> list[tuple[int, int, float]]:
        """The kept points of a sampled range: each bucket's first minimum and first maximum, and the ends."""
        bucket = _bucket(self.connection.dialect, self.x, *a.bucket_grid(lo, hi, buckets), buckets)
        extremes = sa.select(bucket, sa.func.min(_m.c.value), sa.func.max(_m.c.value))
        pairs = set()
        for b, low, high in fetch_tuples(self.connection, extremes.where(*self.in_range).group_by(bucket)):
            pairs.update(((b, low), (b, high)))
        # One window pass over the few rows holding an extreme or at either end of the range: per (bucket, value)
        # the first holder (x, then second) is the bucket's kept min/max point; the range's first point is first
        # among the rows at x = lo, and its last point last (in reverse order) among the rows at x = hi.
        values = sorted({value for _, value in pairs})
        candidates = sa.or_(
            sa.and_(_m.c.value.in_(values), sa.tuple_(bucket, _m.c.value).in_(sorted(pairs))), self.x.in_((lo, hi))
        )
        partition = (bucket, _m.c.value)
        rows = (
            sa.select(
                bucket.label("b"),
                self.x.label("x"),
                self.second.label("s"),
                _m.c.value.label("y"),
                sa.func.row_number().over(partition_by=partition, order_by=(self.x, self.second)).label("up"),
                sa.func.row_number()
                .over(partition_by=partition, order_by=(self.x.desc(), self.second.desc()))
                .label("down"),
            )
            .where(*self.in_range, candidates)
            .subquery()
        )
        query = sa.select(rows.c.b, rows.c.x, rows.c.s, rows.c.y, rows.c.up).where(
            sa.or_(rows.c.up == 1, rows.c.down == 1)
        )
        found = fetch_tuples(self.connection, query)
        kept = {(x, s, y) for b, x, s, y, up in found if up == 1 and (b, y) in pairs}
        kept.add(min((x, s, y) for _, x, s, y, _ in found if x == lo))
        kept.add(max((x, s, y) for _, x, s, y, _ in found if x == hi))
        return sorted(kept)


def _bucket(dialect: sa.Dialect, x: Any, origin: int, width: float, buckets: int) -> sa.ColumnElement[Any]:
    """``min(int((x - origin) / width), buckets - 1)`` as SQL: the same IEEE double quotient as Python's
    (x - origin is an exact integer; the width is bound as a double)."""
    quotient = (x - sa.literal(int(origin), sa.BigInteger)) / sa.literal(float(width), sa.Float)
    whole = sa.cast(quotient, sa.BigInteger) if dialect.name == "sqlite" else sa.func.floor(quotient)
    top = buckets - 1
    return sa.case((whole >= top, sa.literal(top, sa.BigInteger)), else_=whole)


_b = t.metric_blocks


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
