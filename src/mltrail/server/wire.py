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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from math import isfinite
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote_plus

import orjson

from mltrail.entities import DatasetInput, Experiment, FileInfo, Metric, Run, RunInfo, RunInputs, RunOutputs
from mltrail.errors import MltrailException

if TYPE_CHECKING:
    from mltrail.store.sql.loaders import RunRows

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
    #: ``json_name`` when it differs from ``name``, else None (the camelCase spelling to look for too)
    alias: str | None = field(init=False)
    #: the type of the values a single scalar field takes as they are (integers: within ``bounds``), else None
    plain: type | None = field(init=False)
    #: the range of an integer field
    bounds: tuple[int, int] | None = field(init=False)

    def __post_init__(self) -> None:
        json_name = _camel(self.name)
        object.__setattr__(self, "json_name", json_name)
        object.__setattr__(self, "alias", json_name if json_name != self.name else None)
        object.__setattr__(self, "plain", None if self.repeated else _PLAIN_TYPES.get(self.kind))
        object.__setattr__(self, "bounds", _INT_RANGES.get(self.kind))


_PLAIN_TYPES: dict[str, type] = {"string": str, "double": float, "bool": bool, "int64": int, "int32": int}


class Message:
    """The fields of one request (or nested) message."""

    __slots__ = ("aliases", "by_name", "fields", "required")

    def __init__(self, *fields: Field) -> None:
        self.fields = fields
        self.by_name = {fld.name: fld for fld in fields}
        self.aliases = frozenset(fld.alias for fld in fields if fld.alias is not None)
        self.required = tuple(fld.name for fld in fields if fld.required)


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


