"""Dataset inputs, stored like MLflow's file store does.

``<experiment>/datasets/<dataset_id>/meta.yaml`` holds the dataset (id = md5 of name + digest) and
``<run>/inputs/<input_id>/meta.yaml`` links a run to it (id = md5 of dataset id + run id) with the input tags.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from mltrail.entities import Dataset, DatasetInput, InputTag
from mltrail.errors import MltrailException
from mltrail.store.file import _fs
from mltrail.store.file._yaml import dump_meta, load_meta
from mltrail.validation import MAX_DATASETS_PER_BATCH

DATASETS_DIR = "datasets"
INPUTS_DIR = "inputs"
META = "meta.yaml"

_DATASET_LIMITS = (("name", 500), ("digest", 36), ("source", 65535), ("schema", 1048575), ("profile", 16777215))
_INPUT_TAG_LIMITS = (("key", 255), ("value", 500))


def validate_dataset_inputs(datasets: Sequence[DatasetInput]) -> None:
    """MLflow's dataset input limits; raises INVALID_PARAMETER_VALUE before anything is written."""
    if len(datasets) > MAX_DATASETS_PER_BATCH:
        raise MltrailException.invalid_parameter(
            f"A batch logging request can contain at most {MAX_DATASETS_PER_BATCH} datasets. "
            f"Got {len(datasets)} datasets. Please split up the request into multiple batches and try again."
        )
    for dataset_input in datasets:
        dataset = dataset_input.dataset
        for field in ("name", "digest", "source_type", "source"):
            if getattr(dataset, field) is None:
                raise MltrailException.invalid_parameter(f"Dataset {field} cannot be None")
        _check_lengths(dataset, _DATASET_LIMITS)
        for tag in dataset_input.tags:
            if tag.key is None or tag.value is None:
                raise MltrailException.invalid_parameter("InputTag key and value cannot be None")
            _check_lengths(tag, _INPUT_TAG_LIMITS)


def _check_lengths(entity: object, limits: tuple[tuple[str, int], ...]) -> None:
    for field, limit in limits:
        value = getattr(entity, field)
        if value is not None and len(value) > limit:
            raise MltrailException.invalid_parameter(f"'{field}' exceeds the maximum length of {limit} characters")


def _md5(*parts: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def _dataset_meta(dataset: Dataset) -> dict[str, str | None]:
    return {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source": dataset.source,
        "schema": dataset.schema,
        "profile": dataset.profile,
    }


def _create_meta(base: str, relative_dir: str, data: dict[str, object]) -> None:
    """Write ``<base>/<relative_dir>/meta.yaml`` once; an existing one is kept (inputs are idempotent)."""
    _fs.make_dirs(base, relative_dir)
    _fs.create_exclusive(os.path.join(base, relative_dir, META), dump_meta(data))


def write_dataset_inputs(experiment_dir: str, run_dir: str, run_id: str, datasets: Sequence[DatasetInput]) -> None:
    for dataset_input in datasets:
        dataset = dataset_input.dataset
        dataset_id = _md5(dataset.name, dataset.digest)
        _create_meta(experiment_dir, f"{DATASETS_DIR}/{dataset_id}", _dataset_meta(dataset))
        link = {
            "source_type": "DATASET",
            "source_id": dataset_id,
            "destination_type": "RUN",
            # MLflow writes the source id here (and never reads it back); keep the bytes identical.
            "destination_id": dataset_id,
            "tags": {tag.key: tag.value for tag in dataset_input.tags},
        }
        _create_meta(run_dir, f"{INPUTS_DIR}/{_md5(dataset_id, run_id)}", link)


def _read_meta(directory: str) -> dict[str, object] | None:
    text = _fs.read_text(os.path.join(directory, META))
    return None if text is None else load_meta(text)


def read_dataset_inputs(experiment_dir: str, run_dir: str) -> list[DatasetInput]:
    """The run's dataset inputs, ordered by input id (links to missing datasets are skipped, like MLflow)."""
    inputs_dir = os.path.join(run_dir, INPUTS_DIR)
    result = []
    for input_id in sorted(_fs.list_subdirs(inputs_dir)):
        link = _read_meta(os.path.join(inputs_dir, input_id))
        if not link or link.get("source_type") != "DATASET":
            continue
        meta = _read_meta(os.path.join(experiment_dir, DATASETS_DIR, str(link.get("source_id"))))
        if not meta:
            continue
        dataset = Dataset(
            name=str(meta.get("name", "")),
            digest=str(meta.get("digest", "")),
            source_type=str(meta.get("source_type", "")),
            source=str(meta.get("source", "")),
            schema=_optional_str(meta.get("schema")),
            profile=_optional_str(meta.get("profile")),
        )
        tags = link.get("tags") or {}
        input_tags = tuple(InputTag(str(k), str(v)) for k, v in tags.items()) if isinstance(tags, dict) else ()
        result.append(DatasetInput(dataset, input_tags))
    return result


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
