"""Security cases: path traversal (reference §11), Host and Origin checks, content type, body size, SSRF-prone
artifact locations, and response headers."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest
import requests

from mltrail.server import app as app_module
from mltrail.server.app import create_app

from .conftest import Api, Live, error_of, unique
from .live import thread_server

TRAVERSALS = [
    "../escape.txt",
    "a/../../escape.txt",
    "%2E%2E/escape.txt",
    "%2e%2e%2fescape.txt",
    "%252E%252E/escape.txt",
    "%25252e%25252e%25252fescape.txt",
    "..%5cescape.txt",
    "a%5C..%5C..%5Cescape.txt",
    "%2Fetc%2Fpasswd",
    "C:%5Cescape.txt",
    "C:/escape.txt",
    "a%23b/file.txt",
    "a%3B../file.txt",
    "a;x/file.txt",
    "a%00/file.txt",
]


def raw_request(url: str, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``path`` byte-for-byte (no client-side normalisation of ``..`` or percent escapes)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body or None, headers={"Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    status, content = response.status, response.read()
    conn.close()
    return status, content


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_rejected_on_every_method(live: Live, path: str) -> None:
    for prefix in ("/api/2.0", "/ajax-api/2.0"):
        base = f"{prefix}/mlflow-artifacts/artifacts/"
        for method in ("GET", "PUT", "DELETE"):
            status, content = raw_request(live.url, method, base + path, b"owned" if method == "PUT" else b"")
            assert status == 400, (method, path, content)
            assert b'"INVALID_PARAMETER_VALUE"' in content
        status, _ = raw_request(live.url, "GET", f"{prefix}/mlflow-artifacts/artifacts?path={path}")
        assert status == 400
    outside = live.destination.parent
    assert not any(p.name == "escape.txt" for p in outside.rglob("escape.txt"))


def test_traversal_through_tracking_endpoints(live: Live) -> None:
    api = Api(live.url)
    run_id = api.new_run()["info"]["run_id"]
    for path in ("../../../../etc/passwd", "%2E%2E/%2E%2E/etc/passwd", "/etc/passwd", "a/../../b"):
        error_of(api.get("artifacts/list", {"run_id": run_id, "path": path}), 400, "INVALID_PARAMETER_VALUE")
        response = requests.get(f"{live.url}/get-artifact", params={"run_id": run_id, "path": path})
        error_of(response, 400, "INVALID_PARAMETER_VALUE")


def test_raw_dotdot_in_url_path(live: Live) -> None:
    status, _ = raw_request(live.url, "GET", "/api/2.0/mlflow-artifacts/artifacts/../../../etc/passwd")
    assert status in (400, 404)
    status, _ = raw_request(live.url, "PUT", "/api/2.0/mlflow-artifacts/artifacts/x/../../../../tmp/owned.txt", b"x")
    assert status in (400, 404)
    assert not Path("/tmp/owned.txt").exists()


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest",
        "https://evil.example.com/artifacts",
        "ftp://evil.example.com/x",
        "sftp://user@evil.example.com/x",
        "mlflow-artifacts://evil.example.com:5000/x",
        "s3://bucket/path#frag",
        "s3://bucket/path;params",
        "s3://bucket/a/../../b",
        "runs:/abc/artifacts",
        "file://remote-host/share",
        "a" * 2049,
    ],
)
def test_dangerous_artifact_locations_are_rejected(live: Live, location: str) -> None:
    response = Api(live.url).post("experiments/create", {"name": unique(), "artifact_location": location})
    error_of(response, 400, "INVALID_PARAMETER_VALUE")


def test_trusted_hosts_are_accepted_in_artifact_locations(backend, tmp_path: Path) -> None:
    app = create_app(backend.uri, artifacts_destination="http://artifacts.internal:9000/store")
    with thread_server(app) as server:
        api = Api(server.url)
        api.ok_post(
            "experiments/create", {"name": unique(), "artifact_location": "http://artifacts.internal:9000/other"}
        )
        error_of(
            api.post("experiments/create", {"name": unique(), "artifact_location": "http://artifacts.internal:9001/x"}),
            400,
            "INVALID_PARAMETER_VALUE",
        )


def test_host_header_allowlist(live: Live) -> None:
    url = f"{live.url}/api/2.0/mlflow/experiments/get?experiment_id=0"
    for host in ("localhost:5000", "127.0.0.1", "[::1]:80", "192.168.1.20:5000", "10.0.0.3"):
        assert requests.get(url, headers={"Host": host}).status_code == 200, host
    for host in ("evil.com", "evil.com:5000", "8.8.8.8", "localhost.evil.com"):
        response = requests.get(url, headers={"Host": host})
        message = error_of(response, 403, "PERMISSION_DENIED")
        assert message == "Invalid Host header - possible DNS rebinding attack detected"
    assert requests.get(f"{live.url}/health", headers={"Host": "evil.com"}).text == "OK"
    assert requests.get(f"{live.url}/version", headers={"Host": "evil.com"}).status_code == 200


def test_configured_allowed_hosts(backend) -> None:
    app = create_app(backend.uri, allowed_hosts=["mltrail.example.com", "*.corp.example"])
    with thread_server(app) as server:
        url = f"{server.url}/api/2.0/mlflow/experiments/get?experiment_id=0"
        for host, status in (
            ("mltrail.example.com", 200),
            ("mltrail.example.com:8443", 200),
            ("ci.corp.example", 200),
            ("127.0.0.1:1", 200),
            ("192.168.1.2", 403),
            ("other.example.com", 403),
        ):
            assert requests.get(url, headers={"Host": host}).status_code == status, host


def test_cross_origin_writes_are_blocked(live: Live) -> None:
    url = f"{live.url}/api/2.0/mlflow/experiments/create"
    response = requests.post(url, json={"name": unique()}, headers={"Origin": "https://evil.example"})
    assert error_of(response, 403, "PERMISSION_DENIED") == "Cross-origin request blocked"
    response = requests.put(
        f"{live.url}/api/2.0/mlflow-artifacts/artifacts/cors/x.txt",
        data=b"1",
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert not (live.destination / "cors").exists()
    for origin in ("http://localhost:3000", "http://127.0.0.1:5000", live.url):
        response = requests.post(url, json={"name": unique()}, headers={"Origin": origin})
        assert response.status_code == 200, origin
        assert response.headers["access-control-allow-origin"] == origin
    read = requests.get(
        f"{live.url}/api/2.0/mlflow/experiments/get?experiment_id=0", headers={"Origin": "https://evil.example"}
    )
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


def test_cors_preflight(backend) -> None:
    app = create_app(backend.uri, cors_allowed_origins=["https://ui.example.com"])
    with thread_server(app) as server:
        url = f"{server.url}/api/2.0/mlflow/runs/log-batch"
        headers = {"Origin": "https://ui.example.com", "Access-Control-Request-Method": "POST"}
        ok = requests.options(url, headers={**headers, "Access-Control-Request-Headers": "content-type"})
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == "https://ui.example.com"
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert ok.headers["access-control-allow-headers"] == "content-type"
        denied = requests.options(url, headers={**headers, "Origin": "https://evil.example"})
        assert denied.status_code == 403
        created = requests.post(
            f"{server.url}/api/2.0/mlflow/experiments/create",
            json={"name": unique()},
            headers={"Origin": "https://ui.example.com"},
        )
        assert created.status_code == 200


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        (None, "Bad Request. Content-Type header is missing."),
        ("text/plain", "Bad Request. Content-Type must be one of ['application/json']."),
        ("application/x-www-form-urlencoded", "Bad Request. Content-Type must be one of ['application/json']."),
    ],
)
def test_json_api_requires_json_content_type(live: Live, content_type: str | None, message: str) -> None:
    name = unique()
    headers = {"Content-Type": content_type} if content_type else {}
    session = requests.Session()
    request = requests.Request("POST", f"{live.url}/api/2.0/mlflow/experiments/create", data=f'{{"name": "{name}"}}')
    prepared = session.prepare_request(request)
    prepared.headers.pop("Content-Type", None)
    prepared.headers.update(headers)
    assert error_of(session.send(prepared), 400, "INVALID_PARAMETER_VALUE") == message
    assert Api(live.url).get("experiments/get-by-name", {"experiment_name": name}).status_code == 404
    ok = requests.post(
        f"{live.url}/api/2.0/mlflow/experiments/create",
        data=f'{{"name": "{name}"}}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200


def test_request_body_limit(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "MAX_JSON_BODY_BYTES", 1000)
    url = f"{live.url}/api/2.0/mlflow/experiments/create"
    response = requests.post(url, json={"name": "x" * 2000})
    assert error_of(response, 413, "INVALID_PARAMETER_VALUE").startswith("Request body exceeds the maximum size")

    def chunked():  # no Content-Length: the limit still applies while reading
        yield b'{"name": "'
        yield b"y" * 2000
        yield b'"}'

    response = requests.post(url, data=chunked(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_security_headers_on_every_response(live: Live) -> None:
    for response in (
        requests.get(f"{live.url}/health"),
        requests.get(f"{live.url}/api/2.0/mlflow/experiments/get?experiment_id=0"),
        requests.get(f"{live.url}/api/2.0/mlflow/unknown"),
    ):
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_unexpected_errors_do_not_leak_details(backend, tmp_path: Path) -> None:
    from mltrail.server.app import build_app
    from mltrail.server.config import ServerConfig

    class BrokenStore:
        """A store whose backend fails with an internal error (as a database outage would)."""

        def __getattr__(self, name: str):
            def fail(*args, **kwargs):
                raise RuntimeError("SELECT password FROM users -- /srv/secret.py line 3")

            return fail

    app = build_app(ServerConfig(backend.uri, artifacts_destination=str(tmp_path)), store=BrokenStore())  # type: ignore[arg-type]
    with thread_server(app) as server:
        response = Api(server.url).get("experiments/get", {"experiment_id": "0"})
        message = error_of(response, 500, "INTERNAL_ERROR")
        assert "SELECT" not in response.text and "secret" not in response.text and "Traceback" not in response.text
        assert message == "An internal error occurred while handling the request."


def test_unknown_routes_and_methods(live: Live) -> None:
    for path in ("/api/2.0/mlflow/nope", "/api/3.0/mlflow/runs/get", "/ajax-api/2.0/mlflow/x/y", "/nothing"):
        response = requests.get(live.url + path)
        assert response.status_code == 404
        assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    response = requests.get(f"{live.url}/api/2.0/mlflow/runs/create")
    assert response.status_code == 405 and response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_head_requests_and_the_openapi_document(live: Live) -> None:
    for path in ("/health", "/api/2.0/mlflow/experiments/get?experiment_id=0"):
        response = requests.head(live.url + path)
        assert response.status_code == 200 and response.content == b""
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
    document = requests.get(f"{live.url}/openapi.json")
    assert document.headers["content-type"] == "application/json"
    assert "/api/2.0/mlflow/runs/get" in document.json()["paths"]
