"""Recursive-descent parser: filter strings and order-by clauses to :mod:`mltrail.search.ast` trees.

Grammar (keywords in any case; NOT binds tighter than AND, AND tighter than OR)::

    filter     := or_expr EOF
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := not_expr ("AND" not_expr)*
    not_expr   := "NOT" not_expr | "(" or_expr ")" | comparison
    comparison := identifier ( ("=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE") value
                             | ("IN" | "NOT" "IN") "(" value ("," value)* ")"
                             | "IS" ["NOT"] "NULL" )
    order_key  := identifier ["ASC" | "DESC"] EOF

MLflow accepts only ``comparison ("AND" comparison)*``; OR, NOT, parentheses, ``IN`` on params/tags/every
string attribute and the metric aggregates are mltrail extensions, so every MLflow filter parses the same here.

Identifiers are ``<prefix>.<key>`` or a bare attribute name. Prefixes: ``metrics``/``metric``,
``params``/``param``/``parameter``/``parameters``, ``tags``/``tag``, ``attributes``/``attribute``/``attr``/``run``,
``datasets``/``dataset``. The key is everything after the prefix, dots included (``tags.mlflow.runName`` is the tag
``mlflow.runName``); keys with other characters are quoted with backticks or quotes (``tags.`my tag```,
``metrics."a-b"``; a quote inside is doubled).

Metric aggregates: ``metrics.<key>.min`` and ``metrics.<key>.max`` use the smallest / largest value ever logged for
the key instead of the latest one. A metric key may itself contain dots, so the rule is: a trailing ``.min`` or
``.max`` written *unquoted* after an unquoted or quoted metric key is the aggregate (``metrics.train.loss.min`` is
the minimum of ``train.loss``). To search a metric literally named ``x.min``, quote the key: ``metrics.`x.min```.

Values: strings are single- or double-quoted; metrics and numeric attributes (``start_time``, ``end_time``,
``creation_time``, ``last_update_time``) take numeric literals (ints, decimals, exponents, negatives; no
``nan``/``inf``), read as ``float`` for metrics and as ``int`` for integer literals on numeric attributes;
``experiment_id`` also accepts an unquoted integer (``experiment_id IN (1, 2)``). In
``LIKE``/``ILIKE`` patterns ``%`` matches any run of characters, ``_`` one character, and a backslash makes the
next character literal (``'100\\%'``); a pattern may not end with a lone backslash.

Errors raise :class:`~mltrail.errors.MltrailException` with ``INVALID_PARAMETER_VALUE`` and a message naming the
offending token and its 0-based character position.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mltrail.errors import MltrailException
from mltrail.search.ast import (
    DATASET_KEYS,
    And,
    Comparison,
    Expr,
    Identifier,
    MetricAggregate,
    Not,
    Operator,
    Or,
    OrderKey,
)
from mltrail.search.lexer import SearchSyntaxError, Segment, Token, tokenize
from mltrail.search.schema import EXPERIMENTS, RUNS, SearchSchema, kind_for_any_prefix

#: Deepest nesting of parentheses / NOT accepted (protects the recursive parser and both back ends).
MAX_NESTING = 100

_AGGREGATES: dict[str, MetricAggregate] = {"min": "min", "max": "max"}
_MISSPELLED_OPERATORS = {"<>": "!=", "==": "="}
_INTEGER = re.compile(r"-?\d+")
_KIND_NAMES = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes", "dataset": "datasets"}


def parse_run_filter(s: str | None) -> Expr | None:
    """Parse a run filter string; ``None`` or blank means no filter."""
    return _parse_filter(s, RUNS)


def parse_experiment_filter(s: str | None) -> Expr | None:
    """Parse an experiment filter string; ``None`` or blank means no filter."""
    return _parse_filter(s, EXPERIMENTS)


def parse_run_order_by(order_by: Sequence[str] | None) -> list[OrderKey]:
    """Parse run order-by clauses and append MLflow's tie-breakers ``start_time DESC`` then ``run_id ASC``."""
    keys = _parse_order_by(order_by, RUNS)
    return _with_tie_breakers(keys, ("start_time", False), ("run_id", True))


def parse_experiment_order_by(order_by: Sequence[str] | None) -> list[OrderKey]:
    """Parse experiment order-by clauses and append ``creation_time DESC`` then ``experiment_id ASC``."""
    keys = _parse_order_by(order_by, EXPERIMENTS)
    return _with_tie_breakers(keys, ("creation_time", False), ("experiment_id", True))


def _with_tie_breakers(keys: list[OrderKey], *tie_breakers: tuple[str, bool]) -> list[OrderKey]:
    for attribute, ascending in tie_breakers:
        identifier = Identifier("attribute", attribute)
        if all(key.identifier != identifier for key in keys):
            keys.append(OrderKey(identifier, ascending))
    return keys


def _parse_filter(text: str | None, schema: SearchSchema) -> Expr | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise MltrailException.invalid_parameter(f"Invalid filter string {text!r}: expected a string")
    if not text.strip():
        return None
    try:
        return _Parser(text, schema).filter()
    except SearchSyntaxError as error:
        raise MltrailException.invalid_parameter(
            f"Invalid filter string '{text}': {error.detail} at position {error.position}"
        ) from None


