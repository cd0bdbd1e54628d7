"""Evaluate parsed filters and orderings on rows held in memory (the directory store's search back end).

A store wraps each run or experiment in a :class:`Row` that answers the identifiers a query uses
(:func:`identifiers_in` tells it which, so it can load only those), then calls :func:`matches` and
:func:`sort_rows`. Semantics are those documented in :mod:`mltrail.search.ast`, which the SQL back end shares.

Filters are compiled once into nested closures (cached per tree), so evaluating a row costs a few Python
calls per comparison; sorting reads every row's value once per order key and relies on Python's stable sort.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Protocol, TypeVar

from mltrail.search.ast import (
    EXPERIMENT_NUMERIC_ATTRIBUTES,
    RUN_NUMERIC_ATTRIBUTES,
    And,
    Comparison,
    Expr,
    Identifier,
    Not,
    Or,
    OrderKey,
)


class Row(Protocol):
    def value(self, identifier: Identifier) -> object | None:
        """The row's value for ``identifier``, or None when it has none.

        Metrics: float (the latest, min or max value per ``identifier.aggregate``); numeric attributes: int;
        params, tags and string attributes: str; datasets: a tuple with the value of every dataset input
        of the run (None for an input without it).
        """
        ...


R = TypeVar("R", bound=Row)
Predicate = Callable[[Row], bool]
_Test = Callable[[object], bool]

_NUMERIC_ATTRIBUTES = frozenset((*RUN_NUMERIC_ATTRIBUTES, *EXPERIMENT_NUMERIC_ATTRIBUTES))
_ORDERING_OPS: dict[str, Callable[[object, object], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EXPERIMENT_ID = Identifier("attribute", "experiment_id")
_COMPILED_BY_ID: dict[int, tuple[Expr, Predicate]] = {}
_COMPILED_BY_ID_LIMIT = 256


def matches(row: Row, expr: Expr | None) -> bool:
    """True when ``row`` satisfies ``expr`` (always true for no filter)."""
    if expr is None:
        return True
    # Identity lookup first: hashing a frozen tree on every row would cost more than evaluating it.
    entry = _COMPILED_BY_ID.get(id(expr))
    if entry is None or entry[0] is not expr:
        if len(_COMPILED_BY_ID) >= _COMPILED_BY_ID_LIMIT:
            _COMPILED_BY_ID.clear()
        entry = _COMPILED_BY_ID[id(expr)] = (expr, compile_filter(expr))
    return entry[1](row)


@lru_cache(maxsize=256)
def compile_filter(expr: Expr | None) -> Predicate:
    """A function ``row -> bool`` equivalent to ``matches(row, expr)``; use it when filtering many rows."""
    if expr is None:
        return lambda row: True
    if isinstance(expr, Comparison):
        return _compile_comparison(expr)
    if isinstance(expr, Not):
        child = compile_filter(expr.child)
        return lambda row: not child(row)
    children = tuple(compile_filter(c) for c in expr.children)
    if isinstance(expr, And):
        return lambda row: all(child(row) for child in children)
    if isinstance(expr, Or):
        return lambda row: any(child(row) for child in children)
    raise TypeError(f"not a filter expression: {expr!r}")


def _compile_comparison(comparison: Comparison) -> Predicate:
    identifier, op = comparison.identifier, comparison.op
    if op == "IS NULL":
        return lambda row: row.value(identifier) is None
    if op == "IS NOT NULL":
        return lambda row: row.value(identifier) is not None
    test = _value_test(comparison, _is_numeric(identifier))
    if identifier.kind == "dataset":

        def any_input(row: Row) -> bool:
            values = row.value(identifier)
            return bool(values) and any(v is not None and test(v) for v in values)  # type: ignore[union-attr]

        return any_input

    def present(row: Row) -> bool:
        value = row.value(identifier)
        return value is not None and test(value)

    return present


def _value_test(comparison: Comparison, numeric: bool) -> _Test:
    """A test of one non-None row value against the comparison's operator and operand."""
    op, operand = comparison.op, comparison.value
    if numeric:
        compare = _ORDERING_OPS[op]
        return lambda value: compare(value, operand)
    if op in ("IN", "NOT IN"):
        options = frozenset(operand)  # type: ignore[arg-type]
        if op == "IN":
            return lambda value: _as_str(value) in options
        return lambda value: _as_str(value) not in options
    if op in ("LIKE", "ILIKE"):
        fullmatch = like_to_regex(str(operand), case_sensitive=op == "LIKE").fullmatch
        return lambda value: fullmatch(_as_str(value)) is not None
    compare = _ORDERING_OPS[op]
    return lambda value: compare(_as_str(value), operand)


@lru_cache(maxsize=1024)
def like_to_regex(pattern: str, case_sensitive: bool = True) -> re.Pattern[str]:
    """Translate a SQL ``LIKE`` pattern (``%``, ``_``, backslash escape) into a regex to ``fullmatch``."""
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def _as_str(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _is_numeric(identifier: Identifier) -> bool:
    return identifier.kind == "metric" or (identifier.kind == "attribute" and identifier.key in _NUMERIC_ATTRIBUTES)


def sort_rows(rows: Sequence[R], order: Sequence[OrderKey]) -> list[R]:
    """A new list of ``rows`` ordered by ``order`` (first key most significant), stable.

    NULL sorts last in both directions; for metrics NaN sorts after every number and before NULL.
    """
    index = list(range(len(rows)))
    # Stable sorts from the least to the most significant key give the lexicographic order.
    for key in reversed(order):
        column = [row.value(key.identifier) for row in rows]
        index = _sort_by_column(index, column, key)
    return [rows[i] for i in index]


def _sort_by_column(index: list[int], column: list[object | None], key: OrderKey) -> list[int]:
    present: list[int] = []
    nans: list[int] = []
    nulls: list[int] = []
    for i in index:
        value = column[i]
        if value is None:
            nulls.append(i)
        elif value != value:  # NaN is the only value unequal to itself
            nans.append(i)
        else:
            present.append(i)
    sort_key = _sort_key(key.identifier)
    if sort_key is not None:
        for i in present:
            column[i] = sort_key(column[i])
    present.sort(key=column.__getitem__, reverse=not key.ascending)
    return present + nans + nulls


def _sort_key(identifier: Identifier) -> Callable[[object], object] | None:
    """How to turn a present value into something ordered like the SQL store orders it (None: as is)."""
    if _is_numeric(identifier):
        return None
    if identifier == _EXPERIMENT_ID:
        # Experiment ids are decimal strings ordered as numbers: shorter first, then digit by digit.
        return lambda value: (len(_as_str(value)), _as_str(value))
    return _as_str


def identifiers_in(expr: Expr | None, order: Iterable[OrderKey] = ()) -> set[Identifier]:
    """Every identifier a filter and an ordering refer to, so a store can load only those values."""
    found = {key.identifier for key in order}
    pending = [expr] if expr is not None else []
    while pending:
        node = pending.pop()
        if isinstance(node, Comparison):
            found.add(node.identifier)
        elif isinstance(node, Not):
            pending.append(node.child)
        else:
            pending.extend(node.children)
    return found
