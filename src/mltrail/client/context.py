"""System tags recorded when the fluent API starts a run: who, which script, which git commit.

The git commit is read from ``.git`` files directly: spawning ``git`` or importing GitPython would cost more
than the whole rest of ``start_run``.
"""

from __future__ import annotations

import getpass
import os
import sys

MLFLOW_USER = "mlflow.user"
MLFLOW_SOURCE_NAME = "mlflow.source.name"
MLFLOW_SOURCE_TYPE = "mlflow.source.type"
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
MLFLOW_NOTE = "mlflow.note.content"
MLFLOW_DATASET_CONTEXT = "mlflow.data.context"


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (e.g. a container user without passwd entry)
        return "unknown"


def source_name() -> str:
    return sys.argv[0] if sys.argv and sys.argv[0] else "<console>"


def system_tags() -> dict[str, str]:
    tags = {MLFLOW_USER: current_user(), MLFLOW_SOURCE_NAME: source_name(), MLFLOW_SOURCE_TYPE: "LOCAL"}
    main_file = source_name()
    if os.path.isfile(main_file):
        commit = git_commit(os.path.dirname(os.path.abspath(main_file)))
        if commit:
            tags[MLFLOW_GIT_COMMIT] = commit
    return tags


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _git_dir(start: str) -> str | None:
    """The git directory of the repository containing ``start`` (``.git`` may be a ``gitdir:`` file)."""
    directory = os.path.abspath(start)
    while True:
        dot_git = os.path.join(directory, ".git")
        if os.path.isdir(dot_git):
            return dot_git
        if os.path.isfile(dot_git):
            text = _read(dot_git) or ""
            if text.startswith("gitdir:"):
                return os.path.normpath(os.path.join(directory, text[len("gitdir:") :].strip()))
            return None
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _resolve_ref(git_dir: str, ref: str) -> str | None:
    # Worktrees keep shared refs in the "common" directory.
    common = _read(os.path.join(git_dir, "commondir"))
    dirs = [git_dir] + ([os.path.normpath(os.path.join(git_dir, common))] if common else [])
    for directory in dirs:
        sha = _read(os.path.join(directory, *ref.split("/")))
        if sha:
            return sha
    for directory in dirs:
        for line in (_read(os.path.join(directory, "packed-refs")) or "").splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and not line.startswith(("#", "^")):
                return sha
    return None


def git_commit(path: str) -> str | None:
    """Commit checked out in the repository containing ``path``, or ``None`` (not a repo, unborn branch)."""
    git_dir = _git_dir(path)
    head = _read(os.path.join(git_dir, "HEAD")) if git_dir else None
    if not head:
        return None
    if head.startswith("ref:"):
        return _resolve_ref(git_dir, head[len("ref:") :].strip())
    return head
