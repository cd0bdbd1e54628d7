"""BackgroundLogger: batching limits, per-key order, error surfacing, backpressure.

The logger is tested against a recording store (a stand-in for the store, which is not what is under test
here) so that batch boundaries, failures and a stalled store can be observed and provoked precisely.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from mltrail.client.batching import BackgroundLogger
from mltrail.entities import Metric, Param, RunTag
from mltrail.errors import MltrailException


class RecordingStore:
    """Records every log_batch call; refuses runs named in ``failing_runs`` and params named ``bad``; can be
    paused with ``gate``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Metric], list[Param], list[RunTag]]] = []
        self.failing_runs: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()

    def log_batch(
        self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = ()
    ) -> None:
        self.gate.wait()
        if run_id in self.failing_runs:
            raise MltrailException.not_found(f"Run with id={run_id} not found")
        if any(p.key == "bad" for p in params):
            raise MltrailException.invalid_parameter("Changing param values is not allowed.")
        self.calls.append((run_id, list(metrics), list(params), list(tags)))

    def metrics_of(self, run_id: str) -> list[Metric]:
        return [m for call in self.calls if call[0] == run_id for m in call[1]]


def test_batches_respect_limits_and_keep_order_per_run_and_key() -> None:
    store = RecordingStore()
    logger = BackgroundLogger(store)  # type: ignore[arg-type]
    for step in range(2500):
        for run_id in ("a", "b"):
            logger.log_metric(run_id, "loss", float(step), 1000 + step, step)
            logger.log_metric(run_id, "acc", float(-step), 1000 + step, step)
        if step % 10 == 0:
            logger.log_entities("a", [Param(f"p{step}", "1"), RunTag(f"t{step % 150}", str(step))])
    logger.flush()

    for _run_id, metrics, params, tags in store.calls:
        assert len(metrics) <= 1000 and len(params) <= 100 and len(tags) <= 100
        assert len(metrics) + len(params) + len(tags) <= 1000
    for run_id in ("a", "b"):
        stored = store.metrics_of(run_id)
        assert len(stored) == 5000
        for key, sign in (("loss", 1.0), ("acc", -1.0)):
            assert [m.step for m in stored if m.key == key] == list(range(2500))
            assert [m.value for m in stored if m.key == key] == [sign * s for s in range(2500)]
    params = [p.key for call in store.calls if call[0] == "a" for p in call[2]]
    assert params == [f"p{s}" for s in range(0, 2500, 10)]
    last_tag_values: dict[str, str] = {}
    for call in store.calls:
        for tag in call[3]:
            last_tag_values[tag.key] = tag.value
    assert last_tag_values["t0"] == "2400"  # the last set of a key wins, as with sequential set_tag calls


def test_a_synchronous_write_is_split_into_as_few_batches_as_the_limits_allow() -> None:
    store = RecordingStore()
    logger = BackgroundLogger(store)  # type: ignore[arg-type]
    metrics = [Metric("m", float(i), 1000 + i, i) for i in range(2500)]
    params = [Param(f"p{i}", str(i)) for i in range(150)]
    tags = [RunTag(f"t{i % 120}", str(i)) for i in range(150)]  # keys t0..t29 twice: the later value wins
    logger.log_entities_now("r", metrics, params, tags)

    for _run_id, batch_metrics, batch_params, batch_tags in store.calls:
        assert len(batch_metrics) <= 1000 and len(batch_params) <= 100 and len(batch_tags) <= 100
        assert len(batch_metrics) + len(batch_params) + len(batch_tags) <= 1000
    assert len(store.calls) == 3  # 2,770 entities: three full batches at most 1,000 each
    assert store.metrics_of("r") == metrics
    assert [p for call in store.calls for p in call[2]] == params
    stored_tags = {t.key: t.value for call in store.calls for t in call[3]}
    assert len(stored_tags) == 120 and stored_tags["t0"] == "120" and stored_tags["t119"] == "119"


def test_points_of_one_run_taken_off_the_queue_together_go_out_in_full_batches_in_order() -> None:
    store = RecordingStore()
    store.gate.clear()  # the first write waits, so the rest piles up in the queue and is taken off at once
    logger = BackgroundLogger(store)  # type: ignore[arg-type]
    logger.log_metric("r", "m", -1.0, 1, 0)
    time.sleep(0.2)  # the worker holds the first point, waiting on the store
    for step in range(1, 4501):
        logger.log_metric("r", "m" if step % 3 else "n", float(step), 1000 + step, step)
    store.gate.set()
    logger.flush()
    assert [len(call[1]) for call in store.calls] == [1, 1000, 1000, 1000, 1000, 500]
    stored = store.metrics_of("r")
    assert [(m.key, m.value, m.timestamp, m.step) for m in stored[1:]] == [
        ("m" if step % 3 else "n", float(step), 1000 + step, step) for step in range(1, 4501)
    ]


