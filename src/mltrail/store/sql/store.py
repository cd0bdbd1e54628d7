"""The SQL tracking store: :class:`mltrail.store.base.TrackingStore` on SQLite, PostgreSQL and MySQL/MariaDB.

Every public method runs in one transaction (retried on deadlocks and serialization failures, see
:mod:`mltrail.store.sql.transactions`) after validating its whole input, so a failed call writes nothing.
"""

from __future__ import annotations

import functools
import os
import time
import urllib.parse
import uuid
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from mltrail import validation
from mltrail.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    LifecycleStage,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import ErrorCode, MltrailException
from mltrail.search.parser import (
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
)
from mltrail.store.paging import decode_offset, offset_token
from mltrail.store.run_names import random_run_name
from mltrail.store.sql import loaders, search_sql, transactions, writes
from mltrail.store.sql import schema as t
from mltrail.store.sql.analytics import SqlAnalytics
from mltrail.store.sql.engine import get_engine, normalize_url
from mltrail.store.sql.history import history_metrics, read_history
from mltrail.store.sql.inputs import validate_dataset_inputs
from mltrail.store.sql.migrate import ensure_schema

ACTIVE = LifecycleStage.ACTIVE.value
DELETED = LifecycleStage.DELETED.value
_MAX_EXPERIMENT_ID = 2**63 - 1


#: Statements of the hot paths, built once (building and caching a statement per call costs more than SQLite or a
#: local PostgreSQL take to run these).
_EXPERIMENT_BY_ID = sa.select(*loaders.EXPERIMENT_COLUMNS).where(
    t.experiments.c.experiment_id == sa.bindparam("experiment_id")
)
#: An update of the run with the bound ``run_pk``; the columns to set are the other parameters.
_UPDATE_RUN = sa.update(t.runs).where(t.runs.c.id == sa.bindparam("run_pk"))
#: The same, of the active run with the bound ``run_id``, returning the updated row (where the database can).
_UPDATE_ACTIVE_RUN = (
    sa.update(t.runs)
    .where(t.runs.c.run_uuid == sa.bindparam("run_id"), t.runs.c.lifecycle_stage == ACTIVE)
    .returning(*loaders.RUN_COLUMNS)
)
#: The page of a search without filter or order_by (what MLflow's client asks for), in MLflow's default order, of
#: the runs in one of two lifecycle stages (the same one twice for a single stage): compiled once, as any other
#: search's page is not.
_DEFAULT_ORDERING = search_sql.run_ordering(parse_run_order_by(None))
_PLAIN_PAGE = loaders.Baked(
    _DEFAULT_ORDERING.apply(
        sa.select(*loaders.RUN_COLUMNS).where(
            loaders.in_given_ids(t.runs.c.experiment_id),
            t.runs.c.lifecycle_stage.in_([sa.bindparam("stage"), sa.bindparam("other_stage")]),
        ),
        t.runs,
    )
    .limit(sa.bindparam("limit"))
    .offset(sa.bindparam("offset"))
)
#: A ``runs`` row (:data:`loaders.RUN_COLUMNS`) with its columns by name.
_RunRow = namedtuple("_RunRow", [column.name for column in loaders.RUN_COLUMNS])  # type: ignore[misc]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def resolve_artifact_root(root: str | None) -> str:
    """Absolute path for a local root (default ``./mlruns``); URIs with a scheme are kept as they are."""
    root = root or "mlruns"
    scheme = urllib.parse.urlparse(root).scheme
    if len(scheme) > 1:
        return root
    return os.path.abspath(root)


def _experiment_pk(experiment_id: object) -> int:
    text = str(experiment_id) if experiment_id is not None else ""
    if not text.isdigit() or not text.isascii():
        raise MltrailException.invalid_parameter(
            f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
        )
    return int(text)


def _experiment_not_found(experiment_id: object) -> MltrailException:
    return MltrailException.not_found(f"No Experiment with id={experiment_id} exists")


def _run_not_found(run_id: str) -> MltrailException:
    return MltrailException.not_found(f"Run with id={run_id} not found")


