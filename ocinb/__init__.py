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
    LayerError,
    LayerLimitError,
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
    UnsupportedLayerError,
    VerificationError,
    WasteCheckError,
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
from .ops.catalogers import PackageRow
from .ops.copy import CopyReport
from .ops.crawl import CrawlReport
from .ops.describe import (
    ImageContents,
    ImageDetails,
    ImageFiles,
    ImagePlatforms,
    ImageReport,
    PlatformEntry,
    SizedImage,
    TagEntry,
)
from .ops.doctor import DoctorCheck
from .ops.pull import PulledImage, ResolvedImage
from .ops.push import Layer
from .ops.referrers import ReferrerNode
from .reference import Reference
from .sync_client import Client, Repository
from .tarfs import FileEntry, LayerFiles, LayerLimits, SquashedEntry, SquashResult, WastePath, WasteSummary

if TYPE_CHECKING:
    from ._defaults import (
        catalog,
        check_waste,
        configure,
        copy,
        crawl,
        default_client,
        diff,
        doctor,
        files,
        filesystem,
        filesystem_tree,
        history,
        inspect,
        layers,
        packages,
        platforms,
        referrers,
        sizes,
        tags,
        waste,
    )
    from .image_diff import ImageDiff
    from .layer_views import FilesystemTree
    from .testing import LocalRegistry
    from .views import DoctorReport, InspectView
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
    "files": "ocinb._defaults",
    "filesystem": "ocinb._defaults",
    "filesystem_tree": "ocinb._defaults",
    "packages": "ocinb._defaults",
    "diff": "ocinb._defaults",
    "ImageDiff": "ocinb.image_diff",
    "FilesystemTree": "ocinb.layer_views",
    "waste": "ocinb._defaults",
    "check_waste": "ocinb._defaults",
    "crawl": "ocinb._defaults",
    "configure": "ocinb._defaults",
    "default_client": "ocinb._defaults",
    "doctor": "ocinb._defaults",
    "DoctorReport": "ocinb.views",
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
    "DoctorCheck",
    "ErrorDetail",
    "FileEntry",
    "Hasher",
    "History",
    "HttpCore",
    "ImageConfig",
    "ImageContents",
    "ImageDetails",
    "ImageFiles",
    "ImageIndex",
    "ImageManifest",
    "ImagePlatforms",
    "ImageReport",
    "InvalidDigestError",
    "InvalidReferenceError",
    "Layer",
    "LayerError",
    "LayerFiles",
    "LayerLimitError",
    "LayerLimits",
    "Manifest",
    "ManifestError",
    "Manifests",
    "NotFoundError",
    "OcinbError",
    "PackageRow",
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
    "SquashResult",
    "SquashedEntry",
    "Stats",
    "TagEntry",
    "Tags",
    "TooManyRequestsError",
    "TransportError",
    "UnauthorizedError",
    "UnsupportedError",
    "UnsupportedLayerError",
    "UploadSession",
    "Uploads",
    "VerificationError",
    "WasteCheckError",
    "WastePath",
    "WasteSummary",
    "catalog",
    "check_waste",
    "configure",
    "copy",
    "crawl",
    "default_client",
    "diff",
    "doctor",
    "explorer",
    "files",
    "filesystem",
    "filesystem_tree",
    "history",
    "inspect",
    "layers",
    "packages",
    "platforms",
    "referrers",
    "sizes",
    "tags",
    "waste",
    "DoctorReport",
    "Explorer",
    "FilesystemTree",
    "ImageDiff",
    "InspectView",
    "LocalRegistry",
]
