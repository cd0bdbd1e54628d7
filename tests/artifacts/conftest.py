"""Fixtures for the artifact store tests: one real server per store kind for the whole session (moto for S3,
gcp-storage-emulator for GCS, Azurite for Azure Blob), a fresh bucket/container per test, and ``object_store``,
parametrized over the three kinds, for the behaviour every object store shares."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from mltrail.artifacts.object_store import ObjectStoreRepository

from .emulators import azurite, gcs_emulator, moto_server


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MLTRAIL_*/MLFLOW_* settings or cloud credentials leak into a test from the caller's environment."""
    for name in list(os.environ):
        if name.startswith(("MLTRAIL_", "MLFLOW_", "AWS_", "AZURE_")) or name == "STORAGE_EMULATOR_HOST":
            monkeypatch.delenv(name)


# --- servers (one per session) -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    with gcs_emulator() as url:
        yield url


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    with azurite() as connection_string:
        yield connection_string


def unique_name() -> str:
    return f"mltrail-{uuid.uuid4().hex[:12]}"


# --- per-test buckets ----------------------------------------------------------------------------------


@pytest.fixture
def s3_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto_endpoint


@pytest.fixture
def s3_bucket(s3_env: str) -> str:
    from mltrail.artifacts.s3 import s3_client

    name = unique_name()
    s3_client().create_bucket(Bucket=name)
    return name


@dataclass
class ObjectStore:
    """A repository rooted inside a fresh bucket, with raw access to the bucket for the checks."""

    kind: str
    root_uri: str
    repo: ObjectStoreRepository
    all_keys: Callable[[], list[str]]
    put_raw: Callable[[str, bytes], None]


def _s3_store(bucket: str) -> ObjectStore:
    from mltrail.artifacts.s3 import S3ArtifactRepository, s3_client

    client = s3_client()
    root = f"s3://{bucket}/1/{uuid.uuid4().hex}/artifacts"

    def all_keys() -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))

    return ObjectStore(
        "s3",
        root,
        S3ArtifactRepository(root),
        all_keys,
        lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data),
    )


@pytest.fixture
def s3_store(s3_bucket: str) -> ObjectStore:
    return _s3_store(s3_bucket)


@pytest.fixture
def gcs_store(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "mltrail-test")
    from mltrail.artifacts.gcs import GCSArtifactRepository, gcs_client

    bucket = gcs_client().create_bucket(unique_name())
    root = f"gs://{bucket.name}/1/{uuid.uuid4().hex}/artifacts"
    return ObjectStore(
        "gcs",
        root,
        GCSArtifactRepository(root),
        lambda: sorted(b.name for b in bucket.list_blobs()),
        lambda key, data: bucket.blob(key).upload_from_string(data),
    )


@pytest.fixture
def azure_store(azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_connection_string)
    from azure.storage.blob import BlobServiceClient

    from mltrail.artifacts.azure import AzureBlobArtifactRepository

    container = BlobServiceClient.from_connection_string(azurite_connection_string).create_container(unique_name())
    root = f"wasbs://{container.container_name}@devstoreaccount1.blob.core.windows.net/1/{uuid.uuid4().hex}/artifacts"
    return ObjectStore(
        "azure",
        root,
        AzureBlobArtifactRepository(root),
        lambda: sorted(b.name for b in container.list_blobs()),
        lambda key, data: container.upload_blob(key, data, overwrite=True),
    )


@pytest.fixture(params=["s3", "gcs", "azure"])
def object_store(request: pytest.FixtureRequest) -> ObjectStore:
    store: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return store
