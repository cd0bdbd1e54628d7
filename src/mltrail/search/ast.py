"""The parsed form of a search filter and an order-by list.

One parser (``mltrail.search.parser``) produces these; two back ends consume them: the in-memory
evaluator (directory store) and the SQL compiler (SQL store). Keeping the tree small and explicit is what
lets both back ends agree on every query.

Semantics shared by both back ends (two-valued logic):
- A comparison on a metric/param/tag/dataset key that the run does not have is false, whatever the operator
  (so ``params.p != 'a'`` does not match runs without ``p``), except ``IS NULL`` which is true exactly then.
- ``Not(x)`` matches exactly the rows ``x`` does not match.
- Metric values compare as IEEE doubles: NaN satisfies only ``!=``.
- ``LIKE`` is case-sensitive, ``ILIKE`` case-insensitive, ``%`` and ``_`` wildcards; a backslash makes the next
  pattern character literal (``'100\\%'``, SQL ``ESCAPE '\\'``). The parser rejects patterns ending in a lone
  backslash.
- ``dataset`` comparisons hold when any of the run's dataset inputs satisfies them.
- Ordering puts NULL (and, for metrics, NaN before NULL) last in both directions; ``experiment_id`` orders
  numerically (ids are decimal strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

IdentifierKind = Literal["metric", "param", "tag", "attribute", "dataset"]
MetricAggregate = Literal["latest", "min", "max"]
Operator = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]

#: Canonical attribute keys of runs (aliases such as ``created`` or ``run name`` are resolved by the parser).
RUN_STRING_ATTRIBUTES = ("run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage")
RUN_NUMERIC_ATTRIBUTES = ("start_time", "end_time")
#: Canonical attribute keys of experiments.
EXPERIMENT_STRING_ATTRIBUTES = ("name", "experiment_id")
EXPERIMENT_NUMERIC_ATTRIBUTES = ("creation_time", "last_update_time")
#: Keys of dataset identifiers (``datasets.name``...); ``context`` is the input tag ``mlflow.data.context``.
DATASET_KEYS = ("name", "digest", "context")


@dataclass(frozen=True, slots=True)
class Identifier:
    kind: IdentifierKind
    key: str
    #: Only for metrics: which per-(run, key) summary to use. ``latest`` = value at max step, then timestamp,
    #: then value (MLflow's rule).
    aggregate: MetricAggregate = "latest"


@dataclass(frozen=True, slots=True)
class Comparison:
    identifier: Identifier
    op: Operator
    #: float for metrics; int (integer literal) or float for numeric attributes; str for strings;
    #: tuple[str, ...] for IN / NOT IN; None for IS [NOT] NULL.
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Expr


Expr = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderKey:
    identifier: Identifier
    ascending: bool = True
