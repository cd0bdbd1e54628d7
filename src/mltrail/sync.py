"""Push an ``mlruns`` directory (mltrail's or MLflow's file store) into any tracking store, resumably.

Runs keep their ids (``create_run(run_id=...)``, idempotent), names, times, status, every metric point, params,
tags, dataset inputs and artifacts. Experiments are matched by name and created when missing. Active runs of
active experiments are pushed; deleted ones are left out.

Resuming without duplicates rests on two things. The stores' writes are idempotent (a param with the same value,
a metric point stored twice, a replayed ``create_run`` all store nothing new), so sending something again is
harmless. And a small progress record per (source, target) remembers, per run, a signature of its folder (sizes
and modification times of its files) and how many bytes of each metric file were sent: an unchanged run is
skipped without reading it, and a run that changed since (still running) sends only the new metric lines and
changed artifacts. Metric files are append-only in the directory layout, which is what makes byte offsets exact.

The run-level part (:class:`SourceRun`, :func:`push_run`) is also what the client's offline spool uses to send
its data once the server is back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mltrail.artifacts.base import ArtifactRepository, iter_chunks
from mltrail.artifacts.registry import get_artifact_repository, uri_scheme
from mltrail.artifacts.transfer import files_under, progress_bar
from mltrail.entities import Experiment, ExperimentTag, Metric, Param, Run, RunStatus, RunTag, ViewType
from mltrail.errors import ErrorCode, MltrailException
from mltrail.store.base import TrackingStore
from mltrail.store.file import _fs
from mltrail.store.file._inputs import read_dataset_inputs
from mltrail.store.file._meta import ACTIVE, run_info_from_meta
from mltrail.store.file._metrics import iter_points
from mltrail.store.file._runs import ARTIFACTS_DIR, METRICS_DIR, PARAMS_DIR, RUN_NAME_TAG, TAGS_DIR, read_values
from mltrail.store.file._uris import uri_to_path
from mltrail.store.file._yaml import MalformedMeta, load_meta
from mltrail.store.file.store import META, RESERVED_EXPERIMENT_FOLDERS, FileStore
from mltrail.validation import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

_log = logging.getLogger(__name__)

_SAVE_EVERY_SECONDS = 2.0
#: Errors that concern one run (its data conflicts with the target's); anything else stops the whole sync.
_RUN_ERRORS = frozenset(
    {
        ErrorCode.INVALID_PARAMETER_VALUE,
        ErrorCode.RESOURCE_ALREADY_EXISTS,
        ErrorCode.RESOURCE_DOES_NOT_EXIST,
        ErrorCode.BAD_REQUEST,
        ErrorCode.INVALID_STATE,
    }
)


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/mltrail`` or ``~/.cache/mltrail``: sync progress records and client spools."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "mltrail")


# --- progress ---------------------------------------------------------------------------------------


@dataclass
class RunProgress:
    """What of one source run the target already has."""

    #: signature of the source folder when the run was last pushed completely (None: never)
    signature: str | None = None
    #: the run's id on the target when it differs from the source's (a server that ignores ``run_id``)
    target_run_id: str | None = None
    #: metric key -> bytes of its file already sent
    metrics: dict[str, int] = field(default_factory=dict)
    #: artifact path -> [size, mtime_ns] of the copy already sent
    artifacts: dict[str, list[int]] = field(default_factory=dict)


class ProgressRecord:
    """The progress of one (source, target) pair, as a JSON file (or in memory only when ``path`` is None)."""

    def __init__(self, path: Path | None, fresh: bool = False) -> None:
        self.path = path
        self.runs: dict[str, RunProgress] = {}
        self._saved_at = time.monotonic()
        if path is not None and not fresh and path.is_file():
            try:
                data = json.loads(path.read_text())
                self.runs = {run_id: RunProgress(**value) for run_id, value in data.get("runs", {}).items()}
            except (ValueError, TypeError) as exc:
                _log.warning("mltrail sync: ignoring unreadable progress record %s: %s", path, exc)

    @classmethod
    def for_pair(cls, source: str, target_uri: str, state_dir: Path | None = None, fresh: bool = False):
        directory = state_dir or Path(os.environ.get("MLTRAIL_SYNC_STATE_DIR") or cache_home() / "sync")
        key = hashlib.sha256(f"{os.path.abspath(source)}\n{target_uri}".encode()).hexdigest()[:24]
        return cls(directory / f"{key}.json", fresh)

    def run(self, run_id: str) -> RunProgress:
        return self.runs.setdefault(run_id, RunProgress())

    def save(self, force: bool = True) -> None:
        """Write the record atomically; unless ``force``, at most every few seconds (a lost update only costs
        re-sending points the target stores once anyway)."""
        if self.path is None or (not force and time.monotonic() - self._saved_at < _SAVE_EVERY_SECONDS):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"version": 1, "runs": {run_id: asdict(p) for run_id, p in self.runs.items()}}
        _fs.replace_file(str(self.path), json.dumps(data, separators=(",", ":")).encode())
        self._saved_at = time.monotonic()


# --- the source side: one run folder ------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRun:
    """A run folder of an ``mlruns`` directory, read straight from its files."""

    run_id: str
    experiment_id: str
    experiment_dir: str
    meta: dict[str, Any]

    @property
    def path(self) -> str:
        return os.path.join(self.experiment_dir, self.run_id)

    @classmethod
    def load(cls, experiment_dir: str, experiment_id: str, run_id: str) -> SourceRun | None:
        """The run folder ``experiment_dir/run_id``; None if it holds no readable meta.yaml."""
        text = _fs.read_text(os.path.join(experiment_dir, run_id, META))
        if not text:
            return None
        try:
            meta = load_meta(text)
        except MalformedMeta as exc:
            _log.warning("mltrail sync: skipping run folder %s: %s", run_id, exc.message)
            return None
        return cls(run_id, experiment_id, experiment_dir, meta)

    def signature(self) -> str:
        """Changes whenever a file of the run changes (size or modification time), is added or removed."""
        digest = hashlib.sha256()
        for dirpath, dirnames, filenames in os.walk(self.path):
            dirnames.sort()
            for name in sorted(filenames):
                try:
                    stat = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                digest.update(f"{dirpath}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def params(self) -> list[Param]:
        return [Param(k, v) for k, v in sorted(read_values(self.path, PARAMS_DIR).items())]

    def tags(self) -> list[RunTag]:
        tags = read_values(self.path, TAGS_DIR)
        return [RunTag(k, v) for k, v in sorted(tags.items()) if k != RUN_NAME_TAG]

    def run_name(self) -> str:
        return str(self.meta.get("run_name") or read_values(self.path, TAGS_DIR).get(RUN_NAME_TAG) or "")

    def metric_batches(self, sent: dict[str, int]) -> Iterator[tuple[list[Metric], dict[str, int]]]:
        """Unsent complete metric lines, in batches of at most MAX_METRICS_PER_BATCH points, each with the
        file offsets (key -> bytes) that are sent once it is stored."""
        batch: list[Metric] = []
        ends: dict[str, int] = {}
        directory = os.path.join(self.path, METRICS_DIR)
        for key in sorted(_fs.list_keys(directory)):
            start = sent.get(key, 0)
            with open(os.path.join(directory, *key.split("/")), "rb") as file:
                file.seek(start)
                data = file.read()
            lines = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
            position, i = start, 0
            while i < len(lines):
                chunk = lines[i : i + MAX_METRICS_PER_BATCH - len(batch)]
                i += len(chunk)
                position += sum(len(line) + 1 for line in chunk)
                points = iter_points(b"\n".join(chunk) + b"\n", key, self.experiment_id)
                batch.extend(Metric(key, p[1], p[0], p[2], p[3], p[4]) for p in points)
                ends[key] = position
                if len(batch) >= MAX_METRICS_PER_BATCH:
                    yield batch, ends
                    batch, ends = [], {}
        if ends:
            yield batch, ends

    def artifact_root(self) -> str | None:
        """Where the run's artifacts are: its ``artifacts`` folder when present (a copied ``mlruns`` keeps
        artifact URIs of the machine it came from), else its artifact URI when that is not a local path."""
        local = os.path.join(self.path, ARTIFACTS_DIR)
        if os.path.isdir(local):
            return local
        uri = str(self.meta.get("artifact_uri") or "")
        if not uri:
            return None
        if uri_scheme(uri) in ("", "file"):
            path = uri_to_path(uri)
            return path if os.path.isdir(path) else None
        return uri


# --- pushing one run ----------------------------------------------------------------------------------


@dataclass
class PushStats:
    metrics: int = 0
    artifacts: int = 0


def push_run(
    source: SourceRun,
    target: TrackingStore,
    target_experiment_id: str,
    progress: RunProgress,
    target_uri: str,
    *,
    artifacts: bool = True,
    after_batch: Callable[[], object] = lambda: None,
) -> PushStats:
    """Bring the target's copy of ``source`` up to date: everything not recorded in ``progress`` is sent, and
    ``progress`` is updated as parts are stored (``after_batch`` is called then, e.g. to save it)."""
    stats = PushStats()
    info = run_info_from_meta(source.meta, source.run_id, source.experiment_id, False)
    name = source.run_name()
    if progress.target_run_id:
        run = target.get_run(progress.target_run_id)
    else:
        run = target.create_run(
            target_experiment_id, info.user_id or None, info.start_time, (), name or None, run_id=source.run_id
        )
        if run.info.run_id != source.run_id:
            _log.warning(
                "mltrail sync: the target ignored the run id (not an mltrail store?); run %s is %s there",
                source.run_id,
                run.info.run_id,
            )
            progress.target_run_id = run.info.run_id
    run_id = run.info.run_id
    params, tags = source.params(), source.tags()
    for i in range(0, max(len(params), len(tags)), MAX_PARAMS_TAGS_PER_BATCH):
        part = slice(i, i + MAX_PARAMS_TAGS_PER_BATCH)
        target.log_batch(run_id, (), params[part], tags[part])
    for metrics, ends in source.metric_batches(progress.metrics):
        if metrics:
            target.log_batch(run_id, metrics)
        progress.metrics.update(ends)
        stats.metrics += len(metrics)
        after_batch()
    inputs = read_dataset_inputs(source.experiment_dir, source.path)
    if inputs:
        target.log_inputs(run_id, inputs)
    if artifacts:
        stats.artifacts = _push_artifacts(source, run, progress, target_uri, after_batch)
    _push_run_info(target, run, info.status, info.end_time, name)
    return stats


def _push_run_info(target: TrackingStore, run: Run, status: RunStatus, end_time: int | None, name: str) -> None:
    current = run.info
    new_name = name if name and name != current.run_name else None
    if status != current.status or end_time != current.end_time or new_name:
        target.update_run_info(current.run_id, status, end_time, new_name)


def _push_artifacts(
    source: SourceRun, run: Run, progress: RunProgress, target_uri: str, after_batch: Callable[[], object]
) -> int:
    root = source.artifact_root()
    if root is None:
        return 0
    destination = get_artifact_repository(run.info.artifact_uri, target_uri)
    if uri_scheme(root) == "":
        return _push_local_artifacts(root, destination, progress, after_batch)
    return _copy_repository(get_artifact_repository(root), destination, progress, after_batch)


def _push_local_artifacts(
    root: str, destination: ArtifactRepository, progress: RunProgress, after_batch: Callable[[], object]
) -> int:
    copied = 0
    for file in files_under(root):
        relative = "/".join(p for p in (file.artifact_dir, os.path.basename(file.path)) if p)
        stat = os.stat(file.path)
        stamp = [stat.st_size, stat.st_mtime_ns]
        if progress.artifacts.get(relative) == stamp:
            continue
        destination.log_artifact(file.path, file.artifact_dir)
        progress.artifacts[relative] = stamp
        copied += 1
        after_batch()
    return copied


def _copy_repository(
    source: ArtifactRepository, destination: ArtifactRepository, progress: RunProgress, after_batch: Callable
) -> int:
    """Stream every file of a remote artifact location (s3://...) to the target; files whose size is unchanged
    since the last copy are skipped (remote listings carry no modification time)."""
    copied = 0
    pending = [None]
    while pending:
        directory = pending.pop()
        for info in source.list_artifacts(directory):
            if info.is_dir:
                pending.append(info.path)
                continue
            stamp = [info.file_size or 0, 0]
            if progress.artifacts.get(info.path) == stamp:
                continue
            with destination.open_write(info.path) as sink:
                for chunk in iter_chunks(source.open_read(info.path)):
                    sink.write(chunk)
            progress.artifacts[info.path] = stamp
            copied += 1
            after_batch()
    return copied


# --- pushing a directory ----------------------------------------------------------------------------


@dataclass
class SyncResult:
    runs_pushed: int = 0
    runs_skipped: int = 0
    metrics: int = 0
    artifacts: int = 0
    experiments_created: list[str] = field(default_factory=list)
    #: (run id or experiment name, error message) of what could not be pushed
    failures: list[tuple[str, str]] = field(default_factory=list)


def experiment_runs(root: str, experiment_id: str) -> list[SourceRun]:
    """The active runs of one experiment folder (deleted ones are not pushed)."""
    experiment_dir = os.path.join(root, experiment_id)
    runs = []
    for name in sorted(_fs.list_subdirs(experiment_dir)):
        if name in RESERVED_EXPERIMENT_FOLDERS or name.startswith(".") or _fs.is_temporary(name):
            continue
        run = SourceRun.load(experiment_dir, experiment_id, name)
        if run is not None and (run.meta.get("lifecycle_stage") or ACTIVE) == ACTIVE:
            runs.append(run)
    return runs


def target_experiment(target: TrackingStore, name: str, tags: dict[str, str], created: list[str]) -> str:
    """The id of the target's active experiment ``name``, created (with ``tags``) if missing."""
    experiment = target.get_experiment_by_name(name)
    if experiment is None:
        try:
            created.append(name)
            return target.create_experiment(name, tags=[ExperimentTag(k, v) for k, v in tags.items()])
        except MltrailException as exc:  # created meanwhile by someone else
            if exc.error_code != ErrorCode.RESOURCE_ALREADY_EXISTS:
                raise
            created.pop()
            experiment = target.get_experiment_by_name(name)
            assert experiment is not None
    if experiment.lifecycle_stage != ACTIVE:
        raise MltrailException(
            f"Experiment '{name}' is deleted in the target; restore it to sync into it.", ErrorCode.INVALID_STATE
        )
    return experiment.experiment_id


def sync_directory(
    source: str,
    target: TrackingStore,
    target_uri: str,
    progress: ProgressRecord,
    *,
    experiment_names: Sequence[str] | None = None,
    artifacts: bool = True,
) -> SyncResult:
    """Push every active run of the ``mlruns`` folder ``source`` into ``target`` (see the module docstring).

    Errors that concern one run or experiment (a param value that conflicts with the target's...) are
    collected in the result and the others go on; any other error (the target is unreachable...) stops the
    sync after saving the progress, so that the next call resumes."""
    root = os.path.abspath(uri_to_path(source))
    if not os.path.isdir(root):
        raise MltrailException.invalid_parameter(f"'{source}' is not a directory")
    result = SyncResult()
    wanted = set(experiment_names or ())
    experiments = [e for e in _all_experiments(FileStore(root)) if not wanted or e.name in wanted]
    plan: list[tuple[str, dict[str, str], SourceRun]] = []
    for experiment in experiments:
        # Tags the client's offline spool keeps for itself are not the experiment's.
        tags = {k: v for k, v in experiment.tags.items() if not k.startswith("mltrail.spool.")}
        plan.extend((experiment.name, tags, run) for run in experiment_runs(root, experiment.experiment_id))
    target_ids: dict[str, str] = {}
    try:
        with progress_bar(len(plan), "Syncing runs", unit="run") as advance:
            for name, tags, run in plan:
                _sync_one(run, name, tags, target, target_uri, progress, target_ids, result, artifacts)
                advance(1)
    finally:
        progress.save()
    return result


def _all_experiments(store: FileStore) -> list[Experiment]:
    experiments: list[Experiment] = []
    token = None
    while True:
        page = store.search_experiments(ViewType.ACTIVE_ONLY, 50_000, page_token=token)
        experiments.extend(page)
        token = page.token
        if not token:
            return experiments


def _sync_one(
    run: SourceRun,
    experiment_name: str,
    experiment_tags: dict[str, str],
    target: TrackingStore,
    target_uri: str,
    progress: ProgressRecord,
    target_ids: dict[str, str],
    result: SyncResult,
    artifacts: bool,
) -> None:
    state = progress.run(run.run_id)
    signature = run.signature()
    if state.signature == signature:
        result.runs_skipped += 1
        return
    try:
        if experiment_name not in target_ids:
            target_ids[experiment_name] = target_experiment(
                target, experiment_name, experiment_tags, result.experiments_created
            )
        stats = push_run(
            run,
            target,
            target_ids[experiment_name],
            state,
            target_uri,
            artifacts=artifacts,
            after_batch=lambda: progress.save(force=False),
        )
    except MltrailException as exc:
        if exc.error_code not in _RUN_ERRORS:
            raise
        _log.error("mltrail sync: run %s (experiment '%s') not synced: %s", run.run_id, experiment_name, exc)
        result.failures.append((run.run_id, exc.message))
        return
    state.signature = signature
    progress.save(force=False)
    result.runs_pushed += 1
    result.metrics += stats.metrics
    result.artifacts += stats.artifacts


def sync(
    source: str,
    target_uri: str,
    *,
    experiment_names: Sequence[str] | None = None,
    artifacts: bool = True,
    full: bool = False,
    artifact_root: str | None = None,
    state_dir: Path | None = None,
) -> SyncResult:
    """:func:`sync_directory` into the store at ``target_uri``, with the progress record kept under
    ``state_dir`` (default ``MLTRAIL_SYNC_STATE_DIR`` or ``~/.cache/mltrail/sync``). ``full`` ignores the
    record (everything is sent again; the target still stores nothing twice)."""
    from mltrail.store.registry import get_tracking_store

    target = get_tracking_store(target_uri, artifact_root)
    progress = ProgressRecord.for_pair(source, target_uri, state_dir, fresh=full)
    return sync_directory(source, target, target_uri, progress, experiment_names=experiment_names, artifacts=artifacts)