def _parse_order_by(order_by: Sequence[str] | None, schema: SearchSchema) -> list[OrderKey]:
    if order_by is None:
        return []
    if isinstance(order_by, str):
        order_by = [order_by]
    keys: list[OrderKey] = []
    first_clause: dict[Identifier, str] = {}
    for clause in order_by:
        if not isinstance(clause, str) or not clause.strip():
            raise MltrailException.invalid_parameter(
                f"Invalid order_by clause {clause!r}: expected '<key> [ASC|DESC]', such as 'metrics.acc DESC'"
            )
        try:
            key = _Parser(clause, schema).order_key()
        except SearchSyntaxError as error:
            raise MltrailException.invalid_parameter(
                f"Invalid order_by clause '{clause}': {error.detail} at position {error.position}"
            ) from None
        if key.identifier in first_clause:
            raise MltrailException.invalid_parameter(
                f"Invalid order_by clause '{clause}': '{first_clause[key.identifier]}' already orders by the same key"
            )
        first_clause[key.identifier] = clause
        keys.append(key)
    return keys


class _Parser:
    def __init__(self, text: str, schema: SearchSchema) -> None:
        self.schema = schema
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    # -- token helpers -----------------------------------------------------------------------------------------
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "EOF":
            self.index += 1
        return token

    def at_keyword(self, *keywords: str) -> bool:
        return self.current.kind == "KEYWORD" and self.current.text in keywords

    def expected(self, what: str) -> SearchSyntaxError:
        """An error saying ``what`` was expected where the current token stands."""
        token = self.current
        previous = self.tokens[self.index - 1] if self.index else None
        after = f" after '{previous.text}'" if previous is not None else ""
        if token.kind == "EOF" and previous is not None:
            return SearchSyntaxError(f"expected {what}{after}", previous.position)
        return SearchSyntaxError(f"expected {what}{after} but found '{token.text}'", token.position)

    # -- filters -----------------------------------------------------------------------------------------------
    def filter(self) -> Expr:
        expr = self.or_expr()
        if self.current.kind == "RPAREN":
            raise SearchSyntaxError("unmatched ')'", self.current.position)
        if self.current.kind != "EOF":
            raise self.expected("AND, OR or the end of the filter")
        return expr

    def or_expr(self) -> Expr:
        children = [self.and_expr()]
        while self.at_keyword("OR"):
            self.advance()
            children.append(self.and_expr())
        return _flatten(Or, children)

    def and_expr(self) -> Expr:
        children = [self.not_expr()]
        while self.at_keyword("AND"):
            self.advance()
            children.append(self.not_expr())
        return _flatten(And, children)

    def not_expr(self) -> Expr:
        if not (self.at_keyword("NOT") or self.current.kind == "LPAREN"):
            return self.comparison()
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise SearchSyntaxError(f"nesting deeper than {MAX_NESTING} levels", self.current.position)
        opener = self.advance()
        if opener.kind == "KEYWORD":
            expr: Expr = Not(self.not_expr())
        else:
            expr = self.or_expr()
            if self.current.kind == "EOF":
                raise SearchSyntaxError("unclosed '('", opener.position)
            if self.current.kind != "RPAREN":
                raise self.expected("')'")
            self.advance()
        self.depth -= 1
        return expr

    def comparison(self) -> Comparison:
        if self.current.kind not in ("IDENT", "STRING"):
            raise self.expected("a search key such as metrics.acc, params.lr or tags.team")
        identifier = self.identifier(self.advance())
        op_token = self.current
        op = self.operator()
        allowed = self.schema.operators(identifier)
        if op not in allowed:
            raise SearchSyntaxError(
                f"operator '{op}' cannot be used with {_KIND_NAMES[identifier.kind]}"
                + (f" key '{identifier.key}'" if identifier.kind in ("attribute", "dataset") else "")
                + f" (allowed: {', '.join(allowed)})",
                op_token.position,
            )
        if op in ("IS NULL", "IS NOT NULL"):
            return Comparison(identifier, op, None)
        if op in ("IN", "NOT IN"):
            return Comparison(identifier, op, self.value_list(identifier))
        value = self.value(identifier)
        if op in ("LIKE", "ILIKE") and isinstance(value, str) and _ends_with_lone_escape(value):
            raise SearchSyntaxError(
                f"{op} pattern '{value}' ends with a lone escape character '\\'", self.tokens[self.index - 1].position
            )
        return Comparison(identifier, op, value)

    def operator(self) -> Operator:
        token = self.current
        if token.kind == "OP":
            if token.text in _MISSPELLED_OPERATORS:
                raise SearchSyntaxError(
                    f"unknown operator '{token.text}' (use '{_MISSPELLED_OPERATORS[token.text]}')", token.position
                )
            self.advance()
            return token.text  # type: ignore[return-value]
        if token.kind == "KEYWORD" and token.text in ("LIKE", "ILIKE", "IN"):
            self.advance()
            return token.text  # type: ignore[return-value]
        if self.at_keyword("NOT"):
            self.advance()
            if not self.at_keyword("IN"):
                raise self.expected("IN")
            self.advance()
            return "NOT IN"
        if self.at_keyword("IS"):
            self.advance()
            negated = self.at_keyword("NOT")
            if negated:
                self.advance()
            if not self.at_keyword("NULL"):
                raise self.expected("NULL")
            self.advance()
            return "IS NOT NULL" if negated else "IS NULL"
        raise self.expected("a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS [NOT] NULL)")

    def value(self, identifier: Identifier) -> float | str:
        token = self.current
        if self.schema.is_numeric(identifier):
            if token.kind != "NUMBER":
                raise self.expected(f"a number for {_KIND_NAMES[identifier.kind]} key '{identifier.key}'")
            self.advance()
            if identifier.kind == "attribute" and _INTEGER.fullmatch(token.text):
                return int(token.text)
            return float(token.text)
        return self.string_value(identifier)

    def string_value(self, identifier: Identifier) -> str:
        token = self.current
        if token.kind == "STRING":
            self.advance()
            return token.value
        if token.kind == "NUMBER" and identifier.key in self.schema.id_attributes and _INTEGER.fullmatch(token.text):
            self.advance()
            return token.text
        raise self.expected("a quoted string value (such as 'abc')")

    def value_list(self, identifier: Identifier) -> tuple[str, ...]:
        if self.current.kind != "LPAREN":
            raise self.expected("a parenthesised list of values such as ('a', 'b')")
        self.advance()
        values = [self.string_value(identifier)]
        while self.current.kind == "COMMA":
            self.advance()
            values.append(self.string_value(identifier))
        if self.current.kind != "RPAREN":
            raise self.expected("',' or ')'")
        self.advance()
        return tuple(values)

    # -- identifiers -------------------------------------------------------------------------------------------
    def identifier(self, token: Token) -> Identifier:
        segments = token.segments or (Segment(token.value, True, token.position),)
        if len(segments) == 1:
            return Identifier("attribute", self.attribute_key(segments[0].text, segments[0].position))
        prefix, *key_segments = segments
        kind = self.schema.kind_for_prefix(prefix.text)
        if kind is None:
            known = kind_for_any_prefix(prefix.text)
            if known is not None and known not in self.schema.kinds:
                raise SearchSyntaxError(
                    f"{_KIND_NAMES[known]} cannot be used to search {self.schema.entity}s "
                    f"(use {' or '.join(_KIND_NAMES[k] for k in sorted(self.schema.kinds))})",
                    prefix.position,
                )
            raise SearchSyntaxError(
                f"invalid entity type '{prefix.text}' (valid: "
                f"{', '.join(sorted(_KIND_NAMES[k] for k in self.schema.kinds))})",
                prefix.position,
            )
        aggregate: MetricAggregate = "latest"
        last = key_segments[-1]
        if kind == "metric" and len(key_segments) > 1 and not last.quoted and last.text in _AGGREGATES:
            aggregate = _AGGREGATES[last.text]
            key_segments.pop()
        key = ".".join(segment.text for segment in key_segments)
        position = key_segments[0].position
        if not key:
            raise SearchSyntaxError(f"empty key after '{prefix.text}.'", position)
        if kind == "attribute":
            key = self.attribute_key(key, position)
        elif kind == "dataset" and key not in DATASET_KEYS:
            raise SearchSyntaxError(f"invalid dataset key '{key}' (valid: {', '.join(DATASET_KEYS)})", position)
        return Identifier(kind, key, aggregate)

    def attribute_key(self, key: str, position: int) -> str:
        canonical = self.schema.canonical_attribute(key)
        if canonical is None:
            hint = " (prefix metrics., params. or tags. to search those)" if self.schema is RUNS else ""
            raise SearchSyntaxError(
                f"invalid attribute key '{key}'{hint}; valid attributes: " + ", ".join(self.schema.attribute_names()),
                position,
            )
        return canonical

    # -- order by ----------------------------------------------------------------------------------------------
    def order_key(self) -> OrderKey:
        if self.current.kind not in ("IDENT", "STRING"):
            raise self.expected("an order key such as metrics.acc or start_time")
        start = self.current
        identifier = self.identifier(self.advance())
        if identifier.kind == "dataset":
            raise SearchSyntaxError("datasets cannot be used to order results", start.position)
        ascending = True
        if self.at_keyword("ASC", "DESC"):
            ascending = self.advance().text == "ASC"
        if self.current.kind != "EOF":
            raise self.expected("ASC, DESC or the end of the clause")
        return OrderKey(identifier, ascending)


def _flatten(node: type[And] | type[Or], children: list[Expr]) -> Expr:
    """One child → itself; nested nodes of the same type are merged (``a AND (b AND c)`` → one And)."""
    if len(children) == 1:
        return children[0]
    flat: list[Expr] = []
    for child in children:
        flat.extend(child.children if isinstance(child, node) else (child,))
    return node(tuple(flat))


def _ends_with_lone_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1
