"""The benchmark suites, in the order they run and appear in RESULTS.md."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.runner import Case


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    cases: Callable[[bool], Sequence[Case]]  # quick → cases
    max_repeats: int | None = None  # a cap for suites whose one repeat takes minutes
    notes: str = ""


def all_suites() -> list[Suite]:
    from bench.suites import embedded, logging, server, sql, ui

    return [embedded.SUITE, sql.SUITE, server.SUITE, logging.SUITE, ui.SUITE]
