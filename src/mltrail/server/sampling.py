"""Step sampling for chart requests (``metrics/get-history-bulk-interval``).

Like MLflow, steps are sampled over the union of the runs' steps inside the requested range, evenly spaced
and always keeping the range's first and last step plus each run's own first and last step there, so every
curve keeps its end points. Each run then returns its points at the sampled steps, at most ``max_results``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mltrail.entities import Metric
from mltrail.errors import MltrailException
from mltrail.store.base import TrackingStore

MAX_RESULTS_PER_RUN = 2500


def evenly_spaced(count: int, limit: int) -> list[int]:
    """Up to ``limit`` indices into ``count`` items, evenly spaced, including the first and the last."""
    if count <= limit:
        return list(range(count))
    if limit == 1:
        return [count - 1]
    stride = (count - 1) / (limit - 1)
    return sorted({round(i * stride) for i in range(limit)})


def sample_histories(
    store: TrackingStore,
    run_ids: Sequence[str],
    metric_key: str,
    max_results: int,
    start_step: int | None,
    end_step: int | None,
) -> list[tuple[str, Metric]]:
    if (start_step is None) != (end_step is None):
        raise MltrailException.invalid_parameter(
            "If either start step or end step are specified, both must be specified."
        )
    if start_step is not None and end_step is not None and start_step > end_step:
        raise MltrailException.invalid_parameter(
            f"end_step must be greater than start_step. Found start_step={start_step} and end_step={end_step}."
        )
    histories = {run_id: list(store.get_metric_history(run_id, metric_key)) for run_id in dict.fromkeys(run_ids)}

    def in_range(step: int) -> bool:
        return start_step is None or start_step <= step <= end_step  # type: ignore[operator]

    all_steps = sorted({m.step for points in histories.values() for m in points if in_range(m.step)})
    chosen = {all_steps[i] for i in evenly_spaced(len(all_steps), max_results)}
    for points in histories.values():
        steps = [m.step for m in points if in_range(m.step)]
        if steps:
            chosen.update((min(steps), max(steps)))

    out: list[tuple[str, Metric]] = []
    for run_id, points in histories.items():
        picked = sorted((m for m in points if m.step in chosen), key=lambda m: (m.step, m.timestamp))
        out.extend((run_id, picked[i]) for i in evenly_spaced(len(picked), max_results))
    return out
