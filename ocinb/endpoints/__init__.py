"""The endpoint client: one method per row of the OCI Distribution spec's endpoint table (end-1 … end-13)."""

from ._uploader import Source
from .blobs import Blobs, BlobStream
from .manifests import Manifests, PutResult
from .referrers import Referrers
from .registry import Ping, catalog, catalog_pages, ping
from .tags import Tags
from .uploads import Uploads, UploadSession

__all__ = [
    "BlobStream",
    "Blobs",
    "Manifests",
    "Ping",
    "PutResult",
    "Referrers",
    "Source",
    "Tags",
    "UploadSession",
    "Uploads",
    "catalog",
    "catalog_pages",
    "ping",
]
