"""Server settings, and how they travel from the CLI process to uvicorn worker processes (one env var)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

#: Environment variable holding the JSON-encoded :class:`ServerConfig` for worker processes.
CONFIG_ENV_VAR = "_MLTRAIL_SERVER_CONFIG"

#: Root of experiments created by a server that proxies artifacts.
PROXIED_ARTIFACT_ROOT = "mlflow-artifacts:/"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    backend_store_uri: str
    default_artifact_root: str | None = None
    artifacts_destination: str | None = None
    serve_artifacts: bool = True
    artifacts_only: bool = False
    static_prefix: str = ""
    allowed_hosts: tuple[str, ...] | None = None
    cors_allowed_origins: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        prefix = self.static_prefix.strip()
        if prefix:
            prefix = "/" + prefix.strip("/")
        object.__setattr__(self, "static_prefix", prefix)
        if self.artifacts_destination is None:
            object.__setattr__(self, "artifacts_destination", os.path.abspath("./mlartifacts"))
        if self.default_artifact_root is None and self.serve_artifacts:
            object.__setattr__(self, "default_artifact_root", PROXIED_ARTIFACT_ROOT)
        for name in ("allowed_hosts", "cors_allowed_origins"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServerConfig:
        raw = os.environ.get(CONFIG_ENV_VAR)
        if not raw:
            raise RuntimeError(f"{CONFIG_ENV_VAR} is not set; start the server with `mltrail server`")
        return cls(**json.loads(raw))


def split_list(value: str | None) -> tuple[str, ...] | None:
    """``"a, b"`` → ``("a", "b")``; ``None``/empty → ``None``."""
    if not value:
        return None
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    return items or None
