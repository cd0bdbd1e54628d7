"""Pick the tracking store for a tracking URI, one shared instance per URI in a process.

Stores are imported only when first used (the SQL store pulls in SQLAlchemy, the REST store ``requests``).
After ``fork`` the child starts with an empty cache, so it opens its own database connections instead of
sharing the parent's; :data:`generation` changes so holders of a store know to look it up again.
"""

from __future__ import annotations

import importlib
import os
import threading
import urllib.parse

from mltrail import config
from mltrail.errors import MltrailException
from mltrail.store.base import TrackingStore

_FILE = ("mltrail.store.file", "FileStore")
_SQL = ("mltrail.store.sql", "SqlStore")
_REST = ("mltrail.store.rest", "RestStore")

#: URI scheme (before any ``+driver``) -> (module, class)
_STORES: dict[str, tuple[str, str]] = {
    "": _FILE,
    "file": _FILE,
    "sqlite": _SQL,
    "postgresql": _SQL,
    "postgres": _SQL,
    "mysql": _SQL,
    "mariadb": _SQL,
    "http": _REST,
    "https": _REST,
}

_lock = threading.Lock()
_cache: dict[tuple[str, str | None], TrackingStore] = {}

#: Incremented in a forked child: stores obtained before the fork must not be used there.
generation = 0


def _scheme(uri: str) -> str:
    scheme = urllib.parse.urlparse(uri).scheme.lower()
    if len(scheme) == 1:  # Windows drive letter: a path
        return ""
    return scheme.split("+", 1)[0]


def normalize_tracking_uri(uri: str) -> str:
    """Make URIs that depend on the current directory absolute, so the cache key names one store."""
    scheme = _scheme(uri)
    if scheme == "":
        return os.path.abspath(uri)
    if scheme == "sqlite":
        prefix, sep, path = uri.partition(":///")
        if sep and path and path != ":memory:" and not path.startswith("/") and not os.path.isabs(path):
            return f"{prefix}:///{os.path.abspath(path)}"
    return uri


def _create(uri: str, artifact_root: str | None) -> TrackingStore:
    scheme = _scheme(uri)
    target = _STORES.get(scheme)
    if target is None:
        raise MltrailException.invalid_parameter(
            f"Unsupported tracking URI '{uri}'. Use a local path or file:// URI, sqlite://, postgresql://, "
            "mysql:// or an http(s):// tracking server."
        )
    module_name, class_name = target
    cls = getattr(importlib.import_module(module_name), class_name)
    if target is _REST:
        return cls(uri)
    return cls(uri, artifact_root)


def get_tracking_store(uri: str | None = None, artifact_root: str | None = None) -> TrackingStore:
    """The store for ``uri`` (default: :func:`mltrail.config.get_tracking_uri`), created on first use."""
    key = (normalize_tracking_uri(uri or config.get_tracking_uri()), artifact_root)
    store = _cache.get(key)
    if store is not None:
        return store
    with _lock:
        store = _cache.get(key)
        if store is None:
            store = _create(*key)
            _cache[key] = store
        return store


def _reset_after_fork() -> None:
    global _lock, generation
    _lock = threading.Lock()
    _cache.clear()
    generation += 1


os.register_at_fork(after_in_child=_reset_after_fork)
