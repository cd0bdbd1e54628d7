"""Helpers for tests that run things side by side in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds a thread of :func:`run_side_by_side` may take before the test fails (a hang is a failure, not a wait).
THREAD_TIMEOUT_S = 120


class Overlap:
    """Counts the threads inside ``with overlap:`` at once; ``most`` is the highest count seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc_info: Any) -> None:
        with self._lock:
            self.now -= 1


def run_side_by_side(*actions: Callable[[], T]) -> list[T]:
    """Run each action in a thread of its own, all released at once; returns their results in order, or raises
    the first exception one of them raised, once all have ended."""
    start = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)
    errors: list[BaseException] = []

    def run(index: int, action: Callable[[], T]) -> None:
        try:
            start.wait(timeout=THREAD_TIMEOUT_S)
            results[index] = action()
        except BaseException as error:  # raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THREAD_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads), "a thread did not end"
    if errors:
        raise errors[0]
    return results
