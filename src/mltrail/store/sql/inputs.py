"""Validation of dataset inputs (``log_inputs``), with MLflow's limits."""

from __future__ import annotations

from collections.abc import Sequence

from mltrail.entities import DatasetInput
from mltrail.errors import MltrailException
from mltrail.validation import MAX_DATASETS_PER_BATCH

#: field -> maximum length (MLflow's ``_validate_dataset``)
_DATASET_LIMITS = {
    "name": 500,
    "digest": 36,
    "source_type": 36,
    "source": 65535,
    "schema": 1048575,
    "profile": 16777215,
}
MAX_INPUT_TAG_KEY_LENGTH = 255
MAX_INPUT_TAG_VALUE_LENGTH = 500


def _invalid(message: str) -> MltrailException:
    return MltrailException.invalid_parameter(message)


def validate_dataset_inputs(dataset_inputs: Sequence[DatasetInput]) -> None:
    """Refuse the whole request if any dataset or input tag breaks a rule."""
    if len(dataset_inputs) > MAX_DATASETS_PER_BATCH:
        raise _invalid(
            f"A batch logging request can contain at most {MAX_DATASETS_PER_BATCH} datasets. "
            f"Got {len(dataset_inputs)} datasets."
        )
    for item in dataset_inputs:
        dataset = item.dataset
        for field, limit in _DATASET_LIMITS.items():
            value = getattr(dataset, field)
            required = field not in ("schema", "profile")
            if value is None or value == "":
                if required:
                    raise _invalid(f"Dataset {field} is required (dataset '{dataset.name}').")
                continue
            if not isinstance(value, str):
                raise _invalid(f"Dataset {field} must be a string, got {type(value).__name__}.")
            if len(value) > limit:
                raise _invalid(f"Dataset {field} exceeds the maximum length of {limit} characters.")
        for tag in item.tags:
            if not isinstance(tag.key, str) or tag.key == "":
                raise _invalid("Input tag key is required.")
            if len(tag.key) > MAX_INPUT_TAG_KEY_LENGTH:
                raise _invalid(f"Input tag key exceeds the maximum length of {MAX_INPUT_TAG_KEY_LENGTH} characters.")
            if not isinstance(tag.value, str) or len(tag.value) > MAX_INPUT_TAG_VALUE_LENGTH:
                raise _invalid(
                    f"Input tag value for key '{tag.key}' must be a string of at most "
                    f"{MAX_INPUT_TAG_VALUE_LENGTH} characters."
                )
