"""Tracking URI resolution and the store registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mltrail
from mltrail import config
from mltrail.errors import MltrailException
from mltrail.store.file import FileStore
from mltrail.store.registry import get_tracking_store, normalize_tracking_uri


def test_tracking_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mltrail.get_tracking_uri() == (tmp_path / "mlruns").as_uri()
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert mltrail.get_tracking_uri() == (sub / "mlruns").as_uri()  # resolved at call time
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert mltrail.get_tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", "sqlite:///mltrail.db")
    assert mltrail.get_tracking_uri() == "sqlite:///mltrail.db"
    mltrail.set_tracking_uri(tmp_path / "explicit")
    assert mltrail.get_tracking_uri() == str(tmp_path / "explicit")
    mltrail.set_tracking_uri(None)
    assert mltrail.get_tracking_uri() == "sqlite:///mltrail.db"


def test_env_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_SOMETHING", "1")
    assert config.get_env_bool("SOMETHING") is True
    monkeypatch.setenv("MLTRAIL_SOMETHING", "off")
    assert config.get_env_bool("SOMETHING") is False
    monkeypatch.setenv("MLTRAIL_SOMETHING", "maybe")
    with pytest.raises(ValueError):
        config.get_env_bool("SOMETHING")
    monkeypatch.setenv("MLTRAIL_SIZE", "12")
    assert config.get_env_int("SIZE", 5) == 12 and config.get_env_int("UNSET_SIZE", 5) == 5


def test_store_by_scheme_and_cache(tmp_path: Path) -> None:
    store = get_tracking_store(str(tmp_path / "mlruns"))
    assert isinstance(store, FileStore)
    assert get_tracking_store((tmp_path / "mlruns").as_uri()) is not None
    assert get_tracking_store(str(tmp_path / "mlruns")) is store  # one instance per URI
    assert get_tracking_store("mlruns") is store  # relative to the current directory (tmp_path)
    assert get_tracking_store() is get_tracking_store((tmp_path / "mlruns").as_uri())
    for uri in ("gs://bucket", "mongodb://host/db"):
        with pytest.raises(MltrailException) as caught:
            get_tracking_store(uri)
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_sql_uris_are_made_absolute(tmp_path: Path) -> None:
    assert normalize_tracking_uri("sqlite:///rel.db") == f"sqlite:///{os.path.join(str(tmp_path), 'rel.db')}"
    assert normalize_tracking_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert normalize_tracking_uri("sqlite:///:memory:") == "sqlite:///:memory:"
    assert normalize_tracking_uri("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
