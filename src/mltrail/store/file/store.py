"""The directory store: MLflow's ``mlruns`` file layout, read and written by mltrail.

Layout (identical to MLflow 3.x, so either tool reads the other's folders)::

    <root>/<experiment_id>/meta.yaml               experiment; tags/<key> holds experiment tags
    <root>/<experiment_id>/<run_id>/meta.yaml      run; metrics/<key>, params/<key>, tags/<key>, inputs/, artifacts/
    <root>/<experiment_id>/datasets/<id>/meta.yaml datasets referenced by run inputs
    <root>/.trash/<experiment_id>/...              deleted experiments (their runs count as deleted)

Keys containing ``/`` are sub-folders. Writes are atomic (see :mod:`._fs`); changes of a meta.yaml are serialized
with a lock on its folder, experiment creation/renaming/deletion with a lock on the root folder. Whether an
experiment is deleted is decided by where its folder is, so a crash between moving it and updating its
meta.yaml leaves a consistent store.
"""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from mltrail.entities import (
    DatasetInput,
    Experiment,
    ExperimentTag,
    Metric,
    PagedList,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from mltrail.errors import ErrorCode, MltrailException
from mltrail.search.ast import EXPERIMENT_NUMERIC_ATTRIBUTES, EXPERIMENT_STRING_ATTRIBUTES, Identifier
from mltrail.store.file import _fs, _ids
from mltrail.store.file._inputs import DATASETS_DIR, validate_dataset_inputs, write_dataset_inputs
from mltrail.store.file._meta import (
    ACTIVE,
    DELETED,
    experiment_from_meta,
    new_experiment_meta,
    new_run_meta,
    run_info_from_meta,
)
from mltrail.store.file._metrics import format_lines, group_by_key, history, to_metric
from mltrail.store.file._runs import (
    ARTIFACTS_DIR,
    METRICS_DIR,
    PARAMS_DIR,
    RUN_NAME_TAG,
    TAGS_DIR,
    RunFolder,
    RunRow,
    key_path,
    read_values,
)
from mltrail.store.file._uris import append_to_uri, resolve_local_uri, uri_to_path
from mltrail.store.file._yaml import MalformedMeta, dump_meta, load_meta
from mltrail.store.file.analytics import FileAnalytics
from mltrail.store.paging import decode_offset, offset_token
from mltrail.validation import (
    validate_artifact_location,
    validate_batch,
    validate_experiment_id,
    validate_experiment_name,
    validate_experiment_tag,
    validate_key,
    validate_max_results,
    validate_metric,
    validate_new_run_id,
    validate_param,
    validate_run_id,
    validate_tag,
)

T = TypeVar("T")
_log = logging.getLogger(__name__)

META = "meta.yaml"
TRASH = ".trash"
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
#: Sub-folders of an experiment that are not runs.
RESERVED_EXPERIMENT_FOLDERS = frozenset((TAGS_DIR, DATASETS_DIR, "traces", "models"))
_EXPERIMENT_ATTRIBUTES = frozenset((*EXPERIMENT_STRING_ATTRIBUTES, *EXPERIMENT_NUMERIC_ATTRIBUTES))


def _paginate(items: list[T], page_token: str | None, max_results: int) -> tuple[list[T], str | None]:
    offset = decode_offset(page_token)
    end = offset + max_results
    return items[offset:end], offset_token(end) if end < len(items) else None


def _inactive_run(run_id: str) -> MltrailException:
    return MltrailException.invalid_parameter(
        f"The run {run_id} must be in the 'active' state. Current state is deleted."
    )


def _inactive_experiment(experiment_id: str) -> MltrailException:
    return MltrailException.invalid_parameter(
        f"The experiment {experiment_id} must be in the 'active' state. Current state is deleted."
    )


def _experiment_not_found(experiment_id: str) -> MltrailException:
    return MltrailException.not_found(f"No Experiment with id={experiment_id} exists")


class _ExperimentRow:
    """Search row over a loaded experiment."""

    __slots__ = ("experiment",)

    def __init__(self, experiment: Experiment) -> None:
        self.experiment = experiment

    def value(self, identifier: Identifier) -> object | None:
        if identifier.kind == "tag":
            return self.experiment.tags.get(identifier.key)
        if identifier.kind == "attribute" and identifier.key in _EXPERIMENT_ATTRIBUTES:
            return getattr(self.experiment, identifier.key)
        return None


class FileStore(FileAnalytics):
    """Tracking store over an MLflow-compatible ``mlruns`` folder (see the module docstring)."""

    def __init__(self, root: str = "./mlruns", artifact_root: str | None = None) -> None:
        self.root = os.path.abspath(uri_to_path(root))
        self.trash = os.path.join(self.root, TRASH)
        self.artifact_root_uri = resolve_local_uri(artifact_root) if artifact_root else pathlib.Path(self.root).as_uri()
        self._ready = False
        #: run id -> experiment id, to find run folders without scanning every experiment.
        self._run_experiment: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"FileStore({self.root!r})"

    # --- folders -----------------------------------------------------------------------------------
    def _ensure_ready(self) -> None:
        """Create the root, ``.trash`` and the Default experiment ``0`` on first use (like MLflow)."""
        if self._ready:
            return
        os.makedirs(self.trash, exist_ok=True)
        if self._experiment_dir(DEFAULT_EXPERIMENT_ID) is None:
            with _fs.locked(self.root):
                if self._experiment_dir(DEFAULT_EXPERIMENT_ID) is None:
                    self._write_experiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, None, ())
        self._ready = True

    def _experiment_dir(self, experiment_id: str) -> tuple[str, bool] | None:
        """(folder, is_deleted) of an experiment with a meta.yaml, looking in the root, then in ``.trash``."""
        for parent, deleted in ((self.root, False), (self.trash, True)):
            path = os.path.join(parent, experiment_id)
            if os.path.isfile(os.path.join(path, META)):
                return path, deleted
        return None

    def _experiment_ids(self, deleted: bool) -> list[str]:
        names = _fs.list_subdirs(self.trash if deleted else self.root)
        return [n for n in names if not n.startswith(".") and not _fs.is_temporary(n)]

    def _run_names(self, experiment_dir: str) -> Iterator[str]:
        for name in _fs.list_subdirs(experiment_dir):
            if name not in RESERVED_EXPERIMENT_FOLDERS and not name.startswith(".") and not _fs.is_temporary(name):
                yield name

    @staticmethod
    def _listed_run_meta(run_dir: str) -> dict[str, Any] | None:
        """meta.yaml of a folder met while listing: None if it is no run (no, empty or unparsable meta.yaml)."""
        text = _fs.read_text(os.path.join(run_dir, META))
        if not text:
            return None
        try:
            return load_meta(text)
        except MalformedMeta as exc:
            _log.warning("Skipping run folder %s: %s", run_dir, exc.message)
            return None

    # --- experiments -------------------------------------------------------------------------------
    def _read_experiment(self, experiment_id: str, path: str, deleted: bool) -> Experiment | None:
        text = _fs.read_text(os.path.join(path, META))
        if text is None:
            return None
        meta = load_meta(text)
        if str(meta.get("experiment_id")) != experiment_id:
            return None  # MLflow ignores experiments whose meta.yaml names another id
        return experiment_from_meta(meta, deleted, read_values(path, TAGS_DIR))

    def _all_experiments(self, view_type: ViewType) -> list[Experiment]:
        experiments = []
        for deleted in (False, True):
            if (DELETED if deleted else ACTIVE) not in view_type.stages():
                continue
            parent = self.trash if deleted else self.root
            for experiment_id in self._experiment_ids(deleted):
                try:
                    experiment = self._read_experiment(experiment_id, os.path.join(parent, experiment_id), deleted)
                except MalformedMeta as exc:
                    _log.warning("Skipping experiment folder %s: %s", experiment_id, exc.message)
                    continue
                if experiment is not None:
                    experiments.append(experiment)
        return experiments

    def _check_name_free(self, name: str, except_id: str | None = None) -> None:
        for experiment in self._all_experiments(ViewType.ALL):
            if experiment.name == name and experiment.experiment_id != except_id:
                raise MltrailException.already_exists(f"Experiment(name={name}) already exists.")

    def _write_experiment(
        self, experiment_id: str, name: str, artifact_location: str | None, tags: Sequence[tuple[str, str]]
    ) -> None:
        """Build the experiment in a temporary folder and rename it into place (readers see all or nothing)."""
        location = artifact_location or append_to_uri(self.artifact_root_uri, experiment_id)
        temp = _fs.temporary_sibling(os.path.join(self.root, ""))
        os.mkdir(temp)
        try:
            meta = new_experiment_meta(experiment_id, name, location, _ids.now_ms())
            _fs.replace_file(os.path.join(temp, META), dump_meta(meta))
            for key, value in tags:
                self._write_value(temp, TAGS_DIR, key, value)
            os.rename(temp, os.path.join(self.root, experiment_id))
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Sequence[ExperimentTag] | None = None
    ) -> str:
        validate_experiment_name(name)
        location = validate_artifact_location(artifact_location)
        checked_tags = [validate_experiment_tag(t.key, t.value) for t in tags or ()]
        self._ensure_ready()
        with _fs.locked(self.root):
            self._check_name_free(name)
            while True:
                experiment_id = _ids.new_experiment_id()
                if self._experiment_dir(experiment_id) is None and not os.path.exists(
                    os.path.join(self.root, experiment_id)
                ):
                    break
            self._write_experiment(experiment_id, name, resolve_local_uri(location) if location else None, checked_tags)
        return experiment_id

    def _locate_experiment(self, experiment_id: str) -> tuple[str, bool]:
        experiment_id = validate_experiment_id(experiment_id)
        self._ensure_ready()
        found = self._experiment_dir(experiment_id)
        if found is None:
            raise _experiment_not_found(experiment_id)
        return found

    def get_experiment(self, experiment_id: str) -> Experiment:
        path, deleted = self._locate_experiment(experiment_id)
        experiment = self._read_experiment(str(experiment_id), path, deleted)
        if experiment is None:
            raise _experiment_not_found(experiment_id)
        return experiment

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        self._ensure_ready()
        candidates = [e for e in self._all_experiments(ViewType.ALL) if e.name == name]
        candidates.sort(key=lambda e: e.lifecycle_stage != ACTIVE)
        return candidates[0] if candidates else None

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        from mltrail.search.in_memory import compile_filter, sort_rows
        from mltrail.search.parser import parse_experiment_filter, parse_experiment_order_by

        limit = validate_max_results(max_results)
        predicate = compile_filter(parse_experiment_filter(filter_string))
        order = parse_experiment_order_by(order_by)
        self._ensure_ready()
        rows = [_ExperimentRow(e) for e in self._all_experiments(ViewType.parse(view_type))]
        page, token = _paginate(sort_rows([r for r in rows if predicate(r)], order), page_token, limit)
        return PagedList([r.experiment for r in page], token)

    def delete_experiment(self, experiment_id: str) -> None:
        experiment_id = validate_experiment_id(experiment_id)
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            raise MltrailException.invalid_parameter(
                f"Cannot delete the default experiment '{DEFAULT_EXPERIMENT_ID}'. "
                "This is an internally reserved experiment."
            )
        self._ensure_ready()
        with _fs.locked(self.root):
            found = self._experiment_dir(experiment_id)
            if found is None or found[1]:
                raise _experiment_not_found(experiment_id)
            now = max(_ids.now_ms(), self._latest_run_deletion(found[0]) + 1)
            # Move first: from this moment the experiment and all its runs read as deleted.
            trashed = os.path.join(self.trash, experiment_id)
            if os.path.exists(trashed):
                raise MltrailException(
                    f"Cannot delete experiment {experiment_id}: '{trashed}' already exists.", ErrorCode.INVALID_STATE
                )
            os.rename(found[0], trashed)
            for run_id in self._run_names(trashed):
                self._update_run_meta(trashed, run_id, lambda m: _mark_deleted(m, now), only_if=ACTIVE)
            self._update_meta(trashed, {"lifecycle_stage": DELETED, "last_update_time": now})

    def _latest_run_deletion(self, experiment_dir: str) -> int:
        """Latest deleted_time among the experiment's runs: its deletion time must differ from all of them, so
        that restoring it brings back exactly the runs it deleted."""
        latest = 0
        for run_id in self._run_names(experiment_dir):
            meta = self._listed_run_meta(os.path.join(experiment_dir, run_id))
            deleted_time = meta.get("deleted_time") if meta else None
            if isinstance(deleted_time, int):
                latest = max(latest, deleted_time)
        return latest

    def restore_experiment(self, experiment_id: str) -> None:
        """Restores the experiment and the runs its deletion marked (their deleted_time is the deletion time)."""
        experiment_id = validate_experiment_id(experiment_id)
        self._ensure_ready()
        with _fs.locked(self.root):
            found = self._experiment_dir(experiment_id)
            if found is None or not found[1]:
                raise _experiment_not_found(experiment_id)
            if os.path.exists(os.path.join(self.root, experiment_id)):
                raise MltrailException.already_exists(
                    f"Cannot restore experiment with ID {experiment_id}. An experiment with same ID already exists."
                )
            trashed = found[0]
            meta = load_meta(_fs.read_text(os.path.join(trashed, META)) or "")
            deleted_at = meta.get("last_update_time")
            for run_id in self._run_names(trashed):
                self._update_run_meta(
                    trashed, run_id, _mark_active, only_if=DELETED, when=lambda m: m.get("deleted_time") == deleted_at
                )
            self._update_meta(trashed, {"lifecycle_stage": ACTIVE, "last_update_time": _ids.now_ms()})
            os.rename(trashed, os.path.join(self.root, experiment_id))

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validate_experiment_name(new_name)
        experiment_id = validate_experiment_id(experiment_id)
        self._ensure_ready()
        with _fs.locked(self.root):
            path, deleted = self._locate_experiment(experiment_id)
            if deleted:
                raise MltrailException("Cannot rename a non-active experiment.", ErrorCode.INVALID_STATE)
            self._check_name_free(new_name, except_id=experiment_id)
            self._update_meta(path, {"name": new_name, "last_update_time": _ids.now_ms()})

    def _active_experiment_dir(self, experiment_id: str) -> str:
        path, deleted = self._locate_experiment(experiment_id)
        if deleted:
            raise _inactive_experiment(experiment_id)
        return path

    def set_experiment_tag(self, experiment_id: str, tag: ExperimentTag) -> None:
        key, value = validate_experiment_tag(tag.key, tag.value)
        self._write_value(self._active_experiment_dir(experiment_id), TAGS_DIR, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        validate_key(key, "key")
        path = self._active_experiment_dir(experiment_id)
        if not _fs.remove_file(key_path(path, TAGS_DIR, key)):
            raise MltrailException.not_found(f"No tag with name: {key} in experiment with id {experiment_id}")

    # --- meta.yaml updates -------------------------------------------------------------------------
    def _update_meta(self, directory: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Read-modify-write of ``directory/meta.yaml``; caller holds the lock that serializes such changes."""
        path = os.path.join(directory, META)
        text = _fs.read_text(path)
        if text is None:
            raise MltrailException(f"Missing {path}", ErrorCode.INTERNAL_ERROR)
        meta = load_meta(text)
        meta.update(changes)
        _fs.replace_file(path, dump_meta(meta))
        return meta

    def _update_run_meta(
        self,
        experiment_dir: str,
        run_id: str,
        change: Callable[[dict[str, Any]], None],
        only_if: str | None = None,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any] | None:
        """Apply ``change`` to a run's meta under the run folder's lock; None if skipped or not a run."""
        run_dir = os.path.join(experiment_dir, run_id)
        path = os.path.join(run_dir, META)
        with _fs.locked(run_dir):
            meta = self._listed_run_meta(run_dir)
            if meta is None:
                return None
            stage = meta.get("lifecycle_stage") or ACTIVE
            if (only_if is not None and stage != only_if) or (when is not None and not when(meta)):
                return None
            change(meta)
            _fs.replace_file(path, dump_meta(meta))
            return meta

    # --- runs: finding them --------------------------------------------------------------------------
    def _find_run(self, run_id: str) -> RunFolder:
        """The folder of a run (active or deleted), or RESOURCE_DOES_NOT_EXIST."""
        run_id = validate_run_id(run_id)
        self._ensure_ready()
        if run_id not in RESERVED_EXPERIMENT_FOLDERS:
            cached = self._run_experiment.get(run_id)
            candidates = [cached] if cached is not None else []
            for experiment_id in candidates + [e for e in self._all_experiment_ids() if e != cached]:
                folder = self._load_run_folder(run_id, experiment_id)
                if folder is not None:
                    self._run_experiment[run_id] = experiment_id
                    return folder
        raise MltrailException.not_found(f"Run with id={run_id} not found")

    def _all_experiment_ids(self) -> list[str]:
        return self._experiment_ids(False) + self._experiment_ids(True)

    def _load_run_folder(self, run_id: str, experiment_id: str) -> RunFolder | None:
        for parent, in_trash in ((self.root, False), (self.trash, True)):
            experiment_dir = os.path.join(parent, experiment_id)
            text = _fs.read_text(os.path.join(experiment_dir, run_id, META))
            if text:
                return RunFolder(run_id, experiment_id, experiment_dir, in_trash, load_meta(text))
        return None

    def _active_run(self, run_id: str) -> RunFolder:
        folder = self._find_run(run_id)
        if folder.lifecycle_stage != ACTIVE:
            raise _inactive_run(run_id)
        return folder

    def _write_to_run(self, run_id: str, write: Callable[[RunFolder], T]) -> T:
        """Run ``write`` on the active run; if the folder moved meanwhile (experiment deleted), look again once."""
        try:
            return write(self._active_run(run_id))
        except (FileNotFoundError, NotADirectoryError):
            self._run_experiment.pop(run_id, None)
            return write(self._active_run(run_id))

    # --- runs --------------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str | None = None,
        start_time: int | None = None,
        tags: Sequence[RunTag] | None = None,
        run_name: str | None = None,
        run_id: str | None = None,
    ) -> Run:
        experiment_id = DEFAULT_EXPERIMENT_ID if experiment_id is None else str(experiment_id)
        checked_tags = [validate_tag(t) for t in tags or ()]
        if run_id is not None:
            validate_new_run_id(run_id)
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != ACTIVE:
            raise _inactive_experiment(experiment_id)
        if run_id is not None and (existing := self._replayed_run(run_id, experiment_id)) is not None:
            return existing
        name_tag = next((t.value for t in reversed(checked_tags) if t.key == RUN_NAME_TAG), None)
        if run_name and name_tag and run_name != name_tag:
            raise MltrailException.invalid_parameter(
                "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{run_name}', mlflow.runName='{name_tag}')."
            )
        run_name = run_name or name_tag or _ids.random_run_name()
        if name_tag is None:
            checked_tags.append(RunTag(RUN_NAME_TAG, run_name))
        given_id = run_id
        run_id = run_id or _ids.new_run_id()
        info = RunInfo(
            run_id=run_id,
            experiment_id=experiment_id,
            run_name=run_name,
            user_id=user_id or "",
            status=RunStatus.RUNNING,
            start_time=_ids.now_ms() if start_time is None else int(start_time),
            end_time=None,
            artifact_uri=append_to_uri(experiment.artifact_location, run_id, ARTIFACTS_DIR),
        )
        experiment_dir, _ = self._locate_experiment(experiment_id)
        try:
            self._write_run(experiment_dir, info, user_id, checked_tags)
        except FileNotFoundError:
            raise _inactive_experiment(experiment_id) from None  # deleted (moved to .trash) meanwhile
        except OSError:  # the folder exists: created meanwhile by a concurrent replay with the same id
            existing = self._replayed_run(run_id, experiment_id) if given_id else None
            if existing is None:
                raise
            return existing
        self._run_experiment[run_id] = experiment_id
        tags_dict = {t.key: t.value for t in checked_tags}
        return Run(info, RunData(params={}, tags=tags_dict))

    def _replayed_run(self, run_id: str, experiment_id: str) -> Run | None:
        """The existing run ``run_id`` of a create_run replay; None if there is none. The same id in another
        experiment is an error (a run belongs to one experiment)."""
        try:
            folder = self._find_run(run_id)
        except MltrailException as exc:
            if exc.error_code == ErrorCode.RESOURCE_DOES_NOT_EXIST:
                return None
            raise
        if folder.experiment_id != experiment_id:
            raise MltrailException.already_exists(
                f"Run with id={run_id} already exists in experiment {folder.experiment_id}."
            )
        return folder.to_run()

    def _write_run(self, experiment_dir: str, info: RunInfo, user_id: str | None, tags: Sequence[RunTag]) -> None:
        """Build the run folder under a temporary name and rename it into place (all or nothing)."""
        temp = _fs.temporary_sibling(os.path.join(experiment_dir, ""))
        os.mkdir(temp)
        try:
            for sub in (METRICS_DIR, PARAMS_DIR, TAGS_DIR, ARTIFACTS_DIR):
                os.mkdir(os.path.join(temp, sub))
            _fs.replace_file(os.path.join(temp, META), dump_meta(new_run_meta(info, user_id)))
            for tag in tags:
                self._write_value(temp, TAGS_DIR, tag.key, tag.value)
            os.rename(temp, os.path.join(experiment_dir, info.run_id))
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def get_run(self, run_id: str) -> Run:
        return self._find_run(run_id).to_run()

    def update_run_info(
        self,
        run_id: str,
        run_status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        changes: dict[str, Any] = {}
        if run_status is not None:
            changes["status"] = RunStatus.parse(run_status).number
        if end_time is not None:
            changes["end_time"] = int(end_time)
        return self._update_run(run_id, changes, run_name or None)

    def _update_run(self, run_id: str, changes: dict[str, Any], run_name: str | None) -> RunInfo:
        """Change meta.yaml fields of an active run; a new ``run_name`` (even empty) also sets the
        ``mlflow.runName`` tag, under the same lock so that the two always agree."""

        def change(folder: RunFolder, meta: dict[str, Any]) -> None:
            meta.update(changes)
            if run_name is not None:
                meta["run_name"] = run_name
                self._write_value(folder.path, TAGS_DIR, RUN_NAME_TAG, run_name)

        def write(folder: RunFolder) -> RunInfo:
            meta = self._update_run_meta(folder.experiment_dir, run_id, lambda m: change(folder, m), only_if=ACTIVE)
            if meta is None:  # deleted since _write_to_run looked
                raise _inactive_run(run_id)
            return run_info_from_meta(meta, folder.run_id, folder.experiment_id, folder.in_trash)

        return self._write_to_run(run_id, write)

    def delete_run(self, run_id: str) -> None:
        folder = self._find_run(run_id)
        now = _ids.now_ms()
        self._update_run_meta(folder.experiment_dir, folder.run_id, lambda m: _mark_deleted(m, now))

    def restore_run(self, run_id: str) -> None:
        folder = self._find_run(run_id)
        self._update_run_meta(folder.experiment_dir, folder.run_id, _mark_active)

    # --- run data ----------------------------------------------------------------------------------
    @staticmethod
    def _write_value(base: str, subdir: str, key: str, value: str) -> None:
        """Atomically (re)write the file of a tag."""
        path = key_path(base, subdir, key)
        try:
            _fs.replace_file(path, value.encode("utf-8"))
        except FileNotFoundError:
            _fs.make_dirs(base, f"{subdir}/{os.path.dirname(key)}")
            _fs.replace_file(path, value.encode("utf-8"))

    @staticmethod
    def _append_metrics(run_dir: str, key: str, data: bytes) -> None:
        path = key_path(run_dir, METRICS_DIR, key)
        try:
            _fs.append(path, data)
        except FileNotFoundError:
            _fs.make_dirs(run_dir, f"{METRICS_DIR}/{os.path.dirname(key)}")
            _fs.append(path, data)

    @staticmethod
    def _create_param(folder: RunFolder, param: Param) -> None:
        """Create the param file exclusively; an existing different value is an error, the same value a no-op."""
        path = key_path(folder.path, PARAMS_DIR, param.key)
        data = param.value.encode("utf-8")
        try:
            created = _fs.create_exclusive(path, data)
        except FileNotFoundError:
            _fs.make_dirs(folder.path, f"{PARAMS_DIR}/{os.path.dirname(param.key)}")
            created = _fs.create_exclusive(path, data)
        if not created:
            _check_param_unchanged(folder.run_id, param, _fs.read_text(path))

    def log_metric(self, run_id: str, metric: Metric) -> None:
        metric = validate_metric(metric)
        self._write_to_run(run_id, lambda f: self._append_metrics(f.path, metric.key, format_lines([metric])))

    def log_param(self, run_id: str, param: Param) -> None:
        param = validate_param(param)
        self._write_to_run(run_id, lambda f: self._create_param(f, param))

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        tag = validate_tag(tag)
        if tag.key == RUN_NAME_TAG:
            self._update_run(run_id, {}, tag.value)
            return
        self._write_to_run(run_id, lambda f: self._write_value(f.path, TAGS_DIR, tag.key, tag.value))

    def delete_tag(self, run_id: str, key: str) -> None:
        validate_key(key, "key")

        def write(folder: RunFolder) -> None:
            if not _fs.remove_file(key_path(folder.path, TAGS_DIR, key)):
                raise MltrailException.not_found(f"No tag with name: {key} in run with id {run_id}")

        self._write_to_run(run_id, write)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Validated as a whole, then params, metrics (one append per key) and tags are written.

        Params are checked against the stored ones before anything is written, so a conflicting value
        rejects the whole batch."""
        metrics, params, tags = validate_batch(metrics, params, tags)

        def write(folder: RunFolder) -> None:
            for param in params:
                stored = _fs.read_text(key_path(folder.path, PARAMS_DIR, param.key))
                _check_param_unchanged(folder.run_id, param, stored)
            for param in params:
                self._create_param(folder, param)
            for key, points in group_by_key(metrics).items():
                self._append_metrics(folder.path, key, format_lines(points))
            for tag in tags:
                if tag.key != RUN_NAME_TAG:
                    self._write_value(folder.path, TAGS_DIR, tag.key, tag.value)

        self._write_to_run(run_id, write)
        name = next((t.value for t in reversed(tags) if t.key == RUN_NAME_TAG), None)
        if name is not None:
            self._update_run(run_id, {}, name)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput] = ()) -> None:
        validate_dataset_inputs(datasets)
        if datasets:
            self._write_to_run(run_id, lambda f: write_dataset_inputs(f.experiment_dir, f.path, f.run_id, datasets))

    def get_metric_history(
        self, run_id: str, metric_key: str, max_results: int | None = None, page_token: str | None = None
    ) -> PagedList[Metric]:
        validate_key(metric_key, "metric_key")
        if max_results is not None:
            validate_max_results(max_results)
        folder = self._find_run(run_id)
        data = _fs.read_bytes(key_path(folder.path, METRICS_DIR, metric_key))
        points = history(data, metric_key, folder.experiment_id) if data else []
        metrics = [to_metric(metric_key, p, folder.run_id) for p in points]
        if max_results is None:
            return PagedList(metrics[decode_offset(page_token) :], None)
        page, token = _paginate(metrics, page_token, max_results)
        return PagedList(page, token)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        from mltrail.search.in_memory import compile_filter, sort_rows
        from mltrail.search.parser import parse_run_filter, parse_run_order_by

        limit = validate_max_results(max_results)
        predicate = compile_filter(parse_run_filter(filter_string))
        order = parse_run_order_by(order_by)
        stages = ViewType.parse(run_view_type).stages()
        self._ensure_ready()
        rows = [row for row in self._run_rows(experiment_ids, stages) if predicate(row)]
        page, token = _paginate(sort_rows(rows, order), page_token, limit)
        return PagedList([row.folder.to_run() for row in page], token)

    def _run_rows(self, experiment_ids: Sequence[str], stages: tuple[str, ...]) -> Iterator[RunRow]:
        for experiment_id in dict.fromkeys(str(e) for e in experiment_ids):
            found = self._experiment_dir(validate_experiment_id(experiment_id))
            if found is None:
                continue
            experiment_dir, in_trash = found
            for run_id in self._run_names(experiment_dir):
                meta = self._listed_run_meta(os.path.join(experiment_dir, run_id))
                if meta is None:
                    continue  # not a run (MLflow skips such folders too)
                folder = RunFolder(run_id, experiment_id, experiment_dir, in_trash, meta)
                if folder.lifecycle_stage in stages:
                    yield RunRow(folder)

    # --- garbage collection (``mltrail gc``) -----------------------------------------------------------
    def get_deleted_runs(self, older_than_ms: int | None = None) -> list[str]:
        """Ids of deleted runs (including those of deleted experiments) deleted at least ``older_than_ms`` ago.

        Runs without a recorded deletion time (written by old MLflow versions) always qualify."""
        self._ensure_ready()
        cutoff = None if older_than_ms is None else _ids.now_ms() - older_than_ms
        run_ids = []
        for experiment_id in self._all_experiment_ids():
            for row in self._run_rows([experiment_id], (DELETED,)):
                deleted_time = row.folder.meta.get("deleted_time")
                if cutoff is None or deleted_time is None or int(deleted_time) <= cutoff:
                    run_ids.append(row.folder.run_id)
        return run_ids

    def hard_delete_run(self, run_id: str) -> None:
        folder = self._find_run(run_id)
        shutil.rmtree(folder.path)
        self._run_experiment.pop(folder.run_id, None)

    def hard_delete_experiment(self, experiment_id: str) -> None:
        """Remove a deleted experiment for good (its name becomes free again)."""
        experiment_id = validate_experiment_id(experiment_id)
        self._ensure_ready()
        with _fs.locked(self.root):
            found = self._experiment_dir(experiment_id)
            if found is None or not found[1]:
                raise _experiment_not_found(experiment_id)
            shutil.rmtree(found[0])


def _mark_deleted(meta: dict[str, Any], now: int) -> None:
    meta["lifecycle_stage"] = DELETED
    meta["deleted_time"] = now


def _mark_active(meta: dict[str, Any]) -> None:
    meta["lifecycle_stage"] = ACTIVE
    meta.pop("deleted_time", None)


def _check_param_unchanged(run_id: str, param: Param, stored: str | None) -> None:
    if stored is not None and stored != param.value:
        raise MltrailException.invalid_parameter(
            f"Changing param values is not allowed. Param with key='{param.key}' was already logged with "
            f"value='{stored}' for run ID='{run_id}'. Attempted logging new value '{param.value}'."
        )
