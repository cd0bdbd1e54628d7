"""The same data in two different stores gives the same search results (file is the reference for SQL stores)."""

from __future__ import annotations

from mltrail.entities import ViewType
from mltrail.store.base import TrackingStore

from .helpers import run_names
from .search_data import build_search_data

#: (filter, order_by) pairs; each combines features so that a store-specific shortcut shows up as a difference.
QUERIES: list[tuple[str | None, list[str] | None]] = [
    (None, None),
    (None, ["metrics.loss DESC"]),
    (None, ["metrics.acc DESC", "params.opt ASC"]),
    (None, ["params.lr ASC", "tags.team DESC"]),
    (None, ["tags.env DESC", "attributes.run_name ASC"]),
    (None, ["attributes.status DESC", "metrics.acc ASC"]),
    ("metrics.loss != 0.3", ["metrics.loss ASC"]),
    ("metrics.loss >= 0.5 OR params.opt ILIKE 'sgd'", None),
    ("NOT (tags.team = 'vision') AND params.lr IS NOT NULL", ["params.lr DESC"]),
    ("tags.team ILIKE 'VISION' AND metrics.loss.max > 0.4", None),
    ("params.model LIKE '%e%'", ["params.model ASC"]),
    ("params.opt NOT IN ('sgd') OR tags.env IS NOT NULL", ["attributes.start_time ASC"]),
    ("attributes.status IN ('FINISHED', 'KILLED')", ["attributes.end_time ASC"]),
    ("datasets.context = 'training' OR datasets.digest = 'd2'", ["metrics.loss DESC"]),
    ("NOT (datasets.name = 'eval')", None),
    ("attributes.run_name LIKE 'r_' AND NOT (attributes.run_name IN ('r1', 'r2'))", None),
    ("metrics.loss.min <= 0.5 AND metrics.loss.max >= 0.5", None),
    ("tags.`mlflow.runName` != 'r3' AND (metrics.acc > 0 OR params.model = 'vit')", ["tags.team ASC"]),
    ("params.lr IS NULL OR tags.env IS NULL", ["metrics.loss ASC"]),
    ("attributes.start_time >= 2000 AND attributes.start_time < 5000", ["attributes.run_name DESC"]),
]


def test_same_results_in_two_stores(store: TrackingStore, reference_store: TrackingStore) -> None:
    mine, theirs = build_search_data(store), build_search_data(reference_store)
    differences = {}
    for view in (ViewType.ACTIVE_ONLY, ViewType.ALL):
        for filter_string, order_by in QUERIES:
            results = [
                run_names(s.search_runs([d.main, d.other], filter_string, run_view_type=view, order_by=order_by))
                for s, d in ((store, mine), (reference_store, theirs))
            ]
            assert results[1], f"query {filter_string!r} finds nothing: it would compare nothing"
            if results[0] != results[1]:
                differences[(view.name, filter_string, str(order_by))] = results
    assert differences == {}
