"""Plain data classes for everything a tracking store holds.

Field names follow MLflow's entities so that code written for ``mlflow.entities`` reads the same here
(``run.info.run_id``, ``run.data.metrics["loss"]``, ``experiment.lifecycle_stage``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Generic, TypeVar

from mltrail.errors import MltrailException

T = TypeVar("T")


class LifecycleStage(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def number(self) -> int:
        """MLflow's protobuf enum number, also what the directory store writes in meta.yaml."""
        return _RUN_STATUS_NUMBERS[self]

    @classmethod
    def from_number(cls, number: int) -> RunStatus:
        for status, value in _RUN_STATUS_NUMBERS.items():
            if value == number:
                return status
        raise MltrailException.invalid_parameter(f"Unknown run status number {number}")

    @classmethod
    def parse(cls, value: str | int | RunStatus) -> RunStatus:
        if isinstance(value, RunStatus):
            return value
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return cls.from_number(int(value))
        try:
            return cls(str(value).upper())
        except ValueError:
            raise MltrailException.invalid_parameter(f"Invalid run status '{value}'") from None

    @property
    def is_terminated(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


_RUN_STATUS_NUMBERS = {
    RunStatus.RUNNING: 1,
    RunStatus.SCHEDULED: 2,
    RunStatus.FINISHED: 3,
    RunStatus.FAILED: 4,
    RunStatus.KILLED: 5,
}


class ViewType(IntEnum):
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @classmethod
    def parse(cls, value: str | int | ViewType | None) -> ViewType:
        if value is None or value == "":
            return cls.ACTIVE_ONLY
        if isinstance(value, ViewType):
            return value
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            try:
                return cls(int(value))
            except ValueError:
                pass
        else:
            try:
                return cls[str(value).upper()]
            except KeyError:
                pass
        raise MltrailException.invalid_parameter(f"Invalid view type '{value}'")

    def stages(self) -> tuple[str, ...]:
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE.value,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED.value,)
        return (LifecycleStage.ACTIVE.value, LifecycleStage.DELETED.value)


class SourceType(IntEnum):
    NOTEBOOK = 1
    JOB = 2
    PROJECT = 3
    LOCAL = 4
    UNKNOWN = 1000


# Not frozen: a frozen dataclass's __init__ costs ~8x more, and metric histories build millions of these.
# Treat instances as immutable all the same (they are hashable by value).
@dataclass(slots=True, unsafe_hash=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0
    dataset_name: str | None = None
    dataset_digest: str | None = None
    model_id: str | None = None
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ExperimentTag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class InputTag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class DatasetInput:
    dataset: Dataset
    tags: tuple[InputTag, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelInput:
    model_id: str


@dataclass(frozen=True, slots=True)
class ModelOutput:
    model_id: str
    step: int


@dataclass(slots=True)
class RunInputs:
    dataset_inputs: list[DatasetInput] = field(default_factory=list)
    model_inputs: list[ModelInput] = field(default_factory=list)


@dataclass(slots=True)
class RunOutputs:
    model_outputs: list[ModelOutput] = field(default_factory=list)


@dataclass(slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: RunStatus
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = LifecycleStage.ACTIVE.value

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass(slots=True)
class RunData:
    """Latest value of each metric, plus params and tags.

    ``metrics`` maps key to the latest value like MLflow's ``RunData.metrics``; ``latest_metrics`` keeps the
    full :class:`Metric` (timestamp and step) for the wire format.
    """

    latest_metrics: list[Metric] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return {m.key: m.value for m in self.latest_metrics}


@dataclass(slots=True)
class Run:
    info: RunInfo
    data: RunData = field(default_factory=RunData)
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: RunOutputs = field(default_factory=RunOutputs)


@dataclass(slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE.value
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None = None


class PagedList(list, Generic[T]):  # type: ignore[type-arg]
    """A page of results plus the opaque token for the next page (``None`` on the last page)."""

    def __init__(self, items: list[T], token: str | None) -> None:
        super().__init__(items)
        self.token = token
