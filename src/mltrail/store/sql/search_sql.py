"""Compile the search AST (:mod:`mltrail.search.ast`) to SQL for runs and experiments.

Every comparison on a metric, param, tag or dataset becomes an ``EXISTS`` subquery keyed by the run, and every
attribute comparison is guarded against NULL, so each leaf is TRUE or FALSE, never NULL: ``NOT`` then means
exactly "the rows the child does not match", as ``search/ast.py`` defines.

Ordering joins one summary row per order key (LEFT OUTER JOIN on the primary key) and sorts missing values last
in both directions; for metrics NaN comes after every number and before missing values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from mltrail.errors import MltrailException
from mltrail.search.ast import And, Comparison, Expr, Identifier, Not, Or, OrderKey
from mltrail.store.sql import schema as t
from mltrail.store.sql.writes import DATASET_CONTEXT_TAG

_LIKE_ESCAPE = "\\"

_RUN_ATTRIBUTES: dict[str, sa.Column[Any]] = {
    "run_id": t.runs.c.run_uuid,
    "run_name": t.runs.c.name,
    "status": t.runs.c.status,
    "user_id": t.runs.c.user_id,
    "artifact_uri": t.runs.c.artifact_uri,
    "lifecycle_stage": t.runs.c.lifecycle_stage,
    "start_time": t.runs.c.start_time,
    "end_time": t.runs.c.end_time,
}
_EXPERIMENT_ATTRIBUTES: dict[str, sa.Column[Any]] = {
    "name": t.experiments.c.name,
    "experiment_id": t.experiments.c.experiment_id,
    "creation_time": t.experiments.c.creation_time,
    "last_update_time": t.experiments.c.last_update_time,
}
#: metric aggregate -> (value column, class column) of latest_metrics
_AGGREGATE_COLUMNS = {
    "latest": ("value", "value_class"),
    "min": ("min_value", "min_class"),
    "max": ("max_value", "max_class"),
}


def _invalid(message: str) -> MltrailException:
    return MltrailException.invalid_parameter(message)


# --- comparisons --------------------------------------------------------------------------------------------------


def compare_string(column: Any, op: str, value: Any) -> sa.ColumnElement[bool]:
    """A string comparison on a non-NULL column."""
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "LIKE":
        return column.like(value, escape=_LIKE_ESCAPE)
    if op == "ILIKE":
        return column.ilike(value, escape=_LIKE_ESCAPE)
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    raise _invalid(f"Operator '{op}' cannot be used with string values")


def compare_number(column: Any, op: str, value: Any) -> sa.ColumnElement[bool]:
    """A comparison on a possibly NULL integer column: NULL never matches (not even ``!=``)."""
    operators = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    if op not in operators:
        raise _invalid(f"Operator '{op}' cannot be used with numeric values")
    if isinstance(value, float) and not math.isfinite(value):
        # No integer equals NaN or ±Inf; every integer is below +Inf and above -Inf.
        holds = op == "!=" or (not math.isnan(value) and op in (("<", "<=") if value > 0 else (">", ">=")))
        return column.is_not(None) if holds else sa.false()
    return sa.and_(column.is_not(None), operators[op](value))


def compare_metric(value_col: Any, class_col: Any, op: str, number: float) -> sa.ColumnElement[bool]:
    """IEEE comparison of a stored ``(value, value_class)`` with ``number``: NaN satisfies only ``!=``."""
    x_value, x_class = t.encode_value(float(number))
    if x_class == t.NAN:
        return sa.true() if op == "!=" else sa.false()
    equal = sa.and_(class_col == x_class, value_col == x_value)
    if op == "=":
        return equal
    if op == "!=":
        return sa.not_(equal)
    not_nan = class_col != t.NAN
    greater = sa.or_(class_col > x_class, sa.and_(class_col == x_class, value_col > x_value))
    less = sa.or_(class_col < x_class, sa.and_(class_col == x_class, value_col < x_value))
    if op == ">":
        return sa.and_(not_nan, greater)
    if op == ">=":
        return sa.and_(not_nan, sa.or_(greater, equal))
    if op == "<":
        return less
    if op == "<=":
        return sa.or_(less, equal)
    raise _invalid(f"Operator '{op}' cannot be used with metrics")


# --- runs ---------------------------------------------------------------------------------------------------------


def _key_value_exists(table: sa.Table, owner: Any, owner_column: str, comparison: Comparison) -> sa.ColumnElement[bool]:
    """``EXISTS`` over a key/value table (params, tags, experiment tags) for one comparison."""
    keyed = sa.select(sa.literal(1)).where(table.c[owner_column] == owner, table.c.key == comparison.identifier.key)
    if comparison.op == "IS NULL":
        return ~keyed.exists()
    if comparison.op == "IS NOT NULL":
        return keyed.exists()
    return keyed.where(compare_string(table.c.value, comparison.op, comparison.value)).exists()


def _metric_exists(comparison: Comparison) -> sa.ColumnElement[bool]:
    lm = t.latest_metrics
    value_name, class_name = _AGGREGATE_COLUMNS[comparison.identifier.aggregate]
    if comparison.op in ("IS NULL", "IS NOT NULL"):
        keyed = sa.select(sa.literal(1)).where(lm.c.run_pk == t.runs.c.id, lm.c.key == comparison.identifier.key)
        return keyed.exists() if comparison.op == "IS NOT NULL" else ~keyed.exists()
    if not isinstance(comparison.value, int | float):
        raise _invalid(f"Metric '{comparison.identifier.key}' must be compared with a number")
    return (
        sa.select(sa.literal(1))
        .where(
            lm.c.run_pk == t.runs.c.id,
            lm.c.key == comparison.identifier.key,
            compare_metric(lm.c[value_name], lm.c[class_name], comparison.op, float(comparison.value)),
        )
        .exists()
    )


def _dataset_exists(comparison: Comparison) -> sa.ColumnElement[bool]:
    """Any dataset input of the run satisfies the comparison (``context`` is the input tag)."""
    key = comparison.identifier.key
    query = (
        sa.select(sa.literal(1))
        .select_from(t.inputs.join(t.datasets, t.datasets.c.id == t.inputs.c.dataset_id))
        .where(t.inputs.c.run_pk == t.runs.c.id)
    )
    if key == "context":
        query = query.join(
            t.input_tags,
            sa.and_(
                t.input_tags.c.run_pk == t.inputs.c.run_pk,
                t.input_tags.c.dataset_id == t.inputs.c.dataset_id,
                t.input_tags.c.key == DATASET_CONTEXT_TAG,
            ),
        )
        column: Any = t.input_tags.c.value
    elif key in ("name", "digest"):
        column = t.datasets.c[key]
    else:
        raise _invalid(f"Invalid dataset key '{key}'")
    return query.where(compare_string(column, comparison.op, comparison.value)).exists()


def _run_comparison(comparison: Comparison) -> sa.ColumnElement[bool]:
    identifier = comparison.identifier
    if identifier.kind == "metric":
        return _metric_exists(comparison)
    if identifier.kind == "param":
        return _key_value_exists(t.params, t.runs.c.id, "run_pk", comparison)
    if identifier.kind == "tag":
        return _key_value_exists(t.tags, t.runs.c.id, "run_pk", comparison)
    if identifier.kind == "dataset":
        return _dataset_exists(comparison)
    return _attribute_comparison(_RUN_ATTRIBUTES, identifier, comparison, numeric=("start_time", "end_time"))


def _attribute_comparison(
    columns: dict[str, sa.Column[Any]], identifier: Identifier, comparison: Comparison, numeric: Sequence[str]
) -> sa.ColumnElement[bool]:
    column = columns.get(identifier.key)
    if column is None:
        raise _invalid(f"Invalid attribute key '{identifier.key}'")
    if comparison.op == "IS NULL":
        return column.is_(None)
    if comparison.op == "IS NOT NULL":
        return column.is_not(None)
    if identifier.key in numeric:
        return compare_number(column, comparison.op, comparison.value)
    return compare_string(column, comparison.op, comparison.value)


def _compile(expr: Expr, leaf: Any) -> sa.ColumnElement[bool]:
    if isinstance(expr, Comparison):
        return leaf(expr)
    if isinstance(expr, Not):
        return sa.not_(_compile(expr.child, leaf))
    children = [_compile(child, leaf) for child in expr.children]
    if isinstance(expr, And):
        return sa.and_(*children)
    if isinstance(expr, Or):
        return sa.or_(*children)
    raise TypeError(f"not a filter expression: {expr!r}")


def run_filter(expr: Expr | None) -> sa.ColumnElement[bool] | None:
    """WHERE clause over ``runs`` for a parsed run filter (``None`` for no filter)."""
    return None if expr is None else _compile(expr, _run_comparison)


@dataclass
class Ordering:
    """Joins and ORDER BY expressions for an order-by list."""

    joins: list[tuple[Any, sa.ColumnElement[bool]]] = field(default_factory=list)
    clauses: list[Any] = field(default_factory=list)

    def apply(self, query: sa.Select[Any], base: sa.Table) -> sa.Select[Any]:
        source: Any = base
        for target, on in self.joins:
            source = source.outerjoin(target, on)
        return query.select_from(source).order_by(*self.clauses)


def _direction(column: Any, ascending: bool) -> Any:
    return column.asc() if ascending else column.desc()


def _order_nullable(ordering: Ordering, column: Any, ascending: bool) -> None:
    ordering.clauses.append(column.is_(None))
    ordering.clauses.append(_direction(column, ascending))


def run_ordering(order: Sequence[OrderKey]) -> Ordering:
    ordering = Ordering()
    for index, key in enumerate(order):
        identifier = key.identifier
        if identifier.kind == "metric":
            lm = t.latest_metrics.alias(f"order_{index}")
            ordering.joins.append((lm, sa.and_(lm.c.run_pk == t.runs.c.id, lm.c.key == identifier.key)))
            value_name, class_name = _AGGREGATE_COLUMNS[identifier.aggregate]
            ordering.clauses += [
                lm.c.run_pk.is_(None),
                lm.c[class_name] == t.NAN,
                _direction(lm.c[class_name], key.ascending),
                _direction(lm.c[value_name], key.ascending),
            ]
        elif identifier.kind in ("param", "tag"):
            table = (t.params if identifier.kind == "param" else t.tags).alias(f"order_{index}")
            ordering.joins.append((table, sa.and_(table.c.run_pk == t.runs.c.id, table.c.key == identifier.key)))
            _order_nullable(ordering, table.c.value, key.ascending)
        elif identifier.kind == "attribute" and identifier.key in _RUN_ATTRIBUTES:
            column = _RUN_ATTRIBUTES[identifier.key]
            if column.nullable:
                _order_nullable(ordering, column, key.ascending)
            else:
                ordering.clauses.append(_direction(column, key.ascending))
        else:
            raise _invalid(f"Cannot order runs by {identifier.kind} '{identifier.key}'")
    return ordering


# --- experiments --------------------------------------------------------------------------------------------------


def _experiment_id_comparison(comparison: Comparison) -> sa.ColumnElement[bool]:
    """Experiment ids are integers shown as strings: equality and IN compare numbers, LIKE compares the text."""
    column = t.experiments.c.experiment_id
    op, value = comparison.op, comparison.value
    if op in ("LIKE", "ILIKE"):
        return compare_string(sa.cast(column, sa.String), op, value)
    values = [value] if op in ("=", "!=") else list(value or ())
    numbers = [int(v) for v in values if isinstance(v, str) and v.isdigit()]
    if op in ("=", "IN"):
        return column.in_(numbers) if numbers else sa.false()
    if op in ("!=", "NOT IN"):
        return column.not_in(numbers) if numbers else sa.true()
    raise _invalid(f"Operator '{op}' cannot be used with experiment_id")


def _experiment_comparison(comparison: Comparison) -> sa.ColumnElement[bool]:
    identifier = comparison.identifier
    if identifier.kind == "tag":
        return _key_value_exists(t.experiment_tags, t.experiments.c.experiment_id, "experiment_id", comparison)
    if identifier.kind != "attribute":
        raise _invalid(f"Cannot search experiments by {identifier.kind}s")
    if identifier.key == "experiment_id":
        return _experiment_id_comparison(comparison)
    return _attribute_comparison(
        _EXPERIMENT_ATTRIBUTES, identifier, comparison, numeric=("creation_time", "last_update_time")
    )


def experiment_filter(expr: Expr | None) -> sa.ColumnElement[bool] | None:
    return None if expr is None else _compile(expr, _experiment_comparison)


def experiment_ordering(order: Sequence[OrderKey]) -> Ordering:
    ordering = Ordering()
    for index, key in enumerate(order):
        identifier = key.identifier
        if identifier.kind == "tag":
            tag = t.experiment_tags.alias(f"order_{index}")
            on = sa.and_(tag.c.experiment_id == t.experiments.c.experiment_id, tag.c.key == identifier.key)
            ordering.joins.append((tag, on))
            _order_nullable(ordering, tag.c.value, key.ascending)
        elif identifier.kind == "attribute" and identifier.key in _EXPERIMENT_ATTRIBUTES:
            column = _EXPERIMENT_ATTRIBUTES[identifier.key]
            if column.nullable:
                _order_nullable(ordering, column, key.ascending)
            else:
                ordering.clauses.append(_direction(column, key.ascending))
        else:
            raise _invalid(f"Cannot order experiments by {identifier.kind} '{identifier.key}'")
    return ordering
