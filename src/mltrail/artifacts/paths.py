"""Checks for artifact paths that come from a client. Nothing a client sends may escape the artifact root."""

from __future__ import annotations

import posixpath
import re
import urllib.parse

from mltrail.errors import MltrailException

_DRIVE_RE = re.compile(r"^[a-zA-Z]:")
_MAX_DECODE_ROUNDS = 10


def _fully_unquoted(path: str) -> str:
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            return decoded
        path = decoded
    raise MltrailException.invalid_parameter("Invalid path")


def validate_path_is_safe(path: str) -> str:
    """Return ``path`` if it is a plain relative path; raise INVALID_PARAMETER_VALUE ``Invalid path`` for
    anything that could point elsewhere once decoded: ``..`` segments (also percent-encoded, any number of
    times), absolute paths, drive letters, backslashes, ``#``, ``;`` and NUL bytes."""
    decoded = _fully_unquoted(path)
    if (
        any(ch in decoded for ch in ("\\", "#", ";", "\x00"))
        or decoded.startswith("/")
        or _DRIVE_RE.match(decoded)
        or ".." in decoded.split("/")
        or posixpath.isabs(decoded)
    ):
        raise MltrailException.invalid_parameter("Invalid path")
    return path


def join_artifact_path(*parts: str | None) -> str:
    """Join relative artifact path parts with ``/``, skipping empty ones."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
