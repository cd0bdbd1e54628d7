"""Deadlocks are retried inside the store: callers never see them."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from concurrency import run_side_by_side
from mltrail.store.sql import SqlStore, transactions
from mltrail.store.sql import schema as t

from .helpers import DIALECT_PARAMS, unique


@pytest.fixture(params=DIALECT_PARAMS[1:])  # SQLite takes its write lock at BEGIN: it cannot deadlock
def server_store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    return SqlStore(request.getfixturevalue(f"{request.param}_db_uri"), str(tmp_path))


def test_a_real_deadlock_is_retried_and_both_transactions_succeed(server_store: SqlStore) -> None:
    first, second = (int(server_store.create_experiment(unique("lock"))) for _ in range(2))
    barrier = threading.Barrier(2)
    attempts: Counter[str] = Counter()
    e = t.experiments

    def locker(name: str, order: tuple[int, int]) -> None:
        def operation(connection: sa.Connection) -> None:
            attempts[name] += 1
            connection.execute(sa.update(e).where(e.c.experiment_id == order[0]).values(last_update_time=1))
            if attempts[name] == 1:
                barrier.wait(timeout=30)  # both now hold one row and ask for the other's: a deadlock
            connection.execute(sa.update(e).where(e.c.experiment_id == order[1]).values(last_update_time=2))

        transactions.run(server_store.engine, operation)

    run_side_by_side(lambda: locker("a", (first, second)), lambda: locker("b", (second, first)))
    assert sum(attempts.values()) >= 3  # the deadlock victim ran again
