"""Downsampling a history held as numpy arrays: :func:`mltrail.store.analytics.bucket_min_max` with array
operations, for the stores that can get a history's columns without building a ``Metric`` per point (the
directory store parses its metric files, the SQL store unpacks its chunks). numpy comes with the ``images`` extra;
callers fall back to the generic path without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrail.store import analytics as a

if TYPE_CHECKING:
    import numpy as np


def finite_columns(
    timestamps: np.ndarray, values: np.ndarray, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(timestamps, values, steps)`` of the finite points, and the number of distinct non-finite points: what
    :func:`bucket_arrays` takes."""
    import numpy as np

    finite = np.isfinite(values)
    odd = zip(timestamps[~finite].tolist(), values[~finite].tolist(), steps[~finite].tolist(), strict=True)
    non_finite = len({(ts, repr(value), step) for ts, value, step in odd})
    return timestamps[finite], values[finite], steps[finite], non_finite


def bucket_arrays(
    timestamps: np.ndarray,
    values: np.ndarray,
    steps: np.ndarray,
    non_finite: int,
    axis: str,
    origin: int,
    buckets: int,
    x_min: float | None,
    x_max: float | None,
) -> a.Series:
    """:func:`mltrail.store.analytics.bucket_min_max` over finite points, with array operations.

    One stable sort by (x, second, value) puts a point logged twice (a retried write) next to itself, and it
    counts once, as in ``get_metric_history``. (Values are ordered by their bits made monotonic, so -0.0 comes
    before 0.0 at an identical step and time, where the generic order keeps file order.)"""
    import numpy as np

    x, second = (steps, timestamps) if axis == "step" else (timestamps - origin, steps)
    bits = values.view(np.int64)
    ordered_bits = bits ^ ((bits >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))  # sorts like the values
    order = np.lexsort((ordered_bits, second, x))
    x, second, bits, y = x[order], second[order], bits[order], values[order]
    distinct = np.ones(len(x), dtype=bool)
    distinct[1:] = (x[1:] != x[:-1]) | (second[1:] != second[:-1]) | (bits[1:] != bits[:-1])
    if not distinct.all():
        x, y = x[distinct], y[distinct]
    low, high = a.int_range(x_min, x_max)
    start = int(np.searchsorted(x, low, "left")) if low is not None else 0
    end = int(np.searchsorted(x, high, "right")) if high is not None else len(x)
    inside = max(0, end - start)
    sampled = inside > 2 * buckets
    kept = np.arange(start, max(start, end))
    if sampled:
        kept = start + _extreme_indices(x[start:end], y[start:end], buckets)
    if x_min is not None and start > 0:
        kept = np.concatenate(([start - 1], kept))
    if x_max is not None and end < len(x):
        kept = np.concatenate((kept, [end]))
    return a.Series(x[kept].tolist(), y[kept].tolist(), inside, sampled, non_finite)


def _extreme_indices(x: np.ndarray, y: np.ndarray, buckets: int) -> np.ndarray:
    """Indices of the first and last points and of each bucket's first minimum and first maximum, sorted."""
    import numpy as np

    origin, width = a.bucket_grid(int(x[0]), int(x[-1]), buckets)
    bucket = np.minimum(((x - origin) / width).astype(np.int64), buckets - 1)  # non-decreasing: x is sorted
    starts = np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1))
    segment = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(x))))
    keep = [np.array([0, len(x) - 1])]
    for extreme in (np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)):
        holders = np.flatnonzero(y == extreme[segment])
        _, first = np.unique(segment[holders], return_index=True)
        keep.append(holders[first])
    return np.unique(np.concatenate(keep))
