"""Background batching: ``log_metric`` & co. enqueue and return; one worker thread per store writes batches.

Why: a store round trip per metric (a transaction, a file append, an HTTP request) costs 0.1-10 ms, while
appending to a deque costs well under a microsecond. The worker drains the queue, groups items per run into
``store.log_batch`` calls within MLflow's batch limits, and keeps the order of items per run (so per key).

Guarantees:
- Bounded memory: when ``max_pending`` items wait, callers block until the worker makes room.
- :meth:`BackgroundLogger.flush` returns when everything enqueued before it is stored and re-raises the
  first store error since the previous flush. Errors are also logged when they happen; nothing is dropped
  silently. A failing batch is retried in parts so one bad param does not cost the metrics logged with it.
- Exit: an ``atexit`` hook (and a ``multiprocessing`` finalizer in pool/Process children) flushes.
- Fork: the child forgets the parent's loggers (and their pending items, which the parent still writes) and
  starts fresh ones on first use.

A store with ``parallel_writes = n`` (the REST store: a request spends most of its time waiting for the
server) gets up to ``n`` metric-only batches written side by side by sender threads while the worker prepares
the next ones. Metric points may be stored in any order (a history is a set of points, the latest value is the
one with the greatest step), so this changes nothing observable; a batch with params or tags, and every
``flush``, waits until the batches before it are stored.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import starmap
from operator import itemgetter

from mltrail import config
from mltrail.entities import Metric, Param, RunTag
from mltrail.errors import MltrailException
from mltrail.store.base import TrackingStore
from mltrail.validation import MAX_ENTITIES_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

_log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 100_000
_CHUNK = 20_000  # items the worker takes from the queue at once
_WAIT_POLL_SECONDS = 0.5

# Queue item kinds. Items are plain tuples ``(run_id, kind, ...)`` because building entities costs more than
# the enqueue itself; the worker builds them.
_METRIC = 0  # (run_id, _METRIC, key, value, timestamp, step)
_ENTITY = 1  # (run_id, _ENTITY, Metric | Param | RunTag)
_MARKER = 2  # (None, _MARKER, threading.Event) set once everything before it is stored


@dataclass(slots=True)
class _Batch:
    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: dict[str, RunTag] = field(default_factory=dict)  # last value of a key wins, like sequential calls

    def add(self, entity: Metric | Param | RunTag) -> None:
        if isinstance(entity, Metric):
            self.metrics.append(entity)
        elif isinstance(entity, Param):
            self.params.append(entity)
        else:
            self.tags[entity.key] = entity

    def is_full(self) -> bool:
        return (
            len(self.metrics) >= MAX_METRICS_PER_BATCH
            or len(self.params) >= MAX_PARAMS_TAGS_PER_BATCH
            or len(self.tags) >= MAX_PARAMS_TAGS_PER_BATCH
            or len(self.metrics) + len(self.params) + len(self.tags) >= MAX_ENTITIES_PER_BATCH
        )


_POINT = itemgetter(2, 3, 4, 5)  # (key, value, timestamp, step) of a _METRIC item
_RUN, _KIND = itemgetter(0), itemgetter(1)


def _metrics_of_one_run(chunk: list[tuple]) -> bool:
    """Whether every item of ``chunk`` is a metric point of the same run (counted in C, not item by item)."""
    return list(map(_KIND, chunk)).count(_METRIC) == len(chunk) and len(set(map(_RUN, chunk))) == 1


def _store_batches(
    metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> Iterator[tuple[Sequence[Metric], Sequence[Param], Sequence[RunTag]]]:
    """Consecutive slices of each list, as few batches as the store's per-request limits allow."""
    m = p = t = 0
    while m < len(metrics) or p < len(params) or t < len(tags):
        p_end = min(len(params), p + MAX_PARAMS_TAGS_PER_BATCH)
        t_end = min(len(tags), t + MAX_PARAMS_TAGS_PER_BATCH)
        room = MAX_ENTITIES_PER_BATCH - (p_end - p) - (t_end - t)
        m_end = min(len(metrics), m + min(MAX_METRICS_PER_BATCH, room))
        yield metrics[m:m_end], params[p:p_end], tags[t:t_end]
        m, p, t = m_end, p_end, t_end