def test_flush_reraises_first_error_once_and_keeps_other_data() -> None:
    store = RecordingStore()
    store.failing_runs.add("gone")
    logger = BackgroundLogger(store)  # type: ignore[arg-type]
    logger.log_metric("gone", "m", 1.0, 1, 0)
    logger.log_metric("ok", "m", 2.0, 1, 0)
    with pytest.raises(MltrailException) as caught:
        logger.flush()
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert [m.value for m in store.metrics_of("ok")] == [2.0]
    logger.flush()  # reported once


def test_refused_param_does_not_lose_metrics_logged_with_it() -> None:
    store = RecordingStore()
    logger = BackgroundLogger(store)  # type: ignore[arg-type]
    logger.log_metric("r", "m", 1.0, 1, 0)
    logger.log_entities("r", [Param("bad", "x"), Param("good", "y"), RunTag("t", "v")])
    with pytest.raises(MltrailException, match="Changing param values"):
        logger.flush()
    assert [m.value for m in store.metrics_of("r")] == [1.0]
    assert [p.key for call in store.calls for p in call[2]] == ["good"]
    assert [t.key for call in store.calls for t in call[3]] == ["t"]


def test_changed_param_value_is_refused_at_the_call() -> None:
    logger = BackgroundLogger(RecordingStore())  # type: ignore[arg-type]
    logger.log_entities("r", [Param("lr", "0.1")])
    logger.log_entities("r", [Param("lr", "0.1")])  # same value again is fine
    with pytest.raises(MltrailException, match="Changing param values is not allowed"):
        logger.log_entities("r", [Param("lr", "0.2")])


def test_backpressure_blocks_callers_at_the_bound() -> None:
    store = RecordingStore()
    store.gate.clear()  # the store stalls
    logger = BackgroundLogger(store, max_pending=50)  # type: ignore[arg-type]
    done = threading.Event()

    def produce() -> None:
        for i in range(3000):
            logger.log_metric("r", "m", float(i), 1, i)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert len(logger._queue) <= 50
        time.sleep(0.01)
    assert not done.is_set()  # blocked: the store has not taken anything yet
    store.gate.set()
    producer.join(10)
    logger.flush()
    assert [m.step for m in store.metrics_of("r")] == list(range(3000))


def test_flush_when_idle_does_not_involve_the_worker() -> None:
    logger = BackgroundLogger(RecordingStore())  # type: ignore[arg-type]
    logger.flush()
    assert logger._thread is None  # no marker was queued, so no worker was even started


class ParallelStore(RecordingStore):
    """A store that accepts two writes at once and records how many overlap, and in which order writes end."""

    parallel_writes = 2

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.active = 0
        self.most_active = 0
        self.both_started = threading.Barrier(2, timeout=5)
        self.events: list[str] = []

    def log_batch(
        self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = ()
    ) -> None:
        kind = "tags" if tags else "params" if params else "metrics"
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.events.append(f"start {kind}")
        if kind == "metrics" and self.events.count("start metrics") <= 2:
            self.both_started.wait()  # the first two metric batches can only both get here if sent side by side
        super().log_batch(run_id, metrics, params, tags)
        with self._lock:
            self.active -= 1
            self.events.append(f"end {kind}")


def test_metric_batches_go_out_side_by_side_and_tags_wait_for_them() -> None:
    store = ParallelStore()
    store.gate.clear()
    logger = BackgroundLogger(store)  # type: ignore[arg-type]
    logger.log_entities("w", [Param("p", "1")])  # holds the worker (a params batch is written by the worker)
    for i in range(4000):
        logger.log_metric("r", "m", float(i), 1, i)
    logger.log_entities("r", [RunTag("phase", "after")])
    store.gate.set()
    logger.flush()
    assert store.most_active == 2
    assert sorted(m.step for m in store.metrics_of("r")) == list(range(4000))
    before_tags = store.events[: store.events.index("start tags")]
    assert before_tags.count("end metrics") == before_tags.count("start metrics") >= 4  # all stored first