def query_fields(message: Message, query_string: bytes) -> dict[str, Any]:
    """The raw values of ``message``'s fields in a URL query string (``a=1&b=x&b=y``): lists for repeated fields,
    the last value otherwise."""
    if not query_string:
        return {}
    found: dict[str, list[str]] = {}
    for name, value in _query_pairs(query_string.decode("latin-1")):
        found.setdefault(name, []).append(value)
    raw: dict[str, Any] = {}
    for fld in message.fields:
        for name in (fld.name, fld.alias):
            values = found.get(name) if name is not None else None
            if values is not None:
                raw[name] = values if fld.repeated else values[-1]
    return raw


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(query, keep_blank_values=True)``, without its work on the parts that hold no
    escapes (all of them, in the requests of MLflow's client)."""
    pairs = []
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:
            name, value = unquote_plus(name), unquote_plus(value)
        pairs.append((name, value))
    return pairs


def parse(message: Message, raw: Mapping[str, Any], from_query: bool = False) -> dict[str, Any]:
    """Parse raw values against ``message``; returns only the fields present, as Python values.
    ``from_query``: values are query-string text (booleans spelled ``true``/``false``)."""
    return _parse_message(message, raw, (), from_query)


#: Where a value sits in the request, e.g. ``("metrics", 3, "value")`` for ``metrics[3].value``; the text is
#: only made for an error message (a log-batch request holds thousands of values).
Where = tuple[str | int, ...]


def _path(where: Where) -> str:
    text = ""
    for part in where:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class _Rejected(Exception):
    """A value parser refusing a value; the caller, which knows where the value sits, makes the error from it."""

    def __init__(self, error: Callable[[str], MltrailException]) -> None:
        super().__init__()
        self.error = error


def _reject(value: Any) -> _Rejected:
    return _Rejected(lambda path: _invalid(path, value))


def _parse_message(message: Message, raw: Mapping[str, Any], where: Where, from_query: bool) -> dict[str, Any]:
    plain = _parse_plain(message, raw)
    return plain if plain is not None else _parse_fields(message, raw, where, from_query)


def _parse_fields(message: Message, raw: Mapping[str, Any], where: Where, from_query: bool) -> dict[str, Any]:
    """Field by field, in their order: the first error found is the first field's."""
    out: dict[str, Any] = {}
    for fld in message.fields:
        name, alias = fld.name, fld.alias
        if name in raw:
            if alias is not None and alias in raw:
                raise MltrailException.invalid_parameter(
                    f"Request specifies both '{name}' and '{alias}'; provide only one of them."
                )
            value = raw[name]
        else:
            value = raw.get(alias) if alias is not None else None
        if value is None or value == "":
            if fld.required:
                raise missing(_path((*where, name)))
            if value is None or fld.kind != "string":
                continue
        if fld.repeated:
            out[name] = _parse_list(fld, value, (*where, name), from_query)
        elif _is_plain(value, fld.plain, fld.bounds):
            out[name] = value
        elif fld.kind == "message":
            out[name] = _parse_nested(fld, value, (*where, name), from_query)
        else:
            try:
                out[name] = _SCALAR_PARSERS[fld.kind](fld, value, from_query)
            except _Rejected as rejected:
                raise rejected.error(_path((*where, name))) from None
    return out


def _parse_plain(message: Message, raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The common case in one pass over ``raw``: every value has its field's type as it is, under the field's
    snake_case name, nothing empty, nothing required missing (what MLflow's client sends, e.g. each metric of a
    log-batch request). None when anything needs the field-by-field parse, which then also finds the first error."""
    out: dict[str, Any] = {}
    by_name = message.by_name
    for key, value in raw.items():
        fld = by_name.get(key)
        if fld is None:
            if key in message.aliases:
                return None
            continue  # unknown fields are ignored
        kind = fld.plain
        if type(value) is not kind:  # also for the fields that have no plain type
            return None
        bounds = fld.bounds
        if bounds is not None:
            if not bounds[0] <= value <= bounds[1]:
                return None
        elif kind is str and not value:
            return None
        out[key] = value
    for name in message.required:
        if name not in out:
            return None
    return out


def _parse_list(fld: Field, values: Any, where: Where, from_query: bool) -> list[Any]:
    if not isinstance(values, list):
        raise _invalid(_path(where), values)
    out: list[Any] = []
    if fld.kind == "message":
        message = fld.message
        if message is not None and _all_plain(message, values):
            return values
        for item in values:
            if not isinstance(item, dict) or message is None:
                raise _invalid(_path((*where, len(out))), item)
            plain = _parse_plain(message, item)  # here rather than in _parse_message: one call per item
            out.append(plain if plain is not None else _parse_fields(message, item, (*where, len(out)), from_query))
        return out
    plain, bounds, parser = _PLAIN_TYPES.get(fld.kind), fld.bounds, _SCALAR_PARSERS[fld.kind]
    for item in values:
        if _is_plain(item, plain, bounds):
            out.append(item)
            continue
        try:
            out.append(parser(fld, item, from_query))
        except _Rejected as rejected:
            raise rejected.error(_path((*where, len(out)))) from None
    return out


def _all_plain(message: Message, items: list[Any]) -> bool:
    """Whether every item is a dict that :func:`_parse_plain` would return unchanged, all with the same fields (a
    log-batch request's metrics, as clients send them). Checked a field at a time over all items, in C loops: a
    Python loop per item costs more than everything else the server does with a metric."""
    if len(items) < 2 or set(map(type, items)) != {dict}:
        return False
    shapes = set(map(tuple, items))
    if len(shapes) != 1:
        return False
    (shape,) = shapes
    by_name = message.by_name
    if any(name not in by_name for name in shape) or any(name not in shape for name in message.required):
        return False
    for name in shape:
        fld = by_name[name]
        column = list(map(itemgetter(name), items))
        if fld.plain is None or set(map(type, column)) != {fld.plain}:
            return False
        if fld.bounds is not None:
            if min(column) < fld.bounds[0] or max(column) > fld.bounds[1]:
                return False
        elif fld.plain is str and "" in column:
            return False
    return True


def _is_plain(value: Any, plain: type | None, bounds: tuple[int, int] | None) -> bool:
    """Whether ``value`` is taken as it is by a field whose values of type ``plain`` need no conversion."""
    return type(value) is plain and (bounds is None or bounds[0] <= value <= bounds[1])


def _parse_nested(fld: Field, value: Any, where: Where, from_query: bool) -> dict[str, Any]:
    if not isinstance(value, dict) or fld.message is None:
        raise _invalid(_path(where), value)
    return _parse_message(fld.message, value, where, from_query)


def _parse_string(fld: Field, value: Any, from_query: bool) -> str:
    if not isinstance(value, str):
        raise _reject(value)
    return value


def _parse_int(fld: Field, value: Any, from_query: bool) -> int:
    if isinstance(value, bool):
        raise _reject(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _reject(value) from None
    if not isinstance(value, int):
        raise _reject(value)
    low, high = _INT_RANGES[fld.kind]
    if not low <= value <= high:
        raise _reject(value)
    return value


def _parse_double(fld: Field, value: Any, from_query: bool) -> float:
    if isinstance(value, bool):
        raise _reject(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        try:
            parsed = float(value)
        except ValueError:
            raise _reject(value) from None
        if math.isfinite(parsed):
            return parsed
    raise _reject(value)


def _parse_bool(fld: Field, value: Any, from_query: bool) -> bool:
    if isinstance(value, bool):
        return value
    if from_query and isinstance(value, str):
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise MltrailException.invalid_parameter(f"Invalid boolean value: {value}, must be 'true' or 'false'.")
    raise _reject(value)


def _parse_enum(fld: Field, value: Any, from_query: bool) -> str:
    if isinstance(value, str) and value in fld.choices:
        return value
    number: Any = value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= len(fld.choices):
        return fld.choices[number - 1]
    raise _Rejected(
        lambda path: MltrailException.invalid_parameter(
            f"Invalid value {value!r} for parameter '{path}': expected one of {', '.join(fld.choices)}."
        )
    )


_SCALAR_PARSERS: dict[str, Callable[[Field, Any, bool], Any]] = {
    "string": _parse_string,
    "int64": _parse_int,
    "int32": _parse_int,
    "double": _parse_double,
    "bool": _parse_bool,
    "enum": _parse_enum,
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


def metrics_json(metrics: Iterable[Metric]) -> list[dict[str, Any]]:
    """:func:`metric_json` of each metric (metric histories, a run's latest metrics), with the common point (a
    finite value, no dataset, no model) built inline."""
    return [
        {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
        if m.dataset_name is None and m.dataset_digest is None and m.model_id is None and isfinite(m.value)
        else metric_json(m)
        for m in metrics
    ]


def metric_points_json(metrics: Iterable[tuple[str, float, int, int]]) -> list[dict[str, Any]]:
    """:func:`metric_json` of metrics given as ``(key, value, timestamp, step)`` (a run's latest metrics)."""
    return [
        {"key": key, "value": value if isfinite(value) else double(value), "timestamp": timestamp, "step": step}
        for key, value, timestamp, step in metrics
    ]


def history_json(key: str, points: Iterable[tuple[float, int, int]]) -> list[dict[str, Any]]:
    """:func:`metric_json` of the points ``(value, timestamp, step)`` of the metric ``key`` (a metric history)."""
    return [
        {"key": key, "value": value if isfinite(value) else double(value), "timestamp": timestamp, "step": step}
        for value, timestamp, step in points
    ]


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


def _inputs_json(inputs: RunInputs) -> dict[str, Any]:
    out = _dataset_inputs_json(inputs.dataset_inputs)
    _put_list(out, "model_inputs", [{"model_id": m.model_id} for m in inputs.model_inputs])
    return out


def _dataset_inputs_json(dataset_inputs: list[DatasetInput]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_list(out, "dataset_inputs", [_dataset_input_json(d) for d in dataset_inputs])
    return out


def _outputs_json(outputs: RunOutputs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_list(out, "model_outputs", [{"model_id": m.model_id, "step": m.step} for m in outputs.model_outputs])
    return out


def run_json(run: Run) -> dict[str, Any]:
    """A run as MLflow writes it; empty lists are left out, but ``inputs`` and ``outputs`` are always there."""
    data = run.data
    return _run_json(
        run.info,
        metrics_json(data.latest_metrics),
        _key_values(data.params),
        _key_values(data.tags),
        _inputs_json(run.inputs),
        _outputs_json(run.outputs),
    )


def run_rows_json(run: RunRows) -> dict[str, Any]:
    """:func:`run_json` of a run loaded as rows by the SQL store, without building its entities first."""
    return _run_json(
        run.info,
        metric_points_json(run.metrics),
        _key_values(run.params),
        _key_values(run.tags),
        _dataset_inputs_json(run.dataset_inputs),
        {},
    )


def _run_json(
    info: RunInfo,
    metrics: list[dict[str, Any]],
    params: list[dict[str, str]],
    tags: list[dict[str, str]],
    inputs: dict[str, Any],
    outputs: dict[str, Any],
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    _put_list(data, "metrics", metrics)
    _put_list(data, "params", params)
    _put_list(data, "tags", tags)
    return {"info": run_info_json(info), "data": data, "inputs": inputs, "outputs": outputs}


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
