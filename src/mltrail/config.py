"""Client settings: the tracking URI and the environment variables the client reads.

Every setting is read from ``MLTRAIL_<NAME>`` first and ``MLFLOW_<NAME>`` second, so a project moves from
MLflow by changing nothing but (optionally) the variable prefix.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LOCAL_STORE = "mlruns"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

_tracking_uri: str | None = None


def get_env(name: str) -> str | None:
    """Value of ``MLTRAIL_<name>``, else ``MLFLOW_<name>``, else ``None``. Empty strings count as unset."""
    for prefix in ("MLTRAIL_", "MLFLOW_"):
        value = os.environ.get(prefix + name)
        if value:
            return value
    return None


def get_env_bool(name: str, default: bool = False) -> bool:
    value = get_env(name)
    if value is None:
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"Environment variable for {name} must be true or false, got {value!r}")


def get_env_int(name: str, default: int) -> int:
    value = get_env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"Environment variable for {name} must be an integer, got {value!r}") from None


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Set the tracking URI for this process; ``None`` goes back to the environment / default."""
    global _tracking_uri
    _tracking_uri = os.fspath(uri) if uri is not None else None


def get_tracking_uri() -> str:
    """Explicit URI > ``MLTRAIL_TRACKING_URI`` > ``MLFLOW_TRACKING_URI`` > ``file://`` URI of ``./mlruns`` in the
    current directory at the time of the call."""
    if _tracking_uri:
        return _tracking_uri
    return get_env("TRACKING_URI") or Path(os.getcwd(), DEFAULT_LOCAL_STORE).as_uri()
