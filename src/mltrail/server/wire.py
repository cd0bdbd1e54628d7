"""MLflow's JSON wire format: request parsing against a small field schema, and response encoding.

Requests follow MLflow's protobuf JSON rules without protobuf: GET parameters come from the query string
(repeated keys for lists), other methods send a JSON object. Field names may be snake_case or camelCase
(both spellings of one field is an error), int64 values may be numbers or strings, enums names or numbers,
doubles also ``"NaN"``/``"Infinity"``/``"-Infinity"``. Unknown fields are ignored.

Responses: int64 as JSON numbers, non-finite doubles as strings, empty lists omitted, ``user_id: ""`` kept,
``inputs``/``outputs`` always present on runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from math import isfinite
from typing import Any, Literal

import orjson

from mltrail.entities import DatasetInput, Experiment, FileInfo, Metric, Run, RunInfo
from mltrail.errors import MltrailException

Kind = Literal["string", "int64", "int32", "double", "bool", "enum", "message"]

_INT_RANGES = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_API_DOCS_HINT = " See the API docs for more information about request parameters."

VIEW_TYPE = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
RUN_STATUS = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Kind = "string"
    repeated: bool = False
    required: bool = False
    #: enum names in protobuf number order (number = index + 1)
    choices: tuple[str, ...] = ()
    message: Message | None = None
    json_name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "json_name", _camel(self.name))


class Message:
    """The fields of one request (or nested) message."""

    __slots__ = ("fields",)

    def __init__(self, *fields: Field) -> None:
        self.fields = fields


def f(
    name: str,
    kind: Kind = "string",
    *,
    repeated: bool = False,
    required: bool = False,
    choices: tuple[str, ...] = (),
    message: Message | None = None,
) -> Field:
    """Shorthand for declaring request fields in the endpoint table."""
    return Field(name, kind, repeated, required, choices, message)


# --- errors -----------------------------------------------------------------------------------------


def missing(path: str) -> MltrailException:
    return MltrailException.invalid_parameter(f"Missing value for required parameter '{path}'.{_API_DOCS_HINT}")


def _invalid(path: str, value: object) -> MltrailException:
    try:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        shown = repr(value)
    return MltrailException.invalid_parameter(
        f"Invalid value {shown} for parameter '{path}' supplied:  Hint: Value was of type "
        f"'{type(value).__name__}'.{_API_DOCS_HINT}"
    )


# --- request parsing --------------------------------------------------------------------------------


def decode_json_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body; ``{}`` for an empty body. A JSON string holding a JSON object is
    decoded a second time (MLflow accepts that legacy double encoding). Bare ``NaN``/``Infinity`` literals,
    which Python's ``json.dumps`` produces, are accepted; strings that are not valid Unicode are not."""
    data = _loads(body)
    if isinstance(data, str):
        data = _loads(data.encode("utf-8", "surrogatepass"))
    if not isinstance(data, dict):
        raise MltrailException.invalid_parameter("The request body must be a JSON object")
    return data


