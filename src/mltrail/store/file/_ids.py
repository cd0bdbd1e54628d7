"""Ids, names and the clock of the directory store, in one place so tests can pin them (deterministic fixtures)."""

from __future__ import annotations

import random
import secrets
import time
import uuid

_ADJECTIVES = (
    "able", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair", "gentle", "glad", "grand",
    "honest", "keen", "kind", "lively", "lucky", "merry", "nimble", "polite", "proud", "quick", "quiet", "rare",
    "sharp", "shy", "smart", "swift", "tidy", "vast", "warm", "wise",
)  # fmt: skip
_NOUNS = (
    "ant", "bass", "bear", "cat", "cod", "crane", "deer", "dove", "eel", "finch", "fox", "frog", "gull", "hare",
    "hawk", "horse", "lark", "lynx", "mole", "moth", "newt", "owl", "panda", "robin", "seal", "shrew", "sloth",
    "snail", "squid", "stork", "swan", "toad", "trout", "whale", "wolf", "wren",
)  # fmt: skip

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


def random_run_name() -> str:
    """``<adjective>-<noun>-<number>``, the shape of MLflow's generated run names."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"
