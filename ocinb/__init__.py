"""ocinb: OCI registries in Jupyter — an OCI Distribution v1.1 client with a notebook layer.

The async API (:class:`AsyncClient`) is primary; :class:`Client` is the same API, blocking, safe in
Jupyter. Notebook helpers (DataFrames, views, widgets) load lazily so ``import ocinb`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _display
from ._http.budget import RateBudget
from ._http.credentials import Credentials
from ._http.transport import HttpCore, RateLimit, Reply, RetryPolicy, Stats
from .cache import ContentCache
from .client import AsyncClient, AsyncRepository
from .digest import Digest, Hasher
from .endpoints import Blobs, BlobStream, Manifests, Ping, PutResult, Referrers, Tags, Uploads, UploadSession
from .endpoints._base import RegistryState, RepoContext
from .endpoints.repository import RepositoryEndpoints
from .errors import (
    DeniedError,
    DigestMismatchError,
    ErrorDetail,
    InvalidDigestError,
    InvalidReferenceError,
    ManifestError,
    NotFoundError,
    OcinbError,
    PlatformNotFoundError,
    RateBudgetExceededError,
    RealmRefusedError,
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
from .ops.copy import CopyReport
from .ops.crawl import CrawlReport
from .ops.describe import ImageDetails, ImagePlatforms, ImageReport, PlatformEntry, SizedImage, TagEntry
from .ops.pull import PulledImage, ResolvedImage
from .ops.push import Layer
from .ops.referrers import ReferrerNode
from .reference import Reference
from .sync_client import Client, Repository

if TYPE_CHECKING:
    from ._defaults import (
        catalog,
        configure,
        copy,
        crawl,
        default_client,
        history,
        inspect,
        layers,
        platforms,
        referrers,
        sizes,
        tags,
    )
    from .testing import LocalRegistry
    from .views import InspectView
    from .widgets import Explorer, explorer

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "tags": "ocinb._defaults",
    "platforms": "ocinb._defaults",
    "layers": "ocinb._defaults",
    "history": "ocinb._defaults",
    "referrers": "ocinb._defaults",
    "catalog": "ocinb._defaults",
    "sizes": "ocinb._defaults",
    "inspect": "ocinb._defaults",
    "copy": "ocinb._defaults",
    "crawl": "ocinb._defaults",
    "configure": "ocinb._defaults",
    "default_client": "ocinb._defaults",
    "InspectView": "ocinb.views",
    "explorer": "ocinb.widgets",
    "Explorer": "ocinb.widgets",
    "LocalRegistry": "ocinb.testing",
}
"""Names whose modules import pandas, ipywidgets or the test harness: loaded on first use."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ocinb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _render_html(obj: object) -> str:
    from .views import render

    return render(obj)


_display.install_renderer(_render_html)

__all__ = [  # noqa: RUF022 - classes, then functions, then the lazy classes
    "AsyncClient",
    "AsyncRepository",
    "BlobStream",
    "Blobs",
    "Client",
    "ContainerConfig",
    "ContentCache",
    "CopyReport",
    "CrawlReport",
    "Credentials",
    "DeniedError",
    "Descriptor",
    "Digest",
    "DigestMismatchError",
    "ErrorDetail",
    "Hasher",
    "History",
    "HttpCore",
    "ImageConfig",
    "ImageDetails",
    "ImageIndex",
    "ImageManifest",
    "ImagePlatforms",
    "ImageReport",
    "InvalidDigestError",
    "InvalidReferenceError",
    "Layer",
    "Manifest",
    "ManifestError",
    "Manifests",
    "NotFoundError",
    "OcinbError",
    "Ping",
    "Platform",
    "PlatformEntry",
    "PlatformNotFoundError",
    "PulledImage",
    "PutResult",
    "RateBudget",
    "RateBudgetExceededError",
    "RateLimit",
    "RealmRefusedError",
    "Reference",
    "ReferrerNode",
    "Referrers",
    "RegistryError",
    "RegistryState",
    "Reply",
    "RepoContext",
    "Repository",
    "RepositoryEndpoints",
    "ResolvedImage",
    "RetryPolicy",
    "RootFS",
    "ServerError",
    "SizeMismatchError",
    "SizedImage",
    "Stats",
    "TagEntry",
    "Tags",
    "TooManyRequestsError",
    "TransportError",
    "UnauthorizedError",
    "UnsupportedError",
    "UploadSession",
    "Uploads",
    "VerificationError",
    "catalog",
    "configure",
    "copy",
    "crawl",
    "default_client",
    "explorer",
    "history",
    "inspect",
    "layers",
    "platforms",
    "referrers",
    "sizes",
    "tags",
    "Explorer",
    "InspectView",
    "LocalRegistry",
]
