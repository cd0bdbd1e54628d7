"""Page tokens: base64 of a small JSON object, compatible with MLflow's ``{"offset": N}`` tokens."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from mltrail.errors import MltrailException


def encode_page_token(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str | None) -> dict[str, Any]:
    """Decode a token into its payload; ``{}`` for no token. Bad tokens raise INVALID_PARAMETER_VALUE."""
    if not token:
        return {}
    try:
        raw = base64.b64decode(token, validate=False)
    except (binascii.Error, ValueError):
        raise MltrailException.invalid_parameter("Invalid page token, could not base64-decode") from None
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MltrailException.invalid_parameter("Invalid page token, decoded value is not valid JSON") from None
    if not isinstance(payload, dict):
        raise MltrailException.invalid_parameter("Invalid page token, decoded value is not a JSON object")
    return payload


def decode_offset(token: str | None) -> int:
    """The ``offset`` of a token (0 for none)."""
    payload = decode_page_token(token)
    offset = payload.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise MltrailException.invalid_parameter("Invalid page token, offset must be a non-negative integer")
    return offset


def offset_token(offset: int) -> str:
    return encode_page_token({"offset": offset})
