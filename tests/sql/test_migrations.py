"""Schema creation and upgrades: Alembic revisions, concurrent first opens, out-of-date databases, the db CLI."""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from mltrail.cli import cli
from mltrail.errors import MltrailException
from mltrail.store.sql import SqlStore
from mltrail.store.sql import schema as t
from mltrail.store.sql.migrate import HEAD_REVISION, MIGRATIONS_DIR, VERSION_TABLE, upgrade

from .helpers import engine_for


def test_head_revision_constant_matches_the_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrated_schema_matches_the_tables_the_queries_use(db_uri: str) -> None:
    SqlStore(db_uri)  # the session database is migrated on first open
    with engine_for(db_uri) as engine, engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, t.metadata) if VERSION_TABLE not in repr(d)]
    assert differences == []


def _open_store(uri: str, barrier: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    try:
        barrier.wait(timeout=60)
        SqlStore(uri).get_experiment("0")
    except BaseException:
        errors.put(traceback.format_exc())


def test_concurrent_first_opens_migrate_exactly_once(fresh_db_uri: str) -> None:
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(8), context.Queue()
    processes = [context.Process(target=_open_store, args=(fresh_db_uri, barrier, errors)) for _ in range(8)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == [] and all(p.exitcode == 0 for p in processes), failures
    with engine_for(fresh_db_uri) as engine, engine.connect() as connection:
        # A second migration would have failed (tables exist, Default inserted twice): one version row, one Default.
        assert connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all() == [
            HEAD_REVISION
        ]
        assert connection.execute(sa.select(t.experiments.c.name)).scalars().all() == ["Default"]


def test_out_of_date_database_is_refused_until_db_upgrade(fresh_db_uri: str) -> None:
    with engine_for(fresh_db_uri) as engine:
        upgrade(engine, "0001")
    with pytest.raises(MltrailException) as info:
        SqlStore(fresh_db_uri)
    assert info.value.error_code == "INVALID_STATE"
    assert "found version 0001" in info.value.message
    assert "mltrail db upgrade" in info.value.message
    runner = CliRunner()
    current = runner.invoke(cli, ["db", "current", fresh_db_uri])
    assert current.exit_code == 0 and current.output.startswith("0001 ")
    upgraded = runner.invoke(cli, ["db", "upgrade", fresh_db_uri])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"from 0001 to revision {HEAD_REVISION}" in upgraded.output
    store = SqlStore(fresh_db_uri)
    assert store.get_experiment("0").name == "Default"
    assert runner.invoke(cli, ["db", "current", fresh_db_uri]).output.startswith(f"{HEAD_REVISION} (newest)")
    again = runner.invoke(cli, ["db", "upgrade", fresh_db_uri])
    assert again.exit_code == 0 and "already at the newest revision" in again.output


def test_database_with_foreign_tables_is_refused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with engine_for(uri) as engine, engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)"))
    with pytest.raises(MltrailException) as info:
        SqlStore(uri)
    assert info.value.error_code == "INVALID_STATE" and "did not create" in info.value.message
