"""Small helpers shared by the contract tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from mltrail.entities import ExperimentTag, Metric, Run
from mltrail.errors import MltrailException
from mltrail.store.base import TrackingStore


def unique_name(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def new_experiment(store: TrackingStore, prefix: str = "contract", tags: Sequence[ExperimentTag] | None = None) -> str:
    return store.create_experiment(unique_name(prefix), tags=tags)


def new_run(store: TrackingStore, experiment_id: str, start_time: int = 1_000) -> str:
    return store.create_run(experiment_id, user_id="tester", start_time=start_time).info.run_id


def metric(key: str, value: float, timestamp: int = 100, step: int = 0) -> Metric:
    return Metric(key=key, value=value, timestamp=timestamp, step=step)


@contextmanager
def raises(error_code: str, *fragments: str) -> Iterator[pytest.ExceptionInfo[MltrailException]]:
    """Expect a MltrailException with ``error_code`` whose message contains every fragment."""
    with pytest.raises(MltrailException) as info:
        yield info
    assert info.value.error_code == error_code, info.value
    for fragment in fragments:
        assert fragment in info.value.message, (fragment, info.value.message)


def local_path(uri: str) -> Path:
    """Filesystem path of a plain path or ``file:`` URI."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(uri)


def run_names(runs: Sequence[Run]) -> list[str]:
    return [r.info.run_name for r in runs]


def search_all(store: TrackingStore, experiment_ids: Sequence[str], page_size: int, **kwargs: object) -> list[Run]:
    """Page through a whole search, checking each page is at most ``page_size`` long."""
    runs: list[Run] = []
    token = None
    while True:
        page = store.search_runs(experiment_ids, max_results=page_size, page_token=token, **kwargs)
        assert len(page) <= page_size
        runs.extend(page)
        token = page.token
        if not token:
            return runs
