"""Running store operations in transactions, retrying the ones the database aborted for concurrency reasons.

Serialization failures and deadlocks (PostgreSQL 40001/40P01, MySQL 1213/1205, SQLite "database is locked") roll
the whole transaction back, so running the operation again is safe; callers never see them unless they persist.
Other database errors become :class:`MltrailException` so that no driver stack trace reaches a user.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import TypeVar

import sqlalchemy as sa

from mltrail.errors import ErrorCode, MltrailException
from mltrail.store.sql.engine import WRITE_OPTION, writer_lock

T = TypeVar("T")

_log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
_PG_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})
_MYSQL_RETRY_CODES = frozenset({1205, 1213})


def is_retryable(error: sa.exc.DBAPIError) -> bool:
    """True when the database rolled the transaction back because of a concurrent one."""
    orig = error.orig
    if getattr(orig, "sqlstate", None) in _PG_RETRY_STATES or getattr(orig, "pgcode", None) in _PG_RETRY_STATES:
        return True
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRY_CODES:
        return True
    message = str(orig).lower()
    return "database is locked" in message or "database table is locked" in message


def run(
    engine: sa.Engine,
    operation: Callable[[sa.Connection], T],
    *,
    write: bool = True,
    conflict: Callable[[], MltrailException] | None = None,
) -> T:
    """Run ``operation(connection)`` in one transaction (committed on return) and return its result.

    ``conflict`` makes the error to raise when a unique constraint refuses a row that a concurrent transaction
    inserted first (the operation checked beforehand, so this happens only in a race).
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with writer_lock(engine) if write else nullcontext(), engine.connect() as connection:
                if write:
                    connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    return operation(connection)
        except sa.exc.IntegrityError as error:
            if conflict is not None:
                raise conflict() from error
            raise database_error(error) from error
        except sa.exc.DBAPIError as error:
            if attempt < MAX_ATTEMPTS and is_retryable(error):
                delay = min(0.5, 0.005 * 2**attempt) * (0.5 + random.random())
                _log.debug("Retrying after concurrent-transaction error (attempt %d): %s", attempt, error.orig)
                time.sleep(delay)
                continue
            raise database_error(error) from error
    raise AssertionError("unreachable")


def database_error(error: sa.exc.DBAPIError) -> MltrailException:
    """A user-facing error for a database failure we did not anticipate."""
    unavailable = error.connection_invalidated or is_retryable(error)
    code = ErrorCode.TEMPORARILY_UNAVAILABLE if unavailable else ErrorCode.INTERNAL_ERROR
    return MltrailException(f"Database error: {type(error.orig).__name__}: {error.orig}", code)
