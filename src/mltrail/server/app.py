"""The tracking server application: a FastAPI app whose MLflow REST API endpoints are plain ASGI callables.

Routes come from the one endpoint table (:mod:`mltrail.server.routes`), then the web UI's own endpoints
(:mod:`mltrail.server.ui_api`) and its static files (:mod:`mltrail.server.static_files`). A JSON endpoint is an
ASGI callable (:class:`JsonEndpoint`) that reads the query string or body itself, runs parse, handler and encoding
in a worker thread (:mod:`mltrail.server.workers`; every store call is synchronous) and sends the response itself.
Routes without path parameters are also looked up in one dict in front of the router (:class:`ExactRoutes`), so a
tracking request costs no scan of the ~100 routes, no request/response objects and no framework middleware: with
MLflow's client on the same machine, the server's CPU time per request is what bounds throughput.

Errors are ``{"error_code", "message"}`` with MLflow's HTTP status; unexpected exceptions are logged here and
answered with a generic 500, never a stack trace or SQL text.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mltrail.errors import ERROR_CODE_HEADER, ErrorCode, MltrailException
from mltrail.server import artifacts, openapi, wire, workers
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
_ERROR_CODE_HEADER = ERROR_CODE_HEADER.lower().encode("latin-1")
#: Allocations between two collections of the youngest generation in a server worker (Python's default: 700).
_GC_THRESHOLD = 20_000


class _PayloadTooLarge(MltrailException):
    def __init__(self) -> None:
        super().__init__(
            f"Request body exceeds the maximum size of {MAX_JSON_BODY_BYTES} bytes.", ErrorCode.INVALID_PARAMETER_VALUE
        )

    @property
    def http_status(self) -> int:
        return 413


def _as_mltrail_error(exc: BaseException) -> MltrailException:
    if isinstance(exc, MltrailException):
        return exc
    _log.exception("Unexpected error while handling a request", exc_info=exc)
    return MltrailException("An internal error occurred while handling the request.", ErrorCode.INTERNAL_ERROR)


def error_response(exc: BaseException) -> Response:
    error = _as_mltrail_error(exc)
    return Response(
        wire.dumps(error.to_dict()),
        status_code=error.http_status,
        media_type=_JSON,
        headers={ERROR_CODE_HEADER: error.error_code},
    )


def _header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` header of the request (ASGI servers give header names in lower case)."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    declared = _header(scope, b"content-length") or ""
    if declared.isdigit() and int(declared) > MAX_JSON_BODY_BYTES:
        raise _PayloadTooLarge()
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > MAX_JSON_BODY_BYTES:
            raise _PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send_json(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [(b"content-length", str(len(body)).encode("latin-1")), (b"content-type", b"application/json"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _handle_json(
    ep: Endpoint, ctx: ServerContext, raw: dict[str, Any] | bytes, path_params: dict[str, Any] | None
) -> bytes:
    """Parse, call, encode: all of it off the event loop (bodies of log-batch calls can be large)."""
    from_query = not isinstance(raw, bytes)
    fields = raw if isinstance(raw, dict) else wire.decode_json_body(raw)
    if path_params:
        fields.update(path_params)
    return wire.dumps(ep.handler(ctx, wire.parse(ep.request, fields, from_query=from_query)))


class JsonEndpoint:
    """One ``kind="json"`` endpoint as an ASGI application."""

    __slots__ = ("ctx", "endpoint")

    def __init__(self, endpoint: Endpoint, ctx: ServerContext) -> None:
        self.endpoint = endpoint
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ep = self.endpoint
        try:
            if ep.method == "GET":
                raw: dict[str, Any] | bytes = wire.query_fields(ep.request, scope["query_string"])
            else:
                if ep.method in _CONTENT_TYPE_CHECKED:
                    check_json_content_type(_header(scope, b"content-type"))
                raw = await _read_body(scope, receive)
            body = await workers.run(_handle_json, ep, self.ctx, raw, scope.get("path_params"))
        except Exception as exc:
            error = _as_mltrail_error(exc)
            code = (_ERROR_CODE_HEADER, str(error.error_code).encode("latin-1"))
            await _send_json(send, error.http_status, wire.dumps(error.to_dict()), code)
            return
        await _send_json(send, 200, body)


class ExactRoutes:
    """Pure ASGI middleware: a request for the exact path and method of a route without path parameters goes
    straight to that route's application; any other request (static files, artifact paths, HEAD, unknown paths
    and methods) goes on to ``app``, the router, as before."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], ASGIApp]) -> None:
        self.app = app
        self.routes = routes

    @staticmethod
    def table(routes: list[BaseRoute]) -> dict[tuple[str, str], ASGIApp]:
        """``(method, path) -> app`` of each route without path parameters, for the methods and paths for which
        the router would pick that route too (no route before it, with or without parameters, matches them)."""
        table: dict[tuple[str, str], ASGIApp] = {}
        for route in routes:
            if isinstance(route, Route) and route.methods and not route.param_convertors:
                for method in route.methods - {"HEAD"}:
                    if _first_full_match(routes, method, route.path) is route:
                        table[(method, route.path)] = route.app
        return table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            app = self.routes.get((scope["method"], scope["path"]))
            if app is not None:
                await app(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _first_full_match(routes: list[BaseRoute], method: str, path: str) -> BaseRoute | None:
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    return next((route for route in routes if route.matches(scope)[0] is Match.FULL), None)


def _stream_endpoint(ep: Endpoint, ctx: ServerContext) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            fields = wire.query_fields(ep.request, request.scope["query_string"])
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


def _openapi_route(app: FastAPI, static_prefix: str) -> None:
    body = wire.dumps(openapi.schema(ENDPOINTS, __version__, static_prefix))

    async def openapi_json(request: Request) -> Response:
        return Response(body, media_type=_JSON)

    app.router.add_route(f"{static_prefix}/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)


def build_app(config: ServerConfig, store: TrackingStore | None = None) -> FastAPI:
    """The application for ``config``; ``store`` overrides the store built from ``backend_store_uri``."""
    artifacts.return_big_buffers_to_the_os()
    ctx = ServerContext(config, store)
    # FastAPI for its application object and ecosystem (docs, middleware); routes are plain ASGI callables, so
    # no request pays for its dependency injection or validation layer.
    app = FastAPI(title="mltrail tracking server", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for ep in ENDPOINTS:
        handler = JsonEndpoint(ep, ctx) if ep.kind == "json" else _stream_endpoint(ep, ctx)
        for path in ep.paths(config.static_prefix):
            app.router.add_route(path, handler, methods=[ep.method], include_in_schema=False)
    register_ui_routes(app, lambda: ctx.store, config.static_prefix)
    _openapi_route(app, config.static_prefix)
    mount_ui(app, config.static_prefix)  # after the API routes
    app.add_middleware(ExactRoutes, routes=ExactRoutes.table(app.router.routes))
    exempt = [f"{config.static_prefix}/health", f"{config.static_prefix}/version"]
    app.add_middleware(  # added last: the outermost middleware, before any route is looked at
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


def _lighter_log_records() -> None:
    """Skip the LogRecord fields no format of the server shows (the caller's file and line, thread and process
    names), as the logging documentation's optimisation notes describe: uvicorn writes an access-log line for
    every request, and looking those up was 40% of its cost."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers: the CLI puts the configuration in the environment."""
    _lighter_log_records()
    app = build_app(ServerConfig.from_env())
    # The app, its store and every imported module live as long as the worker: moving them out of the
    # collector's generations spares each full collection (which requests allocating thousands of rows
    # trigger) a walk over them. That walk took a third of the server's CPU time on a search of 100 runs.
    gc.freeze()
    # A request's objects (20,000 for a search of 100 runs) are freed by reference counting when it ends; with
    # the default threshold of 700 allocations the collector walked them, and promoted them to walk them
    # again, a few dozen times per request first (5-10% of a search's or a metric history's CPU time).
    gc.set_threshold(_GC_THRESHOLD, *gc.get_threshold()[1:])
    return app
