"""Metric points as the SQL store's write path holds them: a tuple per point, then the points of each history
as columns, which the chunk, block and latest-value summaries read with C-level ``min``/``max``/``index``
instead of building a tuple per point each."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

from mltrail.store.sql import schema as t

#: ``(run_pk, key, timestamp, step, value_class, value)``; ``value`` is 0.0 where not finite (see ``value_class``).
#: Sorted, tuples are in history order within each (run, key).
Point = tuple[int, str, int, int, int, float]

_RUN_KEY = itemgetter(0, 1)


class Series(NamedTuple):
    """The points of one (run, key), in the order given (history order, from :func:`series_of`), as columns."""

    run_pk: int
    key: str
    timestamps: tuple[int, ...]
    steps: tuple[int, ...]
    classes: tuple[int, ...]
    values: tuple[float, ...]
    #: whether every value is finite (then ``values`` are the values)
    finite: bool

    def points(self) -> list[Point]:
        """The series as point tuples again (for the uncommon paths)."""
        run_key = (self.run_pk, self.key)
        return [(*run_key, *rest) for rest in zip(self.timestamps, self.steps, self.classes, self.values, strict=True)]

    def select(self, indices: Sequence[int]) -> Series:
        """The series of the points at ``indices``."""
        ts, steps, classes, values = self.timestamps, self.steps, self.classes, self.values
        chosen_classes = tuple(classes[i] for i in indices)
        return Series(
            self.run_pk,
            self.key,
            tuple(ts[i] for i in indices),
            tuple(steps[i] for i in indices),
            chosen_classes,
            tuple(values[i] for i in indices),
            not any(chosen_classes),
        )

    def part(self, start: int, stop: int) -> Series:
        """The series of the points ``start .. stop``."""
        classes = self.classes[start:stop]
        return Series(
            self.run_pk,
            self.key,
            self.timestamps[start:stop],
            self.steps[start:stop],
            classes,
            self.values[start:stop],
            self.finite or not any(classes),
        )


def series_of(points: Sequence[Point]) -> list[Series]:
    """The series of ``points`` (sorted by run and key at least), one per (run, key), in that order."""
    out = []
    for (run_pk, key), group in groupby(points, _RUN_KEY):
        _, _, timestamps, steps, classes, values = zip(*group, strict=True)
        out.append(Series(run_pk, key, timestamps, steps, classes, values, not any(classes)))
    return out


def float_values(series: Series) -> tuple[float, ...] | list[float]:
    """The series' values with non-finite ones as floats again (NaN, ±Inf)."""
    if series.finite:
        return series.values
    pairs = zip(series.values, series.classes, strict=True)
    return [t.decode_value(value, value_class) for value, value_class in pairs]