class _ForkGate:
    """Lets store writes run side by side, and lets a fork wait for them and hold new ones back until it is
    done: a child must not inherit a half-done write (SQLite's in-process lock state, a socket mid-request)."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._writers = 0
        self._closed = False

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._closed)
            self._writers += 1
        try:
            yield
        finally:
            with self._condition:
                self._writers -= 1
                self._condition.notify_all()

    def close(self, timeout: float) -> bool:
        """Hold new writes back; True once none is running (False: gave up waiting after ``timeout``)."""
        with self._condition:
            self._closed = True
            return self._condition.wait_for(lambda: self._writers == 0, timeout)

    def open(self) -> None:
        with self._condition:
            self._closed = False
            self._condition.notify_all()


class _Senders:
    """Daemon threads writing metric-only batches handed over by the worker, at most ``count`` at a time."""

    def __init__(self, write: Callable[[str, _Batch], None], count: int) -> None:
        self._write = write
        self._handoff: queue.Queue[tuple[str, _Batch]] = queue.Queue(maxsize=1)
        self._idle = threading.Condition(threading.Lock())
        self._in_flight = 0
        for number in range(count):
            threading.Thread(target=self._send, name=f"mltrail-sender-{number}", daemon=True).start()

    def submit(self, run_id: str, batch: _Batch) -> None:
        with self._idle:
            self._in_flight += 1
        self._handoff.put((run_id, batch))

    def drain(self) -> None:
        """Return once every submitted batch is written (or failed, which ``write`` records)."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0)

    def _send(self) -> None:
        while True:
            run_id, batch = self._handoff.get()
            try:
                self._write(run_id, batch)
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()


