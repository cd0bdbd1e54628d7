"""``/health``, ``/version`` and ``server-info``: what load balancers and MLflow clients probe."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from mltrail.server.artifacts import multipart_capable
from mltrail.server.context import ServerContext
from mltrail.version import __version__

#: What ``GET /version`` reports. MLflow clients parse this as an MLflow version and switch features on by it
#: (e.g. span logging needs >= 3.4), so the server reports the MLflow release whose REST protocol it speaks,
#: not mltrail's own version (0.x would make clients assume a pre-3.4 server). mltrail's version is in
#: ``server-info`` (``mltrail_version``) and the ``X-Mltrail-Version`` response header of ``/version``.
MLFLOW_COMPAT_VERSION = "3.17.2"


async def health(ctx: ServerContext, request: Request, req: dict[str, Any]) -> Response:
    return PlainTextResponse("OK")


async def version(ctx: ServerContext, request: Request, req: dict[str, Any]) -> Response:
    return PlainTextResponse(MLFLOW_COMPAT_VERSION, headers={"X-Mltrail-Version": __version__})


def server_info(ctx: ServerContext, req: dict[str, Any]) -> dict[str, Any]:
    """MLflow clients switch to presigned multipart uploads and downloads (``mpu/*``, ``presigned/*``) when
    ``multipart_*_enabled`` is true, so both reflect what the artifacts destination can do."""
    multipart = multipart_capable(ctx) is not None
    return {
        "store_type": ctx.store_type,
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": multipart,
        "multipart_downloads_enabled": multipart,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
        "mltrail_version": __version__,
    }
