"""API fuzzing with schemathesis over the server's generated OpenAPI schema: no input may cause an unexpected
server error. Deliberate 5xx answers with an MLflow error code (501 NOT_IMPLEMENTED for unsupported features,
500 INVALID_STATE as MLflow uses it) are fine; a 500 INTERNAL_ERROR or a non-JSON 5xx is a bug."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from mltrail.server.app import create_app

from .live import thread_server


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(f"sqlite:///{root}/fuzz.db", artifacts_destination=str(root / "artifacts"))
    with thread_server(app) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def no_unexpected_server_error(ctx, response, case) -> None:  # type: ignore[no-untyped-def]
    if response.status_code < 500:
        return
    try:
        code = response.json().get("error_code")
    except ValueError:
        code = None
    assert code not in (None, "INTERNAL_ERROR"), f"{response.status_code}: {response.text[:300]}"


schema = schemathesis.pytest.from_fixture("fuzz_schema").include(path_regex=r"^/(api/|get-artifact)")


@schema.parametrize()
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(checks=[no_unexpected_server_error])
