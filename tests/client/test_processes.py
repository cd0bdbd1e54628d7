"""Behaviour across process boundaries: interpreter exit, fork, import cost, git commit detection."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mltrail
from mltrail.client.context import git_commit
from mltrail.entities import RunStatus


def _run_script(directory: Path, source: str, tracking_uri: str) -> subprocess.CompletedProcess[str]:
    script = directory / "script.py"
    script.write_text(textwrap.dedent(source))
    env = {**os.environ, "MLTRAIL_TRACKING_URI": tracking_uri}
    return subprocess.run(
        [sys.executable, str(script)], cwd=directory, env=env, capture_output=True, text=True, timeout=120
    )


def _only_run(tracking_uri: str) -> mltrail.entities.Run:
    runs = mltrail.MlflowClient(tracking_uri).search_runs(["0"])
    assert len(runs) == 1
    return runs[0]


def test_exit_without_end_run_finishes_the_run_and_stores_every_metric(tracking_uri: str, tmp_path: Path) -> None:
    result = _run_script(
        tmp_path,
        """
        import mltrail
        mltrail.start_run()
        mltrail.log_param("p", "v")
        for step in range(20000):
            mltrail.log_metric("loss", step * 0.5, step=step)
        """,
        tracking_uri,
    )
    assert result.returncode == 0, result.stderr
    run = _only_run(tracking_uri)
    assert run.info.status == RunStatus.FINISHED and run.info.end_time is not None
    assert run.data.params == {"p": "v"}
    history = mltrail.MlflowClient(tracking_uri).get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(20000))


def test_exit_by_uncaught_exception_fails_the_run(tracking_uri: str, tmp_path: Path) -> None:
    result = _run_script(
        tmp_path,
        """
        import mltrail
        mltrail.start_run()
        mltrail.log_metric("m", 1.0)
        raise RuntimeError("training diverged")
        """,
        tracking_uri,
    )
    assert result.returncode == 1 and "training diverged" in result.stderr
    run = _only_run(tracking_uri)
    assert run.info.status == RunStatus.FAILED and run.data.metrics == {"m": 1.0}


def test_forked_child_logs_its_own_data_and_parent_data_is_not_duplicated(tracking_uri: str, tmp_path: Path) -> None:
    result = _run_script(
        tmp_path,
        """
        import os, sys
        import mltrail
        run = mltrail.start_run()
        for step in range(30000):
            mltrail.log_metric("parent", 1.0, step=step)
        print("pending at fork:", len(run.client.logger._queue))
        pid = os.fork()
        if pid == 0:
            for step in range(500):
                mltrail.log_metric("child", 2.0, step=step)
            sys.exit(0)  # normal exit: atexit flushes the child's data, and must not end the parent's run
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert mltrail.get_run(run.info.run_id).info.status == "RUNNING"
        mltrail.end_run()
        """,
        tracking_uri,
    )
    assert result.returncode == 0, result.stderr
    run = _only_run(tracking_uri)
    client = mltrail.MlflowClient(tracking_uri)
    assert run.info.status == RunStatus.FINISHED
    assert [m.step for m in client.get_metric_history(run.info.run_id, "parent")] == list(range(30000))
    assert [m.step for m in client.get_metric_history(run.info.run_id, "child")] == list(range(500))


def test_multiprocessing_child_data_is_flushed(tracking_uri: str, tmp_path: Path) -> None:
    result = _run_script(
        tmp_path,
        """
        import multiprocessing
        import mltrail

        def work(run_id):
            for step in range(300):
                mltrail.log_metric("worker", 1.0, step=step, run_id=run_id)

        if __name__ == "__main__":
            with mltrail.start_run() as run:
                process = multiprocessing.get_context("fork").Process(target=work, args=(run.info.run_id,))
                process.start()
                process.join()
                assert process.exitcode == 0
        """,
        tracking_uri,
    )
    assert result.returncode == 0, result.stderr
    run = _only_run(tracking_uri)
    history = mltrail.MlflowClient(tracking_uri).get_metric_history(run.info.run_id, "worker")
    assert len(history) == 300


def test_import_loads_no_heavy_module() -> None:
    heavy = ["sqlalchemy", "yaml", "requests", "numpy", "pandas", "fastapi", "PIL", "alembic", "click"]
    code = f"import sys, mltrail; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_git_commit_matches_git_itself(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert git_commit(str(repo / "src")) is None  # unborn branch
    (repo / "a.txt").write_text("a")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert git_commit(str(repo / "src")) == head
    subprocess.run([*git, "pack-refs", "--all"], check=True)  # refs now only in packed-refs
    assert git_commit(str(repo / "src")) == head
    subprocess.run([*git, "checkout", "-q", "--detach"], check=True)
    assert git_commit(str(repo)) == head
    worktree = tmp_path / "worktree"
    subprocess.run([*git, "worktree", "add", "-q", str(worktree)], check=True)
    assert git_commit(str(worktree)) == head
    assert git_commit(str(tmp_path)) is None


def test_start_run_records_the_scripts_git_commit(tracking_uri: str, tmp_path: Path) -> None:
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "init"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    result = _run_script(tmp_path, "import mltrail\nmltrail.start_run()\n", tracking_uri)
    assert result.returncode == 0, result.stderr
    tags = _only_run(tracking_uri).data.tags
    assert tags["mlflow.source.git.commit"] == head
    assert tags["mlflow.source.name"].endswith("script.py")
