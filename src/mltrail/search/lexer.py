"""Tokenizer for filter strings and order-by clauses.

Token kinds:

- ``IDENT``: a dotted path such as ``metrics.loss``, ``tags.`my tag``` or ``status``. Each part is a
  :class:`Segment` remembering whether it was quoted, because the parser gives unquoted parts meaning
  (entity prefixes, the ``.min``/``.max`` metric aggregates) that quoted parts never have.
- ``STRING``: a ``'single'`` or ``"double"`` quoted literal. Inside it the quote character is escaped by
  doubling it (``'it''s'``); a backslash is an ordinary character (it only means something to ``LIKE``).
- ``NUMBER``: ``12``, ``-3.5``, ``.5``, ``1e-3`` (numeric literals only: ``nan``/``inf`` are not numbers).
- ``OP`` (``= != < <= > >=``), ``KEYWORD`` (``AND OR NOT IN IS NULL LIKE ILIKE ASC DESC``, any case),
  ``LPAREN``, ``RPAREN``, ``COMMA`` and a final ``EOF``.

A quoted literal followed directly by ``.`` and another part (``"metrics".acc``) is a path, not a string.
A lone quoted literal is a ``STRING``; the parser accepts it where an identifier is expected, which is how
``"run name" = 'x'`` works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["IDENT", "STRING", "NUMBER", "OP", "KEYWORD", "LPAREN", "RPAREN", "COMMA", "EOF"]

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "ASC", "DESC"})

_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: ``<>`` and ``==`` are lexed only so that the parser can point at them and name the right operator.
_OPERATORS = ("!=", "<=", ">=", "<>", "==", "=", "<", ">")
_QUOTES = "'\"`"
_PUNCTUATION: dict[str, TokenKind] = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}


class SearchSyntaxError(Exception):
    """A problem at character ``position`` of the text being parsed; the parser adds the text to the message."""

    def __init__(self, detail: str, position: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.position = position


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    quoted: bool
    position: int


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    #: The token as written (for messages); for ``KEYWORD`` the upper-cased keyword.
    text: str
    position: int
    #: ``IDENT`` only: the dotted parts.
    segments: tuple[Segment, ...] = ()
    #: ``STRING`` only: the unescaped content.
    value: str = ""


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``EOF`` token. Raises :class:`SearchSyntaxError`."""
    nul = text.find("\x00")
    if nul >= 0:
        raise SearchSyntaxError("unexpected NUL character", nul)
    tokens: list[Token] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            tokens.append(Token("EOF", "end of input", end))
            return tokens
        token, pos = _next_token(text, pos)
        tokens.append(token)


def _next_token(text: str, pos: int) -> tuple[Token, int]:
    char = text[pos]
    if char in _PUNCTUATION:
        return Token(_PUNCTUATION[char], char, pos), pos + 1
    for op in _OPERATORS:
        if text.startswith(op, pos):
            return Token("OP", op, pos), pos + len(op)
    if char == "-" or char == "." or char.isdigit():
        number = _NUMBER.match(text, pos)
        if number is None:
            raise SearchSyntaxError(f"unexpected character '{char}'", pos)
        stop = number.end()
        if stop < len(text) and (text[stop].isalnum() or text[stop] in "_."):
            bad = _WORD.match(text, pos) or number
            raise SearchSyntaxError(f"malformed number '{text[pos : max(bad.end(), stop + 1)]}'", pos)
        return Token("NUMBER", number.group(), pos), stop
    if char in _QUOTES or _WORD.match(text, pos):
        return _path_or_string(text, pos)
    raise SearchSyntaxError(f"unexpected character '{char}'", pos)


def _path_or_string(text: str, start: int) -> tuple[Token, int]:
    first, pos = _segment(text, start)
    segments = [first]
    while pos < len(text) and text[pos] == ".":
        if pos + 1 >= len(text) or not (text[pos + 1] in _QUOTES or _WORD.match(text, pos + 1)):
            raise SearchSyntaxError(f"expected a key after '{text[start : pos + 1]}'", pos)
        segment, pos = _segment(text, pos + 1)
        segments.append(segment)
    written = text[start:pos]
    if len(segments) == 1 and first.quoted and text[start] in "'\"":
        return Token("STRING", written, start, value=first.text), pos
    if len(segments) == 1 and not first.quoted and first.text.upper() in KEYWORDS:
        return Token("KEYWORD", first.text.upper(), start), pos
    return Token("IDENT", written, start, segments=tuple(segments)), pos


def _segment(text: str, pos: int) -> tuple[Segment, int]:
    quote = text[pos]
    if quote not in _QUOTES:
        word = _WORD.match(text, pos)
        assert word is not None  # callers check that a word or a quote starts here
        return Segment(word.group(), False, pos), word.end()
    parts: list[str] = []
    i = pos + 1
    while True:
        close = text.find(quote, i)
        if close < 0:
            raise SearchSyntaxError(f"unterminated quoted text {text[pos:]}", pos)
        parts.append(text[i:close])
        if text.startswith(quote, close + 1):  # doubled quote = one literal quote
            parts.append(quote)
            i = close + 2
            continue
        return Segment("".join(parts), True, pos), close + 1