def _loads(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:  # slow path: NaN literals, or text orjson refuses
        data = json.loads(body)
        orjson.dumps(data)  # refuses lone surrogates (``"\\ud800"``), which no store can encode
    except (ValueError, UnicodeDecodeError, orjson.JSONEncodeError):
        raise MltrailException.invalid_parameter("Malformed JSON request body") from None
    return data


def query_fields(message: Message, query: Any) -> dict[str, Any]:
    """The raw values of ``message``'s fields in a query-string multi-dict (``getlist``/``get``/``in``):
    lists for repeated fields, the first value otherwise."""
    raw: dict[str, Any] = {}
    for fld in message.fields:
        for name in {fld.name, fld.json_name}:
            if name in query:
                raw[name] = query.getlist(name) if fld.repeated else query.get(name)
    return raw


def parse(message: Message, raw: Mapping[str, Any], from_query: bool = False) -> dict[str, Any]:
    """Parse raw values against ``message``; returns only the fields present, as Python values.
    ``from_query``: values are query-string text (booleans spelled ``true``/``false``)."""
    return _parse_message(message, raw, "", from_query)


def _parse_message(message: Message, raw: Mapping[str, Any], prefix: str, from_query: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fld in message.fields:
        path = prefix + fld.name
        has_snake, has_camel = fld.name in raw, fld.json_name != fld.name and fld.json_name in raw
        if has_snake and has_camel:
            raise MltrailException.invalid_parameter(
                f"Request specifies both '{fld.name}' and '{fld.json_name}'; provide only one of them."
            )
        value = raw[fld.name] if has_snake else raw.get(fld.json_name)
        if value is None or (value == "" and fld.kind != "string"):
            if fld.required:
                raise missing(path)
            continue
        if fld.required and value == "":
            raise missing(path)
        if fld.repeated:
            if not isinstance(value, list):
                raise _invalid(path, value)
            out[fld.name] = [_parse_scalar(fld, item, f"{path}[{i}]", from_query) for i, item in enumerate(value)]
        else:
            out[fld.name] = _parse_scalar(fld, value, path, from_query)
    return out


def _parse_scalar(fld: Field, value: Any, path: str, from_query: bool) -> Any:
    parser = _SCALAR_PARSERS[fld.kind]
    return parser(fld, value, path, from_query)


def _parse_string(fld: Field, value: Any, path: str, from_query: bool) -> str:
    if not isinstance(value, str):
        raise _invalid(path, value)
    return value


def _parse_int(fld: Field, value: Any, path: str, from_query: bool) -> int:
    if isinstance(value, bool):
        raise _invalid(path, value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _invalid(path, value) from None
    if not isinstance(value, int):
        raise _invalid(path, value)
    low, high = _INT_RANGES[fld.kind]
    if not low <= value <= high:
        raise _invalid(path, value)
    return value


def _parse_double(fld: Field, value: Any, path: str, from_query: bool) -> float:
    if isinstance(value, bool):
        raise _invalid(path, value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        try:
            parsed = float(value)
        except ValueError:
            raise _invalid(path, value) from None
        if math.isfinite(parsed):
            return parsed
    raise _invalid(path, value)


def _parse_bool(fld: Field, value: Any, path: str, from_query: bool) -> bool:
    if isinstance(value, bool):
        return value
    if from_query and isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise MltrailException.invalid_parameter(f"Invalid boolean value: {value}, must be 'true' or 'false'.")
    raise _invalid(path, value)


def _parse_enum(fld: Field, value: Any, path: str, from_query: bool) -> str:
    if isinstance(value, str) and value in fld.choices:
        return value
    number: Any = value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= len(fld.choices):
        return fld.choices[number - 1]
    raise MltrailException.invalid_parameter(
        f"Invalid value {value!r} for parameter '{path}': expected one of {', '.join(fld.choices)}."
    )


def _parse_nested(fld: Field, value: Any, path: str, from_query: bool) -> dict[str, Any]:
    if not isinstance(value, dict) or fld.message is None:
        raise _invalid(path, value)
    return _parse_message(fld.message, value, f"{path}.", from_query)


_SCALAR_PARSERS: dict[str, Callable[[Field, Any, str, bool], Any]] = {
    "string": _parse_string,
    "int64": _parse_int,
    "int32": _parse_int,
    "double": _parse_double,
    "bool": _parse_bool,
    "enum": _parse_enum,
    "message": _parse_nested,
}


# --- response encoding ------------------------------------------------------------------------------


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def double(value: float) -> float | str:
    """A double as MLflow writes it: non-finite values become ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _key_values(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def _put_list(out: dict[str, Any], name: str, items: list[Any]) -> None:
    if items:
        out[name] = items


def experiment_json(exp: Experiment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": exp.lifecycle_stage,
    }
    if exp.last_update_time is not None:
        out["last_update_time"] = exp.last_update_time
    if exp.creation_time is not None:
        out["creation_time"] = exp.creation_time
    _put_list(out, "tags", _key_values(exp.tags))
    return out


def metric_json(metric: Metric, run_id: str | None = None) -> dict[str, Any]:
    value = metric.value
    out: dict[str, Any] = {
        "key": metric.key,
        "value": value if isfinite(value) else double(value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }
    # Written out rather than looped over: this runs for every point of a metric history.
    if metric.dataset_name is not None:
        out["dataset_name"] = metric.dataset_name
    if metric.dataset_digest is not None:
        out["dataset_digest"] = metric.dataset_digest
    if metric.model_id is not None:
        out["model_id"] = metric.model_id
    if run_id is not None:
        out["run_id"] = run_id
    return out


def run_info_json(info: RunInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_uuid": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "user_id": info.user_id or "",
        "status": str(info.status),
        "start_time": info.start_time,
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    out["artifact_uri"] = info.artifact_uri
    out["lifecycle_stage"] = info.lifecycle_stage
    out["run_id"] = info.run_id
    return out


def _dataset_input_json(item: DatasetInput) -> dict[str, Any]:
    ds = item.dataset
    dataset = {"name": ds.name, "digest": ds.digest, "source_type": ds.source_type, "source": ds.source}
    if ds.schema is not None:
        dataset["schema"] = ds.schema
    if ds.profile is not None:
        dataset["profile"] = ds.profile
    out: dict[str, Any] = {}
    _put_list(out, "tags", [{"key": t.key, "value": t.value} for t in item.tags])
    out["dataset"] = dataset
    return out


def run_json(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = {}
    _put_list(data, "metrics", [metric_json(m) for m in run.data.latest_metrics])
    _put_list(data, "params", _key_values(run.data.params))
    _put_list(data, "tags", _key_values(run.data.tags))
    inputs: dict[str, Any] = {}
    _put_list(inputs, "dataset_inputs", [_dataset_input_json(d) for d in run.inputs.dataset_inputs])
    _put_list(inputs, "model_inputs", [{"model_id": m.model_id} for m in run.inputs.model_inputs])
    outputs: dict[str, Any] = {}
    _put_list(outputs, "model_outputs", [{"model_id": m.model_id, "step": m.step} for m in run.outputs.model_outputs])
    return {"info": run_info_json(run.info), "data": data, "inputs": inputs, "outputs": outputs}


def file_info_json(info: FileInfo, path: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"path": info.path if path is None else path, "is_dir": info.is_dir}
    if info.file_size is not None and not info.is_dir:
        out["file_size"] = info.file_size
    return out


def paged(name: str, items: list[Any], token: str | None) -> dict[str, Any]:
    """A list response with an optional ``next_page_token``; the list is omitted when empty."""
    out: dict[str, Any] = {}
    _put_list(out, name, items)
    if token:
        out["next_page_token"] = token
    return out
