"""OpenAPI 3 description generated from the endpoint table (used by API fuzzing; no docs UI is served)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mltrail.server.routes import Endpoint
from mltrail.server.wire import Field, Message

_CONVERTER_RE = re.compile(r"\{(\w+):\w+\}")
_SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "int64": {"type": "integer", "format": "int64"},
    "int32": {"type": "integer", "format": "int32"},
    "double": {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]},
    "bool": {"type": "boolean"},
}


def _field_schema(fld: Field) -> dict[str, Any]:
    if fld.kind == "message" and fld.message is not None:
        item = _message_schema(fld.message)
    elif fld.kind == "enum":
        item = {"type": "string", "enum": list(fld.choices)}
    else:
        item = dict(_SCALARS[fld.kind])
    return {"type": "array", "items": item} if fld.repeated else item


def _message_schema(message: Message) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {fld.name: _field_schema(fld) for fld in message.fields},
    }
    required = [fld.name for fld in message.fields if fld.required]
    if required:
        schema["required"] = required
    return schema


def _operation(ep: Endpoint, path: str, path_params: set[str]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": ep.method.lower() + re.sub(r"\W+", "_", path),
        "responses": {"200": {"description": "OK"}, "default": {"description": "Error"}},
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in sorted(path_params)
    ]
    body_fields = [fld for fld in ep.request.fields if fld.name not in path_params]
    if ep.method == "GET" or ep.kind == "stream":
        params += [
            {"name": fld.name, "in": "query", "required": fld.required, "schema": _field_schema(fld)}
            for fld in body_fields
            if fld.kind != "message"
        ]
    elif body_fields:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _message_schema(Message(*body_fields))}},
        }
    if ep.kind == "stream" and ep.method == "PUT":
        op["requestBody"] = {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    if params:
        op["parameters"] = params
    return op


def schema(endpoints: Sequence[Endpoint], version: str, static_prefix: str = "") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        for path in ep.paths(static_prefix):
            path_params = set(_CONVERTER_RE.findall(path))
            plain = _CONVERTER_RE.sub(r"{\1}", path)
            paths.setdefault(plain, {})[ep.method.lower()] = _operation(ep, plain, path_params)
    return {"openapi": "3.0.3", "info": {"title": "mltrail tracking server", "version": version}, "paths": paths}
