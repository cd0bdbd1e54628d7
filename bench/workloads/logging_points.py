"""The metric points the ``logging`` suite's workloads write, and the read-back check they share.

Every point has a known value (a function of its key index and step), so reading a run back tells exactly how
many points are there, how many are missing (or hold a wrong value) and how many were stored more than once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any


def key(index: int) -> str:
    return f"m{index}"


def value(key_index: int, step: int) -> float:
    return ((key_index * 7919 + step * 31) % 1000) / 1000


@dataclass(frozen=True)
class Tally:
    expected: int
    stored: int  # distinct (key, step) points present with the right value
    lost: int  # expected points missing or holding a wrong value
    duplicated: int  # extra copies of points already counted

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicated == 0

    def describe(self) -> str:
        text = f"stored {self.stored:,}/{self.expected:,}"
        if self.lost:
            text += f", {self.lost:,} lost"
        if self.duplicated:
            text += f", {self.duplicated:,} stored twice"
        return text


def tally(client: Any, run_id: str, keys: int, steps: int) -> Tally:
    """Read ``keys`` histories of ``steps`` points each back with the library's client and compare."""
    stored = duplicated = 0
    for index in range(keys):
        seen = Counter((m.step, m.value) for m in client.get_metric_history(run_id, key(index)))
        stored += sum(1 for step in range(steps) if (step, value(index, step)) in seen)
        duplicated += sum(seen.values()) - len(seen)
    expected = keys * steps
    return Tally(expected, stored, expected - stored, duplicated)
