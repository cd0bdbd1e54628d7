"""Input rules shared by every store, with MLflow's limits and wording.

Stores call these before writing, so a bad request is refused before anything is stored
(no partial writes). All failures raise ``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import logging
import numbers
import os
import posixpath
import re
from collections.abc import Sequence
from functools import lru_cache
from operator import attrgetter

from mltrail.entities import Metric, Param, RunTag
from mltrail.errors import MltrailException

_log = logging.getLogger(__name__)

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_DATASETS_PER_BATCH = 1000
MAX_ARTIFACT_LOCATION_LENGTH = 2048
SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50000
MAX_INT64 = 2**63 - 1

_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_NEW_RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_EXPERIMENT_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,63}$")

_BAD_NAME_HINT = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
    "colon(:) and slashes (/)."
)


def _invalid(message: str) -> MltrailException:
    return MltrailException.invalid_parameter(message)


def truncate_long_values() -> bool:
    """MLflow truncates over-long param/tag values with a warning unless told not to."""
    raw = os.environ.get("MLTRAIL_TRUNCATE_LONG_VALUES", os.environ.get("MLFLOW_TRUNCATE_LONG_VALUES", "true"))
    return raw.strip().lower() in ("1", "true", "yes")


def validate_key(key: object, what: str = "name") -> str:
    """Metric/param/tag key: ≤250 chars, MLflow's character set, and no path tricks."""
    if not isinstance(key, str) or key == "":
        raise _invalid(f"Missing value for required parameter '{what}'.")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise _invalid(f"'{key[:40]}...' exceeds the maximum length of {MAX_ENTITY_KEY_LENGTH} characters")
    if not _is_well_formed_key(key):
        raise _invalid(f"Invalid value \"{key}\" for parameter '{what}' supplied: {_BAD_NAME_HINT}")
    return key


@lru_cache(maxsize=4096)
def _is_well_formed_key(key: str) -> bool:
    """Cached: the same few keys are checked for every logged point."""
    return not (
        not _KEY_RE.match(key)
        or posixpath.normpath(key) != key
        or key.startswith("/")
        or any(part in (".", "..") for part in key.split("/"))
    )


def _checked_value(value: object, limit: int, what: str, key: str) -> str:
    text = "" if value is None else str(value)
    if len(text) <= limit:
        return text
    if truncate_long_values():
        _log.warning("%s value for key '%s' truncated to %d characters", what, key, limit)
        return text[:limit]
    raise _invalid(f"{what} value for key '{key}' exceeds the maximum length of {limit} characters")


def validate_param(param: Param) -> Param:
    validate_key(param.key, "key")
    value = _checked_value(param.value, MAX_PARAM_VAL_LENGTH, "Param", param.key)
    return param if value == param.value else Param(param.key, value)


def validate_tag(tag: RunTag) -> RunTag:
    validate_key(tag.key, "key")
    value = _checked_value(tag.value, MAX_TAG_VAL_LENGTH, "Tag", tag.key)
    return tag if value == tag.value else RunTag(tag.key, value)


def validate_experiment_tag(key: object, value: object) -> tuple[str, str]:
    validate_key(key, "key")
    text = "" if value is None else str(value)
    if len(text) > MAX_EXPERIMENT_TAG_VAL_LENGTH:
        raise _invalid(f"Experiment tag value exceeds the maximum length of {MAX_EXPERIMENT_TAG_VAL_LENGTH} characters")
    return str(key), text


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def validate_metric(metric: Metric, index: int | None = None) -> Metric:
    """Key rules, a real number (NaN and ±Inf allowed, bool refused), int64 timestamp ≥ 0 and step.
    ``index`` is the metric's position in a batch, named in the error (``metrics[3].key``)."""
    key, timestamp, step = metric.key, metric.timestamp, metric.step
    if (  # fast path for the common valid point (logging checks every point of every batch)
        type(metric.value) is float
        and type(timestamp) is int
        and type(step) is int
        and type(key) is str
        and 0 <= timestamp <= MAX_INT64
        and -MAX_INT64 - 1 <= step <= MAX_INT64
        and 0 < len(key) <= MAX_ENTITY_KEY_LENGTH
        and _is_well_formed_key(key)
    ):
        return metric
    validate_key(metric.key, f"metrics[{index}].key" if index is not None else "name")
    value = metric.value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _invalid(
            f"Got invalid value {value!r} for metric '{metric.key}' (timestamp={metric.timestamp}). "
            "Please specify value as a valid double (64-bit floating point)"
        )
    if not _is_int(metric.timestamp) or not 0 <= metric.timestamp <= MAX_INT64:
        raise _invalid(
            f"Got invalid timestamp {metric.timestamp!r} for metric '{metric.key}' (value={value}). "
            "Timestamp must be a nonnegative long (64-bit integer) "
        )
    if not _is_int(metric.step) or not -MAX_INT64 - 1 <= metric.step <= MAX_INT64:
        raise _invalid(
            f"Got invalid step {metric.step!r} for metric '{metric.key}' (value={value}). "
            "Step must be a valid long (64-bit integer)."
        )
    if not isinstance(value, float):
        metric = Metric(
            metric.key,
            float(value),
            metric.timestamp,
            metric.step,
            metric.dataset_name,
            metric.dataset_digest,
            metric.model_id,
            metric.run_id,
        )
    return metric


