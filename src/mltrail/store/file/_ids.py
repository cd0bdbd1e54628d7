"""Ids, names and the clock of the directory store, in one place so tests can pin them (deterministic fixtures)."""

from __future__ import annotations

import secrets
import time
import uuid

from mltrail.store.run_names import random_run_name

__all__ = ["new_experiment_id", "new_run_id", "now_ms", "random_run_name"]

#: MLflow's experiment ids in the file store are random integers of this many digits.
EXPERIMENT_ID_DIGITS = 18


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_run_id() -> str:
    return uuid.uuid4().hex


def new_experiment_id() -> str:
    """A random 18-digit decimal id (no leading zero), like MLflow's file store."""
    low = 10 ** (EXPERIMENT_ID_DIGITS - 1)
    return str(low + secrets.randbelow(9 * low))
