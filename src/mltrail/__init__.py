"""mltrail: fast, MLflow-compatible experiment tracking."""

from mltrail.version import __version__

__all__ = ["__version__"]
