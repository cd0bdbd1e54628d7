"""Queries on a store populated by ``sql_populate.py``, in a fresh process; each query runs ``--samples``
times in a row and the median time is kept (single runs of a 30 ms query are mostly noise on a busy machine).

- all runs: ``search_runs`` paging through experiment ``bench`` (max_results 1000);
- filter + order: ``metrics.m1 > 0.5 and params.p1 = 'a'`` ordered by ``metrics.m2 DESC``, all pages;
- LIKE: ``tags.t1 LIKE '%x%'``, all pages;
- history: ``get_metric_history`` of the ``bench-history`` run's metric ``h``.
Result counts (and the order) are checked against what the generator wrote.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable

import _common as c

FILTER = "metrics.m1 > 0.5 and params.p1 = 'a'"
LIKE = "tags.t1 LIKE '%x%'"


def _arguments(parser) -> None:
    parser.add_argument("--db-uri", required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--history-points", type=int, required=True)
    parser.add_argument("--samples", type=int, default=3)


def _timed(samples: int, query: Callable[[], list]) -> tuple[float, list]:
    """(median seconds over ``samples`` runs, the last result)."""
    times, result = [], []
    for _ in range(samples):
        started = time.perf_counter()
        result = query()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def _all_pages(client, experiment_id: str, **kwargs) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token, **kwargs)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def main() -> None:
    args = c.parse_args(_arguments)
    client = c.client(args.impl, args.db_uri)
    experiment_id = client.get_experiment_by_name("bench").experiment_id  # also opens the store: not timed
    history_experiment = client.get_experiment_by_name("bench-history").experiment_id

    history_run = client.search_runs([history_experiment])[0].info.run_id
    n = args.samples
    all_seconds, all_runs = _timed(n, lambda: _all_pages(client, experiment_id))
    filter_seconds, filtered = _timed(
        n, lambda: _all_pages(client, experiment_id, filter_string=FILTER, order_by=["metrics.m2 DESC"])
    )
    like_seconds, liked = _timed(n, lambda: _all_pages(client, experiment_id, filter_string=LIKE))
    history_seconds, history = _timed(n, lambda: client.get_metric_history(history_run, "h"))

    m2 = [run.data.metrics["m2"] for run in filtered]
    expected = {
        "all": (len(all_runs), args.runs),
        "filter": (len(filtered), c.expected_filter_count(args.runs, args.steps)),
        "like": (len(liked), c.expected_like_count(args.runs)),
        "history": (len(history), args.history_points),
    }
    ordered = all(a >= b for a, b in itertools.pairwise(m2))
    c.emit(
        search_all_seconds=all_seconds,
        search_filter_seconds=filter_seconds,
        search_like_seconds=like_seconds,
        history_seconds=history_seconds,
        verified=ordered and all(got == want for got, want in expected.values()),
        detail=", ".join(f"{name} {got:,}/{want:,}" for name, (got, want) in expected.items())
        + ("" if ordered else ", m2 order wrong"),
    )


if __name__ == "__main__":
    main()
