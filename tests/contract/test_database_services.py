"""The rule for database services: CI=true turns an unreachable service into a failure, locally into a skip."""

from __future__ import annotations

import pytest

import databases


@pytest.fixture
def unreachable_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(databases.SERVERS, "postgres", "postgresql+psycopg://postgres@127.0.0.1:1")


@pytest.mark.usefixtures("unreachable_postgres")
def test_unreachable_service_fails_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not reachable"):
        databases.require_server("postgres")


@pytest.mark.usefixtures("unreachable_postgres")
def test_unreachable_service_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not reachable"):
        databases.require_server("postgres")
