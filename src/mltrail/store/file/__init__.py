"""The directory store (default ``./mlruns``): MLflow's file-store layout, readable and writable by both tools."""

from mltrail.store.file.store import FileStore

__all__ = ["FileStore"]
