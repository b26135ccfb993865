"""ocinb: OCI registries in Jupyter — an OCI Distribution v1.1 client with a notebook layer.

The async API (:class:`AsyncClient`) is primary; :class:`Client` is the same API, blocking, safe in
Jupyter. Notebook helpers (DataFrames, views, widgets) load lazily so ``import ocinb`` stays fast.
"""

from __future__ import annotations

from typing import Any

from .client import AsyncClient, AsyncRepository
from .digest import Digest, Hasher
from .endpoints import BlobStream, Ping, PutResult, UploadSession
from .errors import (
    DeniedError,
    DigestMismatchError,
    InvalidDigestError,
    InvalidReferenceError,
    ManifestError,
    NotFoundError,
    OcinbError,
    PlatformNotFoundError,
    RegistryError,
    ServerError,
    SizeMismatchError,
    TooManyRequestsError,
    TransportError,
    UnauthorizedError,
    UnsupportedError,
    VerificationError,
)
from .manifest import Manifest
from .models import (
    ContainerConfig,
    Descriptor,
    History,
    ImageConfig,
    ImageIndex,
    ImageManifest,
    Platform,
    RootFS,
)
from .reference import Reference
from .sync_client import Client, Repository

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "tags": "ocinb.frames",
    "platforms": "ocinb.frames",
    "layers": "ocinb.frames",
    "history": "ocinb.frames",
    "referrers": "ocinb.frames",
    "catalog": "ocinb.frames",
    "sizes": "ocinb.frames",
    "configure": "ocinb.frames",
    "default_client": "ocinb.frames",
    "inspect": "ocinb.views",
    "explorer": "ocinb.widgets",
    "LocalRegistry": "ocinb.testing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ocinb' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [  # noqa: RUF022 - the lazy names come last
    "AsyncClient",
    "AsyncRepository",
    "BlobStream",
    "Client",
    "ContainerConfig",
    "DeniedError",
    "Descriptor",
    "Digest",
    "DigestMismatchError",
    "Hasher",
    "History",
    "ImageConfig",
    "ImageIndex",
    "ImageManifest",
    "InvalidDigestError",
    "InvalidReferenceError",
    "Manifest",
    "ManifestError",
    "NotFoundError",
    "OcinbError",
    "Ping",
    "Platform",
    "PlatformNotFoundError",
    "PutResult",
    "Reference",
    "RegistryError",
    "Repository",
    "RootFS",
    "ServerError",
    "SizeMismatchError",
    "TooManyRequestsError",
    "TransportError",
    "UnauthorizedError",
    "UnsupportedError",
    "UploadSession",
    "VerificationError",
    "catalog",
    "configure",
    "default_client",
    "explorer",
    "history",
    "inspect",
    "layers",
    "platforms",
    "referrers",
    "sizes",
    "tags",
    "LocalRegistry",
]