class BackgroundLogger:
    """The queue and worker thread of one store."""

    def __init__(self, store: TrackingStore, max_pending: int | None = None) -> None:
        self.store = store
        self.max_pending = max_pending or config.get_env_int("ASYNC_LOGGING_QUEUE_SIZE", DEFAULT_MAX_PENDING)
        self._queue: deque[tuple] = deque()
        self._wakeup = threading.Event()
        self._room = threading.Condition(threading.Lock())
        self._blocked = 0  # callers waiting for room
        self._busy = False  # the worker holds items taken off the queue
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._fork_gate = _ForkGate()
        parallel = int(getattr(store, "parallel_writes", 1))
        self._senders = _Senders(self._write, parallel) if parallel > 1 else None
        self._error_lock = threading.Lock()
        self._first_error: BaseException | None = None
        self._error_count = 0
        # Params enqueued per run, so a changed value is refused at the call, as MLflow does synchronously.
        self._params: dict[str, dict[str, str]] = {}

    # --- producer side -----------------------------------------------------------------------------
    def log_metric(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        """Enqueue one validated metric point."""
        self._put((run_id, _METRIC, key, value, timestamp, step))

    def log_entities(self, run_id: str, entities: Iterable[Metric | Param | RunTag]) -> None:
        """Enqueue validated metrics, params and tags, in order."""
        for entity in entities:
            if isinstance(entity, Param):
                self.check_param(run_id, entity)
            self._put((run_id, _ENTITY, entity))

    def check_param(self, run_id: str, param: Param) -> None:
        """Refuse a new value for a param already logged through this logger; remember the value."""
        seen = self._params.setdefault(run_id, {})
        old = seen.setdefault(param.key, param.value)
        if old != param.value:
            raise MltrailException.invalid_parameter(
                f"Changing param values is not allowed. Param with key='{param.key}' was already logged with "
                f"value='{old}' for run ID='{run_id}'. Attempted logging new value '{param.value}'."
            )

    def forget_run(self, run_id: str) -> None:
        self._params.pop(run_id, None)

    def log_entities_now(
        self, run_id: str, metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
    ) -> None:
        """Synchronous write of validated entities, after everything already enqueued (keeps per-key order), in
        batches within the limits. Errors raise here."""
        for param in params:
            self.check_param(run_id, param)
        # The last value of a tag key wins, as with sequential calls.
        last_tags = list({tag.key: tag for tag in tags}.values())
        self.wait()
        for batch in _store_batches(metrics, params, last_tags):
            self._store_batch(run_id, *batch)

    def _put(self, item: tuple) -> None:
        if len(self._queue) >= self.max_pending:
            self._wait_for_room()
        self._queue.append(item)
        if not self._wakeup.is_set():
            self._wakeup.set()
        if self._thread is None:
            self._start_worker()

    def _wait_for_room(self) -> None:
        with self._room:
            self._blocked += 1
            try:
                while len(self._queue) >= self.max_pending:
                    self._ensure_worker()
                    self._room.wait(_WAIT_POLL_SECONDS)
            finally:
                self._blocked -= 1

    # --- waiting and errors ------------------------------------------------------------------------
    def wait(self) -> None:
        """Return when everything enqueued so far is stored (or failed). Does not raise store errors."""
        if not self._queue and not self._busy:
            return
        marker = threading.Event()
        self._put((None, _MARKER, marker))
        while not marker.wait(_WAIT_POLL_SECONDS):
            self._ensure_worker()

    def flush(self) -> None:
        """:meth:`wait`, then raise the first store error since the previous flush, if any."""
        self.wait()
        with self._error_lock:
            error, count = self._first_error, self._error_count
            self._first_error, self._error_count = None, 0
        if error is not None:
            if count > 1:
                error.add_note(f"({count - 1} more background logging error(s) since the last flush; see the log)")
            raise error

    def _record_error(self, run_id: str, error: BaseException) -> None:
        _log.error("mltrail: background logging failed for run %s: %s", run_id, error)
        with self._error_lock:
            if self._first_error is None:
                self._first_error = error
            self._error_count += 1

    # --- worker ------------------------------------------------------------------------------------
    def _start_worker(self) -> None:
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                _install_exit_hooks()
                self._thread = threading.Thread(target=self._work, name="mltrail-logger", daemon=True)
                self._thread.start()

    def _ensure_worker(self) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._start_worker()

    def _work(self) -> None:
        queue = self._queue
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            while queue:
                self._busy = True
                chunk = [queue.popleft() for _ in range(min(len(queue), _CHUNK))]
                if self._blocked:
                    with self._room:
                        self._room.notify_all()
                self._process(chunk)
            self._drain()  # busy until what it took off the queue is stored (see wait())
            self._busy = False

    def _process(self, chunk: list[tuple]) -> None:
        if _metrics_of_one_run(chunk):
            self._process_metrics(chunk)
            return
        pending: dict[str, _Batch] = {}
        try:
            for item in chunk:
                run_id, kind = item[0], item[1]
                if kind == _MARKER:
                    self._write_all(pending)
                    self._drain()
                    item[2].set()
                    continue
                batch = pending.get(run_id)
                if batch is None:
                    batch = pending[run_id] = _Batch()
                if kind == _METRIC:
                    batch.metrics.append(Metric(item[2], item[3], item[4], item[5]))
                else:
                    batch.add(item[2])
                if batch.is_full():
                    del pending[run_id]
                    self._dispatch(run_id, batch)
            self._write_all(pending)
        except BaseException as exc:  # a bug here must not hang flush(): record it and release every waiter
            self._record_error("?", exc)
            for item in chunk:
                if item[1] == _MARKER:
                    item[2].set()

    def _process_metrics(self, chunk: list[tuple]) -> None:
        """:meth:`_process` of a chunk of metric points of one run (a training loop's usual chunk): the
        Metrics are made and cut into full batches without a Python-level loop over the points."""
        run_id = chunk[0][0]
        try:
            # A batch at a time: handing each over as soon as it is made lets the senders, waiting for the GIL
            # to read a response, have it at once instead of after a whole chunk's work.
            for start in range(0, len(chunk), MAX_METRICS_PER_BATCH):
                points = chunk[start : start + MAX_METRICS_PER_BATCH]
                self._dispatch(run_id, _Batch(list(starmap(Metric, map(_POINT, points)))))
        except BaseException as exc:  # as in _process: recorded, never lost
            self._record_error(run_id, exc)

    def _write_all(self, pending: dict[str, _Batch]) -> None:
        for run_id, batch in pending.items():
            self._dispatch(run_id, batch)
        pending.clear()

    def _dispatch(self, run_id: str, batch: _Batch) -> None:
        """Hand a metric-only batch to the senders; write any other after the batches before it."""
        if self._senders is not None and not batch.params and not batch.tags:
            self._senders.submit(run_id, batch)
            return
        self._drain()
        self._write(run_id, batch)

    def _drain(self) -> None:
        if self._senders is not None:
            self._senders.drain()

    def _store_batch(
        self, run_id: str, metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
    ) -> None:
        with self._fork_gate.writing():
            self.store.log_batch(run_id, metrics, params, tags)

    def _write(self, run_id: str, batch: _Batch) -> None:
        tags = list(batch.tags.values())
        try:
            self._store_batch(run_id, batch.metrics, batch.params, tags)
            return
        except Exception as exc:
            if not batch.params or (not batch.metrics and not tags and len(batch.params) == 1):
                self._record_error(run_id, exc)
                return
        # Retry in parts, so that a refused param (e.g. a changed value) does not lose the other data.
        parts: list[tuple[Sequence[Metric], Sequence[Param], Sequence[RunTag]]] = [(batch.metrics, (), tags)]
        parts += [((), (param,), ()) for param in batch.params]
        for metrics, params, part_tags in parts:
            if not (metrics or params or part_tags):
                continue
            try:
                self._store_batch(run_id, metrics, params, part_tags)
            except Exception as exc:
                self._record_error(run_id, exc)


# --- one logger per store, process-wide ----------------------------------------------------------------
_loggers: dict[int, BackgroundLogger] = {}
_loggers_lock = threading.Lock()
_hooked_pid: int | None = None


def logger_for(store: TrackingStore) -> BackgroundLogger:
    logger = _loggers.get(id(store))
    if logger is not None and logger.store is store:
        return logger
    with _loggers_lock:
        logger = _loggers.get(id(store))
        if logger is None or logger.store is not store:
            logger = _loggers[id(store)] = BackgroundLogger(store)
        return logger


def flush_all(raise_errors: bool = True) -> None:
    """Flush every logger of this process; raise the first error unless ``raise_errors`` is false."""
    first: BaseException | None = None
    for logger in list(_loggers.values()):
        try:
            logger.flush()
        except Exception as exc:
            first = first or exc
    if first is not None and raise_errors:
        raise first


def _flush_at_exit() -> None:
    # Errors were logged when they happened; exit must not fail because of them.
    flush_all(raise_errors=False)


def _install_exit_hooks() -> None:
    """Make sure this process flushes at exit. ``multiprocessing`` children leave through ``os._exit`` (no
    atexit), but they run the finalizers registered after they started, so register one there too."""
    global _hooked_pid
    if _hooked_pid == os.getpid():
        return
    _hooked_pid = os.getpid()
    if "multiprocessing" in sys.modules:
        from multiprocessing import util

        util.Finalize(None, _flush_at_exit, exitpriority=100)


_FORK_WAIT_SECONDS = 30.0
_gates_closed_for_fork: list[_ForkGate] = []


def _before_fork() -> None:
    """Wait for store writes in progress to finish, and keep new ones from starting until the fork is done."""
    for logger in list(_loggers.values()):
        _gates_closed_for_fork.append(logger._fork_gate)
        if not logger._fork_gate.close(timeout=_FORK_WAIT_SECONDS):
            _log.warning("mltrail: forking while a store write is still running; the child may hang on it")


def _after_fork_in_parent() -> None:
    while _gates_closed_for_fork:
        _gates_closed_for_fork.pop().open()


def _after_fork_in_child() -> None:
    global _loggers_lock
    _gates_closed_for_fork.clear()
    _loggers_lock = threading.Lock()
    _loggers.clear()


atexit.register(_flush_at_exit)
os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
