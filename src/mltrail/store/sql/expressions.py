"""SQL expression helpers shared by the write path's upserts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa


def lex_greater(left: Sequence[Any], right: Sequence[Any]) -> sa.ColumnElement[bool]:
    """SQL for ``tuple(left) > tuple(right)`` (expanded: row-value comparisons do not use indexes everywhere)."""
    clauses = []
    for i, (a, b) in enumerate(zip(left, right, strict=True)):
        clauses.append(sa.and_(*(x == y for x, y in zip(left[:i], right[:i], strict=True)), a > b))
    return sa.or_(*clauses)
