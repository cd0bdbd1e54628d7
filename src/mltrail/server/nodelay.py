"""A uvicorn HTTP protocol that sets ``TCP_NODELAY`` on every accepted connection.

With ``--workers N > 1`` uvicorn hands a pre-bound socket to each worker, and connections accepted from it
can come without ``TCP_NODELAY``. Nagle's algorithm plus the client's delayed ACK then hold each small
response back for ~40 ms on keep-alive connections. Setting the option in ``connection_made`` makes the
latency independent of the worker count. Select it with ``uvicorn --http mltrail.server.nodelay:HttpProtocol``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):  # the connection may already be gone
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class HttpProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
