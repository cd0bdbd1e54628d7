"""The tracking server application: MLflow's REST API on FastAPI/Starlette.

Routes come from the one endpoint table (:mod:`mltrail.server.routes`), then the web UI's own endpoints
(:mod:`mltrail.server.ui_api`) and its static files (:mod:`mltrail.server.static_files`). They are registered
as plain Starlette routes (no per-request dependency injection); JSON handlers run in the threadpool because
every store call is synchronous. Errors are ``{"error_code", "message"}`` with MLflow's HTTP status;
unexpected exceptions are logged here and answered with a generic 500, never a stack trace or SQL text.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from mltrail.errors import ERROR_CODE_HEADER, ErrorCode, MltrailException
from mltrail.server import artifacts, openapi, wire
from mltrail.server.config import ServerConfig
from mltrail.server.context import ServerContext
from mltrail.server.routes import ENDPOINTS, Endpoint
from mltrail.server.security import SecurityMiddleware, check_json_content_type
from mltrail.server.static_files import mount_ui
from mltrail.server.ui_api import register_ui_routes
from mltrail.store.base import TrackingStore
from mltrail.version import __version__

_log = logging.getLogger(__name__)

#: Largest JSON request body accepted (artifact uploads are streamed and not limited by this).
MAX_JSON_BODY_BYTES = int(os.environ.get("MLTRAIL_SERVER_MAX_REQUEST_BYTES", 32 * 1024 * 1024))
_JSON = "application/json"
_CONTENT_TYPE_CHECKED = frozenset({"POST", "PUT"})


class _PayloadTooLarge(MltrailException):
    def __init__(self) -> None:
        super().__init__(
            f"Request body exceeds the maximum size of {MAX_JSON_BODY_BYTES} bytes.", ErrorCode.INVALID_PARAMETER_VALUE
        )

    @property
    def http_status(self) -> int:
        return 413


def error_response(exc: BaseException) -> Response:
    if not isinstance(exc, MltrailException):
        _log.exception("Unexpected error while handling a request", exc_info=exc)
        exc = MltrailException("An internal error occurred while handling the request.", ErrorCode.INTERNAL_ERROR)
    return Response(
        wire.dumps(exc.to_dict()),
        status_code=exc.http_status,
        media_type=_JSON,
        headers={ERROR_CODE_HEADER: exc.error_code},
    )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BODY_BYTES:
        raise _PayloadTooLarge()
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_JSON_BODY_BYTES:
            raise _PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _handle_json(ep: Endpoint, ctx: ServerContext, raw: dict[str, Any] | bytes, path_params: dict[str, Any]) -> bytes:
    """Parse, call, encode: all of it off the event loop (bodies of log-batch calls can be large)."""
    from_query = not isinstance(raw, bytes)
    fields = raw if isinstance(raw, dict) else wire.decode_json_body(raw)
    fields.update(path_params)
    return wire.dumps(ep.handler(ctx, wire.parse(ep.request, fields, from_query=from_query)))


def _json_endpoint(ep: Endpoint, ctx: ServerContext) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            if ep.method == "GET":
                raw: dict[str, Any] | bytes = wire.query_fields(ep.request, request.query_params)
            else:
                if ep.method in _CONTENT_TYPE_CHECKED:
                    check_json_content_type(request.headers.get("content-type"))
                raw = await _read_body(request)
            body = await run_in_threadpool(_handle_json, ep, ctx, raw, dict(request.path_params))
            return Response(body, media_type=_JSON)
        except Exception as exc:
            return error_response(exc)

    return endpoint


def _stream_endpoint(ep: Endpoint, ctx: ServerContext) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            fields = wire.query_fields(ep.request, request.query_params)
            fields.update(request.path_params)
            response: Response = await ep.handler(ctx, request, wire.parse(ep.request, fields, from_query=True))
            return response
        except Exception as exc:
            return error_response(exc)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown routes (404) and wrong methods (405): MLflow clients map 404 to ENDPOINT_NOT_FOUND."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    message = "Endpoint not found" if status == 404 else getattr(exc, "detail", "Request failed")
    code = ErrorCode.ENDPOINT_NOT_FOUND if status in (404, 405) else ErrorCode.BAD_REQUEST
    return Response(wire.dumps({"error_code": code.value, "message": str(message)}), status, media_type=_JSON)


def build_app(config: ServerConfig, store: TrackingStore | None = None) -> FastAPI:
    """The application for ``config``; ``store`` overrides the store built from ``backend_store_uri``."""
    artifacts.return_big_buffers_to_the_os()
    ctx = ServerContext(config, store)
    app = FastAPI(
        title="mltrail tracking server",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"{config.static_prefix}/openapi.json",
    )
    for ep in ENDPOINTS:
        make = _json_endpoint if ep.kind == "json" else _stream_endpoint
        handler = make(ep, ctx)
        for path in ep.paths(config.static_prefix):
            app.router.add_route(path, handler, methods=[ep.method], include_in_schema=False)
    register_ui_routes(app, lambda: ctx.store, config.static_prefix)
    mount_ui(app, config.static_prefix)  # after the API routes
    app.add_exception_handler(StarletteHTTPException, _http_error)
    schema = openapi.schema(ENDPOINTS, __version__, config.static_prefix)
    app.openapi = lambda: schema  # type: ignore[method-assign]
    exempt = [f"{config.static_prefix}/health", f"{config.static_prefix}/version"]
    app.add_middleware(
        SecurityMiddleware,
        allowed_hosts=config.allowed_hosts,
        cors_allowed_origins=config.cors_allowed_origins,
        exempt_paths=exempt,
    )
    return app


def create_app(
    backend_store_uri: str,
    default_artifact_root: str | None = None,
    artifacts_destination: str | None = None,
    serve_artifacts: bool = True,
    artifacts_only: bool = False,
    static_prefix: str = "",
    allowed_hosts: Sequence[str] | None = None,
    cors_allowed_origins: Sequence[str] | None = None,
) -> FastAPI:
    """The tracking server as an ASGI application (run it with any ASGI server)."""
    config = ServerConfig(
        backend_store_uri=backend_store_uri,
        default_artifact_root=default_artifact_root,
        artifacts_destination=artifacts_destination,
        serve_artifacts=serve_artifacts,
        artifacts_only=artifacts_only,
        static_prefix=static_prefix,
        allowed_hosts=tuple(allowed_hosts) if allowed_hosts is not None else None,
        cors_allowed_origins=tuple(cors_allowed_origins) if cors_allowed_origins is not None else None,
    )
    return build_app(config)


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers: the CLI puts the configuration in the environment."""
    app = build_app(ServerConfig.from_env())
    # The app, its store and every imported module live as long as the worker: moving them out of the
    # collector's generations spares each full collection (which requests allocating thousands of rows
    # trigger) a walk over them. That walk took a third of the server's CPU time on a search of 100 runs.
    gc.freeze()
    return app