def _experiment_exists(name: str) -> MltrailException:
    return MltrailException.already_exists(f"Experiment(name={name}) already exists.")


class SqlStore(SqlAnalytics):
    """Tracking store in a SQL database (``sqlite:///path``, ``postgresql://...``, ``mysql://...``).

    A new, empty database is set up on first use; a database at an older schema revision must be upgraded with
    ``mltrail db upgrade <url>``. Experiments get the artifact location ``<default_artifact_root>/<id>``.
    """

    def __init__(self, db_uri: str, default_artifact_root: str | None = None) -> None:
        self.db_uri = db_uri
        self.engine = get_engine(normalize_url(db_uri), on_create=ensure_schema)
        self.artifact_root_uri = resolve_artifact_root(default_artifact_root)
        self._claim_default_experiment_location()

    def close(self) -> None:
        """Close pooled connections (the store stays usable and reconnects on demand)."""
        self.engine.dispose()

    # --- helpers -----------------------------------------------------------------------------------------------
    def _write(self, operation: Any, conflict: Any = None) -> Any:
        return transactions.run(self.engine, operation, conflict=conflict)

    def _read(self, operation: Any) -> Any:
        return transactions.run(self.engine, operation, write=False)

    def _default_location(self, experiment_id: int) -> str:
        return _join_uri(self.artifact_root_uri, str(experiment_id))

    def _claim_default_experiment_location(self) -> None:
        """The Default experiment is created with the schema, before any store knew an artifact root."""
        e = t.experiments
        missing = self._read(
            lambda c: c.execute(
                sa.select(e.c.experiment_id).where(e.c.experiment_id == 0, e.c.artifact_location.is_(None))
            ).first()
        )
        if missing is not None:
            self._write(
                lambda c: c.execute(
                    sa.update(e)
                    .where(e.c.experiment_id == 0, e.c.artifact_location.is_(None))
                    .values(artifact_location=self._default_location(0))
                )
            )

    @staticmethod
    def _experiment_row(connection: sa.Connection, experiment_id: object) -> Any:
        pk = _experiment_pk(experiment_id)
        row = None
        if pk <= _MAX_EXPERIMENT_ID:
            row = connection.execute(_EXPERIMENT_BY_ID, {"experiment_id": pk}).first()
        if row is None:
            raise _experiment_not_found(experiment_id)
        return row

    @classmethod
    def _active_experiment_row(cls, connection: sa.Connection, experiment_id: object) -> Any:
        row = cls._experiment_row(connection, experiment_id)
        if row.lifecycle_stage != ACTIVE:
            raise MltrailException.invalid_parameter(
                f"The experiment {experiment_id} must be in the 'active' state. Current state is {row.lifecycle_stage}."
            )
        return row

    @staticmethod
    def _run_row(connection: sa.Connection, run_id: str) -> Any:
        row = loaders.find_run_row(connection, run_id)
        if row is None:
            raise _run_not_found(run_id)
        return _RunRow(*row)

    @classmethod
    def _active_run_row(cls, connection: sa.Connection, run_id: str) -> Any:
        row = cls._run_row(connection, run_id)
        if row.lifecycle_stage != ACTIVE:
            raise MltrailException.invalid_parameter(
                f"The run {run_id} must be in the 'active' state. Current state is {row.lifecycle_stage}."
            )
        return row

    # --- experiments -------------------------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] | None = None
    ) -> str:
        name = validation.validate_experiment_name(name)
        location = validation.validate_artifact_location(artifact_location)
        tag_values = dict(validation.validate_experiment_tag(tag.key, tag.value) for tag in tags or ())
        e = t.experiments

        def create(connection: sa.Connection) -> str:
            if connection.execute(sa.select(e.c.experiment_id).where(e.c.name == name)).first() is not None:
                raise _experiment_exists(name)
            now = _now_ms()
            result = connection.execute(
                sa.insert(e).values(
                    name=name,
                    artifact_location=location,
                    lifecycle_stage=ACTIVE,
                    creation_time=now,
                    last_update_time=now,
                )
            )
            experiment_id = result.inserted_primary_key[0]
            if location is None:
                connection.execute(
                    sa.update(e)
                    .where(e.c.experiment_id == experiment_id)
                    .values(artifact_location=self._default_location(experiment_id))
                )
            if tag_values:
                connection.execute(
                    sa.insert(t.experiment_tags),
                    [{"experiment_id": experiment_id, "key": k, "value": v} for k, v in sorted(tag_values.items())],
                )
            return str(experiment_id)

        return self._write(create, conflict=lambda: _experiment_exists(name))

    def _experiment(self, connection: sa.Connection, row: Any) -> Experiment:
        tags = loaders.load_experiment_tags(connection, [row.experiment_id])[row.experiment_id]
        return loaders.experiment(row, tags, self._default_location(row.experiment_id))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._read(lambda c: self._experiment(c, self._experiment_row(c, experiment_id)))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        def get(connection: sa.Connection) -> Experiment | None:
            row = connection.execute(sa.select(*loaders.EXPERIMENT_COLUMNS).where(t.experiments.c.name == name)).first()
            return None if row is None else self._experiment(connection, row)

        return self._read(get)

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        limit = validation.validate_max_results(max_results)
        stages = ViewType.parse(view_type).stages()
        where = search_sql.experiment_filter(parse_experiment_filter(filter_string))
        ordering = search_sql.experiment_ordering(parse_experiment_order_by(order_by))
        offset = decode_offset(page_token)
        query = sa.select(*loaders.EXPERIMENT_COLUMNS).where(t.experiments.c.lifecycle_stage.in_(stages))
        if where is not None:
            query = query.where(where)
        query = ordering.apply(query, t.experiments).limit(limit + 1).offset(offset)

        def search(connection: sa.Connection) -> PagedList[Experiment]:
            rows = connection.execute(query).all()
            page = rows[:limit]
            tags = loaders.load_experiment_tags(connection, [row.experiment_id for row in page])
            experiments = [
                loaders.experiment(row, tags.get(row.experiment_id, {}), self._default_location(row.experiment_id))
                for row in page
            ]
            return PagedList(experiments, offset_token(offset + limit) if len(rows) > limit else None)

        return self._read(search)

    def delete_experiment(self, experiment_id: str) -> None:
        def delete(connection: sa.Connection) -> None:
            row = self._experiment_row(connection, experiment_id)
            if row.lifecycle_stage != ACTIVE:
                raise MltrailException.not_found(f"Experiment with id={experiment_id} is already deleted.")
            e, r = t.experiments, t.runs
            # The deletion time is later than any run deleted before, so restore_experiment can tell them apart.
            deleted_before = connection.execute(
                sa.select(sa.func.max(r.c.deleted_time)).where(r.c.experiment_id == row.experiment_id)
            ).scalar()
            now = max(_now_ms(), (deleted_before or 0) + 1)
            connection.execute(
                sa.update(e)
                .where(e.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=DELETED, last_update_time=now)
            )
            connection.execute(
                sa.update(r)
                .where(r.c.experiment_id == row.experiment_id, r.c.lifecycle_stage == ACTIVE)
                .values(lifecycle_stage=DELETED, deleted_time=now)
            )

        self._write(delete)

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore the experiment and the runs its deletion deleted (runs deleted before stay deleted)."""

        def restore(connection: sa.Connection) -> None:
            row = self._experiment_row(connection, experiment_id)
            if row.lifecycle_stage != DELETED:
                raise MltrailException.not_found(f"No deleted Experiment with id={experiment_id} exists")
            e, r = t.experiments, t.runs
            # Deleted experiments cannot be renamed or tagged, so last_update_time is still the deletion time.
            deleted_at = row.last_update_time or 0
            connection.execute(
                sa.update(e)
                .where(e.c.experiment_id == row.experiment_id)
                .values(lifecycle_stage=ACTIVE, last_update_time=_now_ms())
            )
            connection.execute(
                sa.update(r)
                .where(
                    r.c.experiment_id == row.experiment_id,
                    r.c.lifecycle_stage == DELETED,
                    r.c.deleted_time >= deleted_at,
                )
                .values(lifecycle_stage=ACTIVE, deleted_time=None)
            )

        self._write(restore)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        new_name = validation.validate_experiment_name(new_name)
        e = t.experiments

        def rename(connection: sa.Connection) -> None:
            row = self._experiment_row(connection, experiment_id)
            if row.lifecycle_stage != ACTIVE:
                raise MltrailException("Cannot rename a non-active experiment.", ErrorCode.INVALID_STATE)
            if row.name == new_name:
                return
            if connection.execute(sa.select(e.c.experiment_id).where(e.c.name == new_name)).first() is not None:
                raise _experiment_exists(new_name)
            connection.execute(
                sa.update(e)
                .where(e.c.experiment_id == row.experiment_id)
                .values(name=new_name, last_update_time=_now_ms())
            )

        self._write(rename, conflict=lambda: _experiment_exists(new_name))

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        key, value = validation.validate_experiment_tag(tag.key, tag.value)

        def set_tag(connection: sa.Connection) -> None:
            row = self._active_experiment_row(connection, experiment_id)
            writes.set_experiment_tag(connection, row.experiment_id, key, value)

        self._write(set_tag)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        def delete_tag(connection: sa.Connection) -> None:
            row = self._active_experiment_row(connection, experiment_id)
            et = t.experiment_tags
            deleted = connection.execute(
                sa.delete(et).where(et.c.experiment_id == row.experiment_id, et.c.key == key)
            ).rowcount
            if not deleted:
                raise MltrailException.not_found(f"No tag with name: {key} in experiment with id {experiment_id}")

        self._write(delete_tag)

    # --- runs --------------------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        given_id = validation.validate_new_run_id(run_id) if run_id is not None else None
        checked = [validation.validate_tag(tag) for tag in tags or ()]
        tag_name = next((tag.value for tag in reversed(checked) if tag.key == writes.RUN_NAME_TAG), None)
        if run_name and tag_name is not None and run_name != tag_name:
            raise MltrailException.invalid_parameter(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
                f"(run_name='{run_name}', mlflow.runName='{tag_name}')."
            )
        name = run_name or tag_name or random_run_name()
        run_tags = {tag.key: tag.value for tag in checked}
        run_tags[writes.RUN_NAME_TAG] = name
        start = int(start_time) if start_time is not None else _now_ms()

        def create(connection: sa.Connection) -> Run:
            experiment = self._active_experiment_row(connection, experiment_id)
            if given_id is not None and (existing := self._replayed_run(connection, given_id, experiment)):
                return existing
            run_id = given_id or uuid.uuid4().hex
            location = experiment.artifact_location or self._default_location(experiment.experiment_id)
            info = RunInfo(
                run_id=run_id,
                experiment_id=str(experiment.experiment_id),
                run_name=name,
                user_id=user_id or "",
                status=RunStatus.RUNNING,
                start_time=start,
                end_time=None,
                artifact_uri=_join_uri(location, run_id, "artifacts"),
                lifecycle_stage=ACTIVE,
            )
            row = {
                "run_uuid": run_id,
                "experiment_id": experiment.experiment_id,
                "name": name,
                "user_id": info.user_id,
                "status": info.status.value,
                "start_time": start,
                "lifecycle_stage": ACTIVE,
                "artifact_uri": info.artifact_uri,
            }
            writes.insert_run(connection, row, [RunTag(k, v) for k, v in run_tags.items()])
            return Run(info=info, data=RunData(tags=run_tags))

        if given_id is None:
            return self._write_one(create)
        try:
            return self._write_one(create, conflict=lambda: MltrailException.already_exists(given_id))
        except MltrailException as exc:
            if exc.error_code != ErrorCode.RESOURCE_ALREADY_EXISTS or exc.message != given_id:
                raise
            return self._write_one(create)  # a concurrent replay inserted it first: now it is found and returned

    @staticmethod
    def _replayed_run(connection: sa.Connection, run_id: str, experiment: Any) -> Run | None:
        """The existing run of a create_run replay with a given id (None if there is none); the same id in
        another experiment is an error."""
        row = connection.execute(sa.select(*loaders.RUN_COLUMNS).where(t.runs.c.run_uuid == run_id)).first()
        if row is None:
            return None
        if str(row.experiment_id) != str(experiment.experiment_id):
            raise MltrailException.already_exists(
                f"Run with id={run_id} already exists in experiment {row.experiment_id}."
            )
        return loaders.load_runs(connection, [row])[0]

    def get_run(self, run_id: str) -> Run:
        return self._get_run(run_id, loaders.load_runs)

    def get_run_rows(self, run_id: str) -> loaders.RunRows:
        """:meth:`get_run` as :class:`~mltrail.store.sql.loaders.RunRows` (what the server encodes)."""
        return self._get_run(run_id, loaders.load_run_rows)

    def _get_run(self, run_id: str, load: Callable[[sa.Connection, list[Any]], list[Any]]) -> Any:
        return self._read(lambda connection: load(connection, [self._run_row(connection, run_id)])[0])

    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        status = RunStatus.parse(run_status) if run_status is not None else None
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status.value
        if end_time is not None:
            values["end_time"] = int(end_time)
        if run_name:
            values["name"] = run_name

        def update(connection: sa.Connection) -> RunInfo:
            row = self._updated_active_run(connection, run_id, values)
            if run_name:
                writes.set_tags(connection, row.id, [RunTag(writes.RUN_NAME_TAG, run_name)])
            return loaders.run_info(row)

        # Without a new name, one UPDATE .. RETURNING where the database can (else the run is read first).
        return self._write(update) if run_name else self._write_one(update)

    @classmethod
    def _updated_active_run(cls, connection: sa.Connection, run_id: str, values: dict[str, Any]) -> Any:
        """Set ``values`` on an active run; returns its row (:data:`loaders.RUN_COLUMNS`) as updated. One
        statement where UPDATE can return the row (PostgreSQL, SQLite); otherwise, or when the update found no
        active run (then the error tells why), the run is read first."""
        if values and connection.dialect.update_returning:
            updated = connection.execute(_UPDATE_ACTIVE_RUN, {"run_id": str(run_id), **values}).first()
            if updated is not None:
                return updated
        row = cls._active_run_row(connection, run_id)
        if values:
            connection.execute(_UPDATE_RUN, {"run_pk": row.id, **values})
        return row._replace(**values)

    def delete_run(self, run_id: str) -> None:
        def delete(connection: sa.Connection) -> None:
            row = self._run_row(connection, run_id)
            if row.lifecycle_stage != DELETED:
                deleted = {"lifecycle_stage": DELETED, "deleted_time": _now_ms()}
                connection.execute(sa.update(t.runs).where(t.runs.c.id == row.id).values(**deleted))

        self._write(delete)

    def restore_run(self, run_id: str) -> None:
        def restore(connection: sa.Connection) -> None:
            row = self._run_row(connection, run_id)
            connection.execute(
                sa.update(t.runs).where(t.runs.c.id == row.id).values(lifecycle_stage=ACTIVE, deleted_time=None)
            )

        self._write(restore)

    # --- run data ----------------------------------------------------------------------------------------------
    def _log(self, run_id: str, metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]) -> None:
        """On PostgreSQL, a batch is first written as new data in one statement without a transaction (the
        cheapest way); if some of it was stored already (a client retried, a param was logged again), if the run is
        not active (the transaction below tells why) or to rename the run, it is written in a transaction that
        skips stored points and compares stored params."""
        if self.engine.dialect.name == "postgresql" and all(tag.key != writes.RUN_NAME_TAG for tag in tags):
            try:
                if self._write_one(lambda c: writes.log_new_run_data(c, run_id, metrics, params, tags)):
                    return
            except writes.AlreadyStored:
                pass

        def log(connection: sa.Connection) -> None:
            row = self._active_run_row(connection, run_id)
            writes.log_run_data(connection, row.id, row.run_uuid, metrics, params, tags)

        self._write(log)

    def _write_one(self, operation: Any, conflict: Any = None) -> Any:
        """:meth:`_write` for an operation that writes with one statement at most (it may read before): on
        PostgreSQL that statement is atomic by itself and runs without a transaction, whose BEGIN and COMMIT cost
        a round trip each. Reads before it see what is committed when they run, as they would in a transaction
        at PostgreSQL's READ COMMITTED."""
        if self.engine.dialect.name != "postgresql":
            return self._write(operation, conflict)
        return transactions.run(self._autocommit_engine, operation, conflict=conflict)

    @functools.cached_property
    def _autocommit_engine(self) -> sa.Engine:
        """The engine, its connections in autocommit mode (see :meth:`_write_one`)."""
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def log_metric(self, run_id: str, metric: Metric) -> None:
        self._log(run_id, [validation.validate_metric(metric)], (), ())

    def log_param(self, run_id: str, param: Param) -> None:
        self._log(run_id, (), [validation.validate_param(param)], ())

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self._log(run_id, (), (), [validation.validate_tag(tag)])

    def delete_tag(self, run_id: str, key: str) -> None:
        def delete(connection: sa.Connection) -> None:
            row = self._active_run_row(connection, run_id)
            deleted = connection.execute(
                sa.delete(t.tags).where(t.tags.c.run_pk == row.id, t.tags.c.key == key)
            ).rowcount
            if not deleted:
                raise MltrailException.not_found(f"No tag with name: {key} in run with id {run_id}")

        self._write(delete)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        checked_metrics, checked_params, checked_tags = validation.validate_batch(metrics, params, tags)
        self._log(run_id, checked_metrics, checked_params, checked_tags)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] = ()) -> None:
        validate_dataset_inputs(datasets)

        def log(connection: sa.Connection) -> None:
            row = self._active_run_row(connection, run_id)
            writes.log_dataset_inputs(connection, row.id, row.experiment_id, datasets)

        self._write(log)

    def get_metric_history(
        self, run_id: str, metric_key: str, max_results: int | None = None, page_token: str | None = None
    ) -> PagedList[Metric]:
        points = self.get_metric_history_points(run_id, metric_key, max_results, page_token)
        return PagedList(history_metrics(metric_key, points), points.token)

    def get_metric_history_points(
        self, run_id: str, metric_key: str, max_results: int | None = None, page_token: str | None = None
    ) -> PagedList[tuple[float, int, int]]:
        """:meth:`get_metric_history` as ``(value, timestamp, step)`` tuples (what the server encodes)."""
        if max_results is not None and (
            isinstance(max_results, bool) or not isinstance(max_results, int) or max_results <= 0
        ):
            raise MltrailException.invalid_parameter(
                f"Invalid value {max_results!r} for parameter 'max_results' supplied. It must be a positive integer"
            )
        offset = decode_offset(page_token)

        def history(connection: sa.Connection) -> PagedList[tuple[float, int, int]]:
            limit = None if max_results is None else max_results + 1
            points = read_history(connection, str(run_id), metric_key, limit, offset)
            if not points:
                self._run_row(connection, run_id)  # no run at all: not found
            if max_results is not None and len(points) > max_results:
                return PagedList(points[:max_results], offset_token(offset + max_results))
            return PagedList(points, None)

        return self._read(history)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        run_info_only: bool = False,
    ) -> PagedList[Run]:
        """One query selects the page; params, tags, latest metrics and inputs of its runs take one query each
        (none with ``run_info_only=True``, which returns runs with empty data and inputs)."""
        search = (experiment_ids, filter_string, run_view_type, max_results, order_by, page_token)
        return self._search_runs(*search, run_info_only=run_info_only, load=loaders.load_runs)

    def search_run_rows(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        run_info_only: bool = False,
    ) -> PagedList[loaders.RunRows]:
        """:meth:`search_runs` as :class:`~mltrail.store.sql.loaders.RunRows` (what the server encodes)."""
        search = (experiment_ids, filter_string, run_view_type, max_results, order_by, page_token)
        return self._search_runs(*search, run_info_only=run_info_only, load=loaders.load_run_rows)

    def _search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: ViewType,
        max_results: int | None,
        order_by: Sequence[str] | None,
        page_token: str | None,
        *,
        run_info_only: bool,
        load: Callable[..., list[Any]],
    ) -> PagedList[Any]:
        limit = validation.validate_max_results(max_results)
        stages = ViewType.parse(run_view_type).stages()
        where = search_sql.run_filter(parse_run_filter(filter_string))
        ordering = search_sql.run_ordering(parse_run_order_by(order_by)) if order_by else None
        offset = decode_offset(page_token)
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        ids = [_experiment_pk(experiment_id) for experiment_id in experiment_ids]
        ids = [pk for pk in ids if pk <= _MAX_EXPERIMENT_ID]  # larger ids name no experiment (nor fit a driver)
        if not ids:
            return PagedList([], None)
        select = self._run_page(ids, stages, where, ordering, limit + 1, offset)

        def search(connection: sa.Connection) -> PagedList[Any]:
            rows = select(connection)
            runs = load(connection, rows[:limit], info_only=run_info_only)
            return PagedList(runs, offset_token(offset + limit) if len(rows) > limit else None)

        return self._read(search)

    @staticmethod
    def _run_page(
        ids: list[int],
        stages: tuple[str, ...],
        where: sa.ColumnElement[bool] | None,
        ordering: search_sql.Ordering | None,
        limit: int,
        offset: int,
    ) -> Callable[[sa.Connection], list[tuple[Any, ...]]]:
        """Reads the ``runs`` rows (:data:`loaders.RUN_COLUMNS`) of a search's page."""
        if where is None and ordering is None:
            page = {"stage": stages[0], "other_stage": stages[-1], "limit": limit, "offset": offset}
            experiments = loaders.id_list(ids)
            return lambda connection: _PLAIN_PAGE.fetch(connection, page, ids=experiments)
        query = sa.select(*loaders.RUN_COLUMNS).where(
            t.runs.c.experiment_id.in_(ids), t.runs.c.lifecycle_stage.in_(stages)
        )
        if where is not None:
            query = query.where(where)
        query = (ordering or _DEFAULT_ORDERING).apply(query, t.runs).limit(limit).offset(offset)
        return lambda connection: loaders.fetch_tuples(connection, query)

    # --- permanent deletion (``mltrail gc``) ---------------------------------------------------------------------
    def get_deleted_runs(self, older_than_ms: int | None = None) -> list[str]:
        """Ids of runs in the deleted state, only those deleted at least ``older_than_ms`` ago if given."""
        r = t.runs
        query = sa.select(r.c.run_uuid).where(r.c.lifecycle_stage == DELETED)
        if older_than_ms is not None:
            query = query.where(r.c.deleted_time <= _now_ms() - int(older_than_ms))
        return self._read(lambda c: list(c.execute(query.order_by(r.c.id)).scalars()))

    def hard_delete_run(self, run_id: str) -> None:
        """Remove a run and all its data from the database for good (its artifacts are the caller's job)."""

        def delete(connection: sa.Connection) -> None:
            row = self._run_row(connection, run_id)
            connection.execute(sa.delete(t.metric_chunks).where(t.metric_chunks.c.run_pk == row.id))
            connection.execute(sa.delete(t.runs).where(t.runs.c.id == row.id))

        self._write(delete)

    def hard_delete_experiment(self, experiment_id: str) -> None:
        """Remove an experiment, its runs and their data from the database for good; its name becomes free."""

        def delete(connection: sa.Connection) -> None:
            row = self._experiment_row(connection, experiment_id)
            run_pks = sa.select(t.runs.c.id).where(t.runs.c.experiment_id == row.experiment_id)
            connection.execute(sa.delete(t.metric_chunks).where(t.metric_chunks.c.run_pk.in_(run_pks)))
            connection.execute(sa.delete(t.experiments).where(t.experiments.c.experiment_id == row.experiment_id))

        self._write(delete)
