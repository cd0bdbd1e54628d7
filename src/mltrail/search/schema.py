"""What may be searched: entity prefixes, attribute names and aliases, and the operators each kind allows.

Runs and experiments share the grammar; a :class:`SearchSchema` holds what differs between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mltrail.search.ast import (
    EXPERIMENT_NUMERIC_ATTRIBUTES,
    EXPERIMENT_STRING_ATTRIBUTES,
    RUN_NUMERIC_ATTRIBUTES,
    RUN_STRING_ATTRIBUTES,
    Identifier,
    IdentifierKind,
    Operator,
)

#: Entity prefixes (as written before the first dot) and the kind each names.
_PREFIXES: dict[str, IdentifierKind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}

_NUMERIC_OPS: tuple[Operator, ...] = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS: tuple[Operator, ...] = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_KEY_VALUE_OPS: tuple[Operator, ...] = (*_STRING_OPS, "IS NULL", "IS NOT NULL")


@dataclass(frozen=True)
class SearchSchema:
    """The searchable surface of one entity type (runs or experiments)."""

    entity: str
    kinds: frozenset[IdentifierKind]
    prefixes: frozenset[str]
    string_attributes: tuple[str, ...]
    numeric_attributes: tuple[str, ...]
    #: Alternative spellings of attributes, mapped to the canonical key.
    attribute_aliases: dict[str, str]
    #: Attributes whose values are ids: an unquoted integer is accepted and read as its text.
    id_attributes: frozenset[str] = frozenset()

    def kind_for_prefix(self, prefix: str) -> IdentifierKind | None:
        kind = _PREFIXES.get(prefix.lower())
        return kind if kind is not None and prefix.lower() in self.prefixes else None

    def canonical_attribute(self, key: str) -> str | None:
        key = self.attribute_aliases.get(key, key)
        return key if key in self.string_attributes or key in self.numeric_attributes else None

    def attribute_names(self) -> tuple[str, ...]:
        return (*self.string_attributes, *self.numeric_attributes)

    def is_numeric(self, identifier: Identifier) -> bool:
        """True for identifiers compared with numbers (metrics and numeric attributes)."""
        if identifier.kind == "metric":
            return True
        return identifier.kind == "attribute" and identifier.key in self.numeric_attributes

    def operators(self, identifier: Identifier) -> tuple[Operator, ...]:
        if self.is_numeric(identifier):
            return _NUMERIC_OPS
        if identifier.kind in ("param", "tag"):
            return _KEY_VALUE_OPS
        return _STRING_OPS


RUNS = SearchSchema(
    entity="run",
    kinds=frozenset({"metric", "param", "tag", "attribute", "dataset"}),
    prefixes=frozenset(_PREFIXES),
    string_attributes=RUN_STRING_ATTRIBUTES,
    numeric_attributes=RUN_NUMERIC_ATTRIBUTES,
    attribute_aliases={
        "created": "start_time",
        "Created": "start_time",
        "run name": "run_name",
        "Run name": "run_name",
        "Run Name": "run_name",
        "run_uuid": "run_id",
    },
)

EXPERIMENTS = SearchSchema(
    entity="experiment",
    kinds=frozenset({"tag", "attribute"}),
    prefixes=frozenset(p for p, kind in _PREFIXES.items() if kind in ("tag", "attribute") and p != "run"),
    string_attributes=EXPERIMENT_STRING_ATTRIBUTES,
    numeric_attributes=EXPERIMENT_NUMERIC_ATTRIBUTES,
    attribute_aliases={},
    id_attributes=frozenset({"experiment_id"}),
)


def kind_for_any_prefix(prefix: str) -> IdentifierKind | None:
    """The kind a prefix names in any schema (to tell "unknown prefix" from "not allowed here")."""
    return _PREFIXES.get(prefix.lower())


__all__ = ["EXPERIMENTS", "RUNS", "SearchSchema", "kind_for_any_prefix"]
