"""meta.yaml reading and writing, in exactly the form MLflow's file store uses.

MLflow writes ``yaml.safe_dump(data, default_flow_style=False, allow_unicode=True, sort_keys=True)``; we write
the same bytes. Reading is on the hot path of every search (one meta.yaml per run), so the common flat
``key: value`` form is parsed by hand; anything the fast path is not certain about goes to PyYAML.
"""

from __future__ import annotations

import re
from typing import Any

from mltrail.errors import ErrorCode, MltrailException

_INT_RE = re.compile(r"^(?:0|-?[1-9][0-9]*)$")
#: Plain scalars the fast path may take as strings: start with a letter or '/', no quote/comment characters.
_PLAIN_RE = re.compile(r"^[A-Za-z/][^#'\"\t\r\n\\]*$")
#: Hex ids that start with a digit (run ids): never an int/float/timestamp for PyYAML without '.', ':', '-', 'x'.
_HEX_ID_RE = re.compile(r"^[0-9][0-9a-f]*[a-f][0-9a-f]*$")
#: Words PyYAML (YAML 1.1) resolves to booleans or null.
_SPECIAL_WORDS = frozenset(
    w for base in ("yes", "no", "true", "false", "on", "off", "null") for w in (base, base.capitalize(), base.upper())
)
_CONSTANTS: dict[str, Any] = {"null": None, "~": None, "": None, "''": ""}


class _Fallback(Exception):
    pass


class MalformedMeta(MltrailException):
    """A meta.yaml PyYAML cannot parse (INTERNAL_ERROR); listings skip such folders, as MLflow does."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ErrorCode.INTERNAL_ERROR)


def _scalar(text: str) -> Any:
    first = text[:1]
    if first == "'":
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != "'" or "'" in inner.replace("''", ""):
            raise _Fallback
        return inner.replace("''", "'")
    if first.isdigit() or first == "-":
        if _INT_RE.match(text):
            return int(text)
        if _HEX_ID_RE.match(text) and not text.startswith("0b"):
            return text
        raise _Fallback
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    if text == "[]":
        return []
    if text == "{}":
        return {}
    if _PLAIN_RE.match(text) and ": " not in text and not text.endswith((":", " ")) and text not in _SPECIAL_WORDS:
        return text
    raise _Fallback


def _load_flat(text: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for line in text.split("\n"):
        key, separator, raw = line.partition(": ")
        if not separator:
            if not line:
                continue
            if line[-1] != ":":
                raise _Fallback
            key, raw = line[:-1], ""
        if not key.isidentifier() or not key.isascii():
            raise _Fallback
        data[key] = _scalar(raw)
    return data


def load_meta(text: str) -> dict[str, Any]:
    """Parse a meta.yaml document into a dict ({} for an empty file)."""
    try:
        return _load_flat(text)
    except _Fallback:
        pass
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)  # a safe loader
    except yaml.YAMLError as exc:
        raise MalformedMeta(f"Malformed meta.yaml: {exc}") from None
    return data if isinstance(data, dict) else {}


def dump_meta(data: dict[str, Any]) -> bytes:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(data, Dumper=dumper, default_flow_style=False, allow_unicode=True, sort_keys=True)
    return text.encode("utf-8")
