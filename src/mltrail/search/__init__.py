"""Search language for runs and experiments: one parser, an in-memory and a SQL back end.

The public functions are importable from here; they load their module on first use so that importing
:mod:`mltrail.search` (or just its ``ast``) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "parse_run_filter": "mltrail.search.parser",
    "parse_run_order_by": "mltrail.search.parser",
    "parse_experiment_filter": "mltrail.search.parser",
    "parse_experiment_order_by": "mltrail.search.parser",
    "Row": "mltrail.search.in_memory",
    "matches": "mltrail.search.in_memory",
    "compile_filter": "mltrail.search.in_memory",
    "sort_rows": "mltrail.search.in_memory",
    "identifiers_in": "mltrail.search.in_memory",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
