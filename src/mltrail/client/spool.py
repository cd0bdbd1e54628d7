"""Offline spool: a tracking server that cannot be reached does not stop a training job.

:class:`SpoolingStore` wraps the :class:`~mltrail.store.rest.RestStore` of a server. Calls go to the server as
usual; when one fails because the server cannot be reached (after the REST client's own retries), the store
turns *offline*: runs are created and their metrics, params, tags, dataset inputs, status changes and
artifacts are written to a local spool instead, a directory store (MLflow's ``mlruns`` layout) under
``MLTRAIL_SPOOL_DIR`` (default ``~/.cache/mltrail/spool``) ``/<host>/<pid>-<random>``. A background thread
probes the server every ``MLTRAIL_SPOOL_RETRY_INTERVAL`` seconds (default 5) and, once it answers, pushes the
spool with :func:`mltrail.sync.push_run`, then deletes it and goes back online.

Why nothing is lost or stored twice:
- runs created offline get their id here and keep it on the server (``create_run(run_id=...)``, an mltrail
  server extension); a run created online is copied into the spool under its own id when it needs to be;
- every write is idempotent on the server, so a batch whose response was lost (the server died after storing
  it) may safely be spooled and sent again;
- while the spool holds data, every run write goes to the spool, so the server receives it all in order; the
  last pass of a push holds the writers back, so nothing written meanwhile is left behind.

Reads (``search_runs``, metric history...) first try to push the spool, so a client still reads its own writes;
``get_run`` of a spooled run is answered from the spool while the server is away (so artifacts logged then land
in the spool and are uploaded later). Ending a run tries a push right away. What is still spooled when the
process exits stays on disk; ``mltrail sync <spool dir> --to <server>`` sends it (a warning names the folder).
Experiments created offline are created on the server by name when the spool is pushed.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from mltrail import config
from mltrail.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import ErrorCode, MltrailException

if TYPE_CHECKING:
    from mltrail.store.base import TrackingStore
    from mltrail.store.file import FileStore
    from mltrail.store.rest import RestStore
    from mltrail.sync import RunProgress

T = TypeVar("T")
_log = logging.getLogger(__name__)

#: Tag of a spool experiment: the id of the server experiment its runs belong to.
REMOTE_EXPERIMENT_TAG = "mltrail.spool.remoteExperimentId"
DEFAULT_RETRY_INTERVAL = 5.0
_PROBE_TIMEOUT = 3.0
_UNREACHABLE = frozenset({ErrorCode.TEMPORARILY_UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED})


def is_unreachable(exc: BaseException) -> bool:
    """The server could not be reached or answered 503/504, after the REST client's retries."""
    return isinstance(exc, MltrailException) and exc.error_code in _UNREACHABLE


def default_spool_dir() -> str:
    """A fresh folder for this process: ``<MLTRAIL_SPOOL_DIR or ~/.cache/mltrail/spool>/<host>/<pid>-<hex>``."""
    from mltrail.sync import cache_home

    root = config.get_env("SPOOL_DIR") or str(cache_home() / "spool")
    return os.path.join(root, socket.gethostname(), f"{os.getpid()}-{secrets.token_hex(4)}")


