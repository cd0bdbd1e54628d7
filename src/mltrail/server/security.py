"""Request guards that protect a tracking server reachable from a browser.

- Host allowlist (DNS rebinding): only loopback names, private-network addresses, or the configured
  ``--allowed-hosts`` may address the server; ``/health`` and ``/version`` are exempt (load balancers probe
  them with arbitrary Host headers).
- Cross-origin state-changing requests (POST/PUT/DELETE/PATCH with a foreign ``Origin``) are refused;
  preflights from allowed origins get CORS headers.
- Every response carries ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: SAMEORIGIN``.
- JSON API writes must say ``Content-Type: application/json`` (blocks ``text/plain`` CSRF posts).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import urllib.parse
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mltrail.errors import ErrorCode, MltrailException
from mltrail.server import wire

_log = logging.getLogger(__name__)

INVALID_HOST_MSG = "Invalid Host header - possible DNS rebinding attack detected"
CORS_BLOCKED_MSG = "Cross-origin request blocked"

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_ALLOWED_METHODS = "GET, POST, PUT, DELETE, PATCH, OPTIONS"


def _hostname(host: str) -> str:
    """``"[::1]:5000"`` → ``"::1"``, ``"Example.com:80"`` → ``"example.com"``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def _is_private_address(hostname: str) -> bool:
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return any(address in network for network in _PRIVATE_NETWORKS)


def _matches(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p.lower()) if "*" in p else value == p.lower() for p in patterns)


def is_allowed_host(host_header: str, allowed: tuple[str, ...] | None) -> bool:
    """Loopback is always allowed; private addresses only when no explicit allowlist is configured.
    Patterns match the Host header with or without its port (``*`` wildcards, ``*`` alone = any host)."""
    if not host_header:
        return False
    hostname = _hostname(host_header)
    if hostname in _LOOPBACK_NAMES:
        return True
    if allowed is None:
        return _is_private_address(hostname)
    return "*" in allowed or _matches(host_header.strip().lower(), allowed) or _matches(hostname, allowed)


def is_allowed_origin(origin: str, host_header: str, allowed: tuple[str, ...] | None) -> bool:
    """Same-origin, loopback origins and the configured ``--cors-allowed-origins`` are allowed."""
    parsed = urllib.parse.urlsplit(origin)
    if parsed.netloc and parsed.netloc.lower() == host_header.strip().lower():
        return True
    if (parsed.hostname or "") in _LOOPBACK_NAMES:
        return True
    if not allowed:
        return False
    return "*" in allowed or _matches(origin.lower().rstrip("/"), allowed)


def check_json_content_type(content_type: str | None) -> None:
    """MLflow's rule for JSON API POST/PUT requests."""
    if not content_type:
        raise MltrailException.invalid_parameter("Bad Request. Content-Type header is missing.")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise MltrailException.invalid_parameter("Bad Request. Content-Type must be one of ['application/json'].")


class SecurityMiddleware:
    """Pure ASGI middleware (no per-request task or body buffering)."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: tuple[str, ...] | None,
        cors_allowed_origins: tuple[str, ...] | None,
        exempt_paths: Iterable[str],
    ) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = cors_allowed_origins
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_host, raw_origin, preflight_method, preflight_headers = _guard_headers(scope["headers"])
        host = raw_host.decode("latin-1") if raw_host is not None else ""
        if scope["path"] not in self.exempt_paths and not is_allowed_host(host, self.allowed_hosts):
            _log.warning("Rejected request with invalid Host header: %r", host)
            await _send_error(send, 403, INVALID_HOST_MSG)
            return
        cors_headers: list[tuple[bytes, bytes]] = []
        if raw_origin:
            origin = raw_origin.decode("latin-1")
            allowed = is_allowed_origin(origin, host, self.allowed_origins)
            method = scope["method"]
            if method == "OPTIONS" and preflight_method is not None:
                requested = preflight_headers.decode("latin-1") if preflight_headers is not None else "*"
                await self._preflight(send, origin, allowed, requested)
                return
            if method in _STATE_CHANGING and not allowed:
                _log.warning("Blocked cross-origin %s from %r", method, origin)
                await _send_error(send, 403, CORS_BLOCKED_MSG)
                return
            if allowed:
                cors_headers = self._cors_headers(origin)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS, *cors_headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _cors_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        wildcard = bool(self.allowed_origins and "*" in self.allowed_origins)
        out = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if not wildcard:
            out.append((b"access-control-allow-credentials", b"true"))
        out.append((b"access-control-expose-headers", b"*"))
        return out

    async def _preflight(self, send: Send, origin: str, allowed: bool, requested_headers: str) -> None:
        if not allowed:
            await _send_error(send, 403, CORS_BLOCKED_MSG)
            return
        response_headers = [
            *self._cors_headers(origin),
            (b"access-control-allow-methods", _ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", requested_headers.encode("latin-1")),
            (b"access-control-max-age", b"600"),
            *_SECURITY_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 204, "headers": response_headers})
        await send({"type": "http.response.body", "body": b""})


#: The request headers the guards read, by their position in :func:`_guard_headers`' answer.
_GUARD_HEADERS = {b"host": 0, b"origin": 1, b"access-control-request-method": 2, b"access-control-request-headers": 3}


def _guard_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes | None]:
    """Host, Origin, Access-Control-Request-Method and -Headers of the request (the last of repeated ones), or
    None: one pass over the raw headers instead of decoding all of them on every request."""
    found: list[bytes | None] = [None, None, None, None]
    for name, value in headers:
        index = _GUARD_HEADERS.get(name)
        if index is not None:
            found[index] = value
    return found


_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"SAMEORIGIN"))


async def _send_error(send: Send, status: int, message: str) -> None:
    body = wire.dumps({"error_code": ErrorCode.PERMISSION_DENIED.value, "message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *_SECURITY_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
