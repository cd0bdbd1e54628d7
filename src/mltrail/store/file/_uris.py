"""Local paths and URIs of the directory store (roots, artifact locations), as MLflow resolves them."""

from __future__ import annotations

import os
import pathlib
import posixpath
import urllib.parse
import urllib.request


def uri_to_path(uri: str) -> str:
    if uri.startswith("file:"):
        return urllib.request.url2pathname(urllib.parse.urlparse(uri).path)
    return uri


def resolve_local_uri(uri: str) -> str:
    """Relative local paths become absolute (as MLflow does); URIs with a scheme are kept as given."""
    scheme = urllib.parse.urlsplit(uri).scheme
    if scheme and len(scheme) > 1 and scheme != "file":
        return uri
    path = uri_to_path(uri)
    if os.path.isabs(path):
        return uri
    absolute = os.path.abspath(path)
    return pathlib.Path(absolute).as_uri() if scheme == "file" else pathlib.Path(absolute).as_posix()


def append_to_uri(uri: str, *parts: str) -> str:
    """Append posix path parts to the path of ``uri`` (a URI with a scheme, or a plain path)."""
    split = urllib.parse.urlsplit(uri)
    if not split.scheme or len(split.scheme) == 1:  # plain path (a one-letter scheme is a Windows drive)
        return posixpath.join(uri, *parts)
    path = posixpath.join(split.path or "/", *parts)
    return urllib.parse.urlunsplit((split.scheme, split.netloc, path, split.query, split.fragment))