class SpoolingStore:
    """A :class:`TrackingStore` over a server's REST store that spools to a local directory store while the
    server cannot be reached (see the module docstring)."""

    def __init__(self, remote: RestStore, spool_dir: str | None = None, retry_interval: float | None = None) -> None:
        self.remote = remote
        self.tracking_uri = remote.tracking_uri
        #: as the REST store's: writes to the server or the spool are safe side by side (see ``_write``)
        self.parallel_writes = remote.parallel_writes
        self._spool_dir_choice = spool_dir
        self.retry_interval = retry_interval or float(config.get_env("SPOOL_RETRY_INTERVAL") or DEFAULT_RETRY_INTERVAL)
        self._lock = threading.RLock()  # spool writes and the switch back online
        self._drain_lock = threading.Lock()  # one push at a time
        self._offline = False
        self._drainer: threading.Thread | None = None
        # What this client has seen of the server, to copy runs into the spool while it is away.
        self._runs: dict[str, RunInfo] = {}
        self._experiment_names: dict[str, str] = {}
        #: experiments created offline: spool id -> server id, once pushed
        self._created_offline: dict[str, str | None] = {}
        self._reset_spool()

    def _reset_spool(self) -> None:
        self.spool_dir: str | None = None
        self._spool: FileStore | None = None
        self._spool_experiments: dict[str, str] = {}  # server experiment id -> spool experiment id
        self._spooled_runs: set[str] = set()
        self._progress: dict[str, RunProgress] = {}
        self._failed: dict[str, str] = {}  # run id -> why the server refused it

    @property
    def offline(self) -> bool:
        """Whether the spool holds data the server has not received yet."""
        return self._offline

    # --- mode switching ----------------------------------------------------------------------------
    def _write(self, remote_call: Callable[[], T], spool_call: Callable[[], T]) -> T:
        """Write to the server; while it is away (or the spool still holds data), to the spool."""
        if not self._offline:
            try:
                return remote_call()
            except MltrailException as exc:
                if not is_unreachable(exc):
                    raise
                _log.warning("mltrail: tracking server unreachable (%s); spooling to disk", exc.message)
        with self._lock:
            self._go_offline()
            return spool_call()

    def _go_offline(self) -> None:
        from mltrail.store.file import FileStore

        if self._spool is None:
            self.spool_dir = self._spool_dir_choice or default_spool_dir()
            os.makedirs(self.spool_dir, exist_ok=True)
            self._spool = FileStore(self.spool_dir)
        self._offline = True
        if self._drainer is None:
            self._drainer = threading.Thread(target=self._drain_loop, name="mltrail-spool", daemon=True)
            self._drainer.start()

    def _drain_loop(self) -> None:
        while True:
            time.sleep(self.retry_interval)
            with self._lock:  # decided under the lock that _go_offline takes: no spool is ever left unwatched
                if not self._offline:
                    self._drainer = None
                    return
            try:
                self.drain()
            except Exception as exc:  # keep trying: the next pass may get through
                _log.error("mltrail: sending the spool to %s failed: %s", self.tracking_uri, exc)

    def _server_answers(self) -> bool:
        """A quick health check without the REST client's retries."""
        import requests

        session = self.remote.client.session
        try:
            response = requests.get(
                f"{self.tracking_uri}/health", timeout=_PROBE_TIMEOUT, verify=session.verify, cert=session.cert
            )
        except requests.RequestException:
            return False
        return response.status_code < 500

    def drain(self) -> bool:
        """Push the spool to the server if it answers; True when nothing is left to send."""
        with self._drain_lock:
            if not self._offline:
                return True
            if not self._server_answers():
                return False
            try:
                self._push_spool()  # writers keep appending meanwhile
                with self._lock:
                    self._push_spool()  # what they appended, with them held back
                    self._discard_spool()
                    self._offline = False
            except MltrailException as exc:
                if is_unreachable(exc):
                    return False
                raise
            _log.warning("mltrail: tracking server %s is back; spooled data sent", self.tracking_uri)
            return True

    def _push_spool(self) -> None:
        from mltrail.sync import RunProgress, experiment_runs, push_run

        spool = self._spool
        assert spool is not None and self.spool_dir is not None
        for experiment in spool.search_experiments(ViewType.ACTIVE_ONLY, 50_000):
            remote_id = self._remote_experiment_id(experiment)
            for run in experiment_runs(self.spool_dir, experiment.experiment_id):
                if run.run_id in self._failed:
                    continue
                progress = self._progress.setdefault(run.run_id, RunProgress())
                signature = run.signature()
                if progress.signature == signature:
                    continue
                try:
                    push_run(run, self.remote, remote_id, progress, self.tracking_uri)
                except MltrailException as exc:
                    if is_unreachable(exc) or exc.error_code == ErrorCode.INTERNAL_ERROR:
                        raise
                    _log.error("mltrail: the server refused spooled run %s: %s", run.run_id, exc.message)
                    self._failed[run.run_id] = exc.message
                    continue
                progress.signature = signature

    def _remote_experiment_id(self, experiment: Experiment) -> str:
        """The server experiment of a spool experiment: recorded in its tag, or (created offline) found or
        created by name."""
        remote_id = experiment.tags.get(REMOTE_EXPERIMENT_TAG)
        if remote_id:
            return remote_id
        from mltrail.sync import target_experiment

        tags = {k: v for k, v in experiment.tags.items() if k != REMOTE_EXPERIMENT_TAG}
        remote_id = target_experiment(self.remote, experiment.name, tags, [])
        assert self._spool is not None
        self._spool.set_experiment_tag(experiment.experiment_id, ExperimentTag(REMOTE_EXPERIMENT_TAG, remote_id))
        self._created_offline[experiment.experiment_id] = remote_id
        self._experiment_names[remote_id] = experiment.name
        return remote_id

    def _discard_spool(self) -> None:
        if self._failed:
            _log.error(
                "mltrail: the spool %s keeps %d run(s) the server refused (%s); after fixing the cause, send them "
                "with: mltrail sync %s --to %s",
                self.spool_dir,
                len(self._failed),
                "; ".join(f"{run_id}: {why}" for run_id, why in self._failed.items()),
                self.spool_dir,
                self.tracking_uri,
            )
        elif self.spool_dir is not None:
            shutil.rmtree(self.spool_dir, ignore_errors=True)
        self._reset_spool()

    def _ensure_online_state(self) -> None:
        """Before a call that only the server can answer: push what is spooled first. While the server does
        not answer, fail at once instead of going through the REST client's retries again."""
        if self._offline and not self.drain():
            raise MltrailException(
                f"The tracking server {self.tracking_uri} is unreachable; logged data is spooled in "
                f"{self.spool_dir} and sent when it answers.",
                ErrorCode.TEMPORARILY_UNAVAILABLE,
            )

    # --- the spool side ----------------------------------------------------------------------------
    def _experiment_id(self, experiment_id: str) -> str:
        """The server id of an experiment the client may know by the spool id it got while offline."""
        return self._created_offline.get(experiment_id) or experiment_id

    def _spool_experiment(self, remote_experiment_id: str) -> str:
        spool = self._spool
        assert spool is not None
        remote_experiment_id = self._experiment_id(remote_experiment_id)
        if remote_experiment_id in self._created_offline and not self._created_offline[remote_experiment_id]:
            return remote_experiment_id  # created offline: it is a spool experiment already
        spool_id = self._spool_experiments.get(remote_experiment_id)
        if spool_id is None:
            name = self._experiment_names.get(remote_experiment_id) or f"experiment {remote_experiment_id}"
            tag = ExperimentTag(REMOTE_EXPERIMENT_TAG, remote_experiment_id)
            existing = spool.get_experiment_by_name(name)
            if existing is not None:
                spool_id = existing.experiment_id
                spool.set_experiment_tag(spool_id, tag)
            else:
                spool_id = spool.create_experiment(name, tags=[tag])
            self._spool_experiments[remote_experiment_id] = spool_id
        return spool_id

    def _spool_run(self, run_id: str) -> FileStore:
        """The spool, holding a copy of ``run_id`` (created from what this client saw of it on the server)."""
        spool = self._spool
        assert spool is not None
        if run_id not in self._spooled_runs:
            info = self._runs.get(run_id)
            if info is None:
                raise MltrailException(
                    f"The tracking server is unreachable and run {run_id} is unknown to this client, so its data "
                    "cannot be spooled.",
                    ErrorCode.TEMPORARILY_UNAVAILABLE,
                )
            spool_experiment = self._spool_experiment(info.experiment_id)
            spool.create_run(
                spool_experiment, info.user_id or None, info.start_time, (), info.run_name or None, run_id=run_id
            )
            if info.status != RunStatus.RUNNING or info.end_time is not None:
                spool.update_run_info(run_id, info.status, info.end_time)
            self._spooled_runs.add(run_id)
        return spool

    def _as_seen_by_client(self, run: Run) -> Run:
        """A spooled run with the server experiment id the client knows it by."""
        spool_experiment = run.info.experiment_id
        for remote_id, spool_id in self._spool_experiments.items():
            if spool_id == spool_experiment:
                run.info.experiment_id = remote_id
        return run

    def _remember(self, run: Run) -> Run:
        self._runs[run.info.run_id] = run.info
        return run

    # --- experiments -------------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] | None = None
    ) -> str:
        def spool_call() -> str:
            assert self._spool is not None
            spool_id = self._spool.create_experiment(name, None, tags)
            self._created_offline[spool_id] = None
            return spool_id

        with contextlib.suppress(MltrailException):
            self._ensure_online_state()
        experiment_id = self._write(lambda: self.remote.create_experiment(name, artifact_location, tags), spool_call)
        self._experiment_names.setdefault(experiment_id, name)
        return experiment_id

    def get_experiment(self, experiment_id: str) -> Experiment:
        experiment_id = self._experiment_id(experiment_id)
        try:
            self._ensure_online_state()
            experiment = self.remote.get_experiment(experiment_id)
        except MltrailException as exc:
            if not is_unreachable(exc):
                raise
            if experiment_id in self._created_offline and self._spool is not None:
                return self._spool.get_experiment(experiment_id)
            if experiment_id in self._experiment_names:
                return Experiment(experiment_id, self._experiment_names[experiment_id], "")
            raise
        self._experiment_names[experiment.experiment_id] = experiment.name
        return experiment

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            self._ensure_online_state()
            experiment = self.remote.get_experiment_by_name(name)
        except MltrailException as exc:
            if not is_unreachable(exc):
                raise
            known = next((i for i, n in self._experiment_names.items() if n == name), None)
            if known is not None:
                return Experiment(known, name, "")
            return self._spool.get_experiment_by_name(name) if self._spool is not None else None
        if experiment is not None:
            self._experiment_names[experiment.experiment_id] = experiment.name
        return experiment

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        self._ensure_online_state()
        return self.remote.search_experiments(view_type, max_results, filter_string, order_by, page_token)

    def delete_experiment(self, experiment_id: str) -> None:
        self._ensure_online_state()
        self.remote.delete_experiment(self._experiment_id(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self._ensure_online_state()
        self.remote.restore_experiment(self._experiment_id(experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._ensure_online_state()
        self.remote.rename_experiment(self._experiment_id(experiment_id), new_name)

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        self._ensure_online_state()
        self.remote.set_experiment_tag(self._experiment_id(experiment_id), tag)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._ensure_online_state()
        self.remote.delete_experiment_tag(self._experiment_id(experiment_id), key)

    # --- runs --------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        # The id is chosen here, so that a creation whose answer was lost, then spooled, names the same run.
        run_id = run_id or uuid.uuid4().hex
        start_time = start_time if start_time is not None else time.time_ns() // 1_000_000
        experiment_id = self._experiment_id(experiment_id)

        def spool_call() -> Run:
            assert self._spool is not None
            spool_experiment = self._spool_experiment(experiment_id)
            run = self._spool.create_run(spool_experiment, user_id, start_time, tags, run_name, run_id=run_id)
            self._spooled_runs.add(run_id)
            return self._as_seen_by_client(run)

        run = self._write(
            lambda: self.remote.create_run(experiment_id, user_id, start_time, tags, run_name, run_id=run_id),
            spool_call,
        )
        return self._remember(run)

    def get_run(self, run_id: str) -> Run:
        try:
            self._ensure_online_state()
            return self._remember(self.remote.get_run(run_id))
        except MltrailException as exc:
            if not is_unreachable(exc) or run_id not in self._runs:
                raise
            with self._lock:
                self._go_offline()
                return self._as_seen_by_client(self._spool_run(run_id).get_run(run_id))

    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        if run_status is not None and RunStatus.parse(run_status).is_terminated and self._offline:
            self.drain()  # a run that ends sends its spooled data now if it can

        def spool_call() -> RunInfo:
            info = self._spool_run(run_id).update_run_info(run_id, run_status, end_time, run_name)
            known = self._runs.get(run_id)
            if known is not None:
                info.experiment_id = known.experiment_id
            return info

        info = self._write(lambda: self.remote.update_run_info(run_id, run_status, end_time, run_name), spool_call)
        self._runs[run_id] = info
        if self._offline and run_status is not None and RunStatus.parse(run_status).is_terminated:
            _log.warning(
                "mltrail: run %s ended while the tracking server is unreachable; its data waits in %s and is sent "
                "when the server answers (or with: mltrail sync %s --to %s)",
                run_id,
                self.spool_dir,
                self.spool_dir,
                self.tracking_uri,
            )
        return info

    def delete_run(self, run_id: str) -> None:
        self._ensure_online_state()
        self.remote.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._ensure_online_state()
        self.remote.restore_run(run_id)

    # --- run data ----------------------------------------------------------------------------------
    def log_metric(self, run_id: str, metric: Metric) -> None:
        self.log_batch(run_id, metrics=(metric,))

    def log_param(self, run_id: str, param: Param) -> None:
        self.log_batch(run_id, params=(param,))

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        self.log_batch(run_id, tags=(tag,))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._ensure_online_state()
        self.remote.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        self._write(
            lambda: self.remote.log_batch(run_id, metrics, params, tags),
            lambda: self._spool_run(run_id).log_batch(run_id, metrics, params, tags),
        )

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] = ()) -> None:
        self._write(
            lambda: self.remote.log_inputs(run_id, datasets),
            lambda: self._spool_run(run_id).log_inputs(run_id, datasets),
        )

    # --- reads: the server's answer, after sending what is spooled ---------------------------------
    def get_metric_history(
        self, run_id: str, metric_key: str, max_results: int | None = None, page_token: str | None = None
    ) -> PagedList[Metric]:
        self._ensure_online_state()
        return self.remote.get_metric_history(run_id, metric_key, max_results, page_token)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        self._ensure_online_state()
        ids = [self._experiment_id(str(e)) for e in experiment_ids]
        return self.remote.search_runs(ids, filter_string, run_view_type, max_results, order_by, page_token)


# --- one spooling store per REST store, process-wide ------------------------------------------------------
_wrapped: dict[int, SpoolingStore] = {}
_wrapped_lock = threading.Lock()


def wrap(store: TrackingStore) -> TrackingStore:
    """The spooling store of a server's REST store (shared by every client of it in this process); any other
    store, or every store when ``MLTRAIL_OFFLINE_SPOOL=false``, is returned as is."""
    from mltrail.store.rest import RestStore

    if not isinstance(store, RestStore) or not config.get_env_bool("OFFLINE_SPOOL", True):
        return store
    with _wrapped_lock:
        spooling = _wrapped.get(id(store))
        if spooling is None or spooling.remote is not store:
            spooling = _wrapped[id(store)] = SpoolingStore(store)
        return spooling


def _send_at_exit() -> None:
    """Store what is still queued, then make a last attempt to send each spool; name what stays behind."""
    from mltrail.client import batching

    batching.flush_all(raise_errors=False)
    for spooling in list(_wrapped.values()):
        if spooling.offline:
            try:
                spooling.drain()
            except Exception as exc:
                _log.error("mltrail: sending the spool at exit failed: %s", exc)
        if spooling.offline:
            _log.warning(
                "mltrail: the tracking server %s is unreachable; unsent data stays in %s. Send it with: "
                "mltrail sync %s --to %s",
                spooling.tracking_uri,
                spooling.spool_dir,
                spooling.spool_dir,
                spooling.tracking_uri,
            )


def _forget_after_fork() -> None:
    global _wrapped_lock
    _wrapped_lock = threading.Lock()
    _wrapped.clear()


atexit.register(_send_at_exit)
os.register_at_fork(after_in_child=_forget_after_fork)