def validate_metrics(metrics: Sequence[Metric], *, indexed: bool = True) -> list[Metric]:
    """:func:`validate_metric` of every metric (``indexed``: errors name the metric's position, ``metrics[3]``).

    A batch is usually all plain valid points; that is checked a column at a time (a few passes in C instead of
    a Python call per metric), and only a batch that fails it is checked, and converted, metric by metric."""
    if _plain_valid(metrics):
        return list(metrics)
    return [validate_metric(metric, index if indexed else None) for index, metric in enumerate(metrics)]


_KEY, _VALUE, _TIMESTAMP, _STEP = (attrgetter(name) for name in ("key", "value", "timestamp", "step"))


def _plain_valid(metrics: Sequence[Metric]) -> bool:
    """Whether every metric passes :func:`validate_metric`'s fast path as it is (nothing to convert)."""
    if not metrics:
        return True
    if set(map(type, map(_VALUE, metrics))) != {float}:
        return False
    timestamps = list(map(_TIMESTAMP, metrics))
    if set(map(type, timestamps)) != {int} or min(timestamps) < 0 or max(timestamps) > MAX_INT64:
        return False
    steps = list(map(_STEP, metrics))
    if set(map(type, steps)) != {int} or min(steps) < -MAX_INT64 - 1 or max(steps) > MAX_INT64:
        return False
    keys = list(map(_KEY, metrics))
    if set(map(type, keys)) != {str}:
        return False
    return all(0 < len(key) <= MAX_ENTITY_KEY_LENGTH and _is_well_formed_key(key) for key in set(keys))


def validate_batch(
    metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> tuple[list[Metric], list[Param], list[RunTag]]:
    """Check a log-batch as a whole before any of it is written. Returns the values to store."""
    for count, limit, what in (
        (len(metrics), MAX_METRICS_PER_BATCH, "metrics"),
        (len(params), MAX_PARAMS_TAGS_PER_BATCH, "params"),
        (len(tags), MAX_PARAMS_TAGS_PER_BATCH, "tags"),
        (len(metrics) + len(params) + len(tags), MAX_ENTITIES_PER_BATCH, "total entities"),
    ):
        if count > limit:
            raise _invalid(
                f"A batch logging request can contain at most {limit} {what}. Got {count} {what}. "
                "Please split up the request into multiple batches and try again."
            )
    seen: dict[str, str] = {}
    checked_params = []
    for param in params:
        param = validate_param(param)
        if param.key in seen and seen[param.key] != param.value:
            raise _invalid(
                f"Duplicate parameter keys have been submitted: ['{param.key}']. "
                "Please ensure the request contains only one param value per param key."
            )
        if param.key not in seen:
            checked_params.append(param)
        seen[param.key] = param.value
    checked_metrics = validate_metrics(metrics)
    checked_tags = [validate_tag(t) for t in tags]
    return checked_metrics, checked_params, checked_tags


def validate_experiment_name(name: object) -> str:
    if not isinstance(name, str) or name.strip() == "":
        raise _invalid(f"Invalid experiment name: '{name}'. Experiment name must be a non-empty string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise _invalid(f"'name' exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters")
    return name


def validate_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise _invalid(f"Invalid run ID: '{run_id}'")
    return run_id


def validate_new_run_id(run_id: object) -> str:
    """A run id chosen by the caller of ``create_run``: the shape every store generates (32 lowercase hex)."""
    if not isinstance(run_id, str) or not _NEW_RUN_ID_RE.match(run_id):
        raise _invalid(f"Invalid run ID: '{run_id}'. A run ID given to create a run must be 32 lowercase hex digits.")
    return run_id


def validate_experiment_id(experiment_id: object) -> str:
    text = str(experiment_id) if experiment_id is not None else ""
    if not _EXPERIMENT_ID_RE.match(text):
        raise _invalid(f"Invalid experiment ID: '{experiment_id}'")
    return text


def validate_max_results(max_results: int | None, default: int = SEARCH_MAX_RESULTS_DEFAULT) -> int:
    if max_results is None:
        return default
    if not _is_int(max_results) or max_results <= 0:
        raise _invalid(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied. It must be a positive integer"
        )
    if max_results > SEARCH_MAX_RESULTS_THRESHOLD:
        raise _invalid(
            f"Invalid value {max_results} for parameter 'max_results' supplied. "
            f"It must be at most {SEARCH_MAX_RESULTS_THRESHOLD}"
        )
    return int(max_results)


def validate_artifact_location(location: str | None) -> str | None:
    """Refuse artifact locations that could smuggle paths (fragments, params, ``..`` segments)."""
    if location is None or location == "":
        return None
    if len(location) > MAX_ARTIFACT_LOCATION_LENGTH:
        raise _invalid(f"Artifact location exceeds the maximum length of {MAX_ARTIFACT_LOCATION_LENGTH} characters")
    if "#" in location or ";" in location:
        raise _invalid("'artifact_location' URL can't include fragments or params.")
    if location.startswith("runs:"):
        raise _invalid("'artifact_location' cannot be a runs:/ URI.")
    if "\\" in location or ".." in location.replace("\\", "/").split("/"):
        raise _invalid("'artifact_location' must not contain '..' path segments or backslashes.")
    return location
