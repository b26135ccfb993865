"""What is installed in an image: the squashed tree from the streamed layer reader, and only the files the
catalogers want buffered from the same stream (each under its cap), handed to :func:`catalogers.catalog_tree`.

An image is never unpacked: each layer is streamed once, its table and its wanted files' bytes held (and
cached by layer digest), then the layers are squashed and the visible wanted files cataloged.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..endpoints.repository import RepositoryEndpoints
from ..models import Platform
from ..tarfs import LayerFiles, LayerLimits, squash
from . import catalogers
from .capture import capture_layers, tree_entries
from .catalogers import Catalog
from .describe import ImageDetails, describe_image


@dataclass
class ImagePackages:
    """An image's inventory: the image chosen for the platform, its layers' tables and the catalog."""

    details: ImageDetails
    layers: list[LayerFiles]
    catalog: Catalog


async def image_packages(repo: RepositoryEndpoints, ref: str, platform: str | Platform | None = None, *,
                         limits: LayerLimits | None = None) -> ImagePackages:
    """Resolve ``ref`` for ``platform``, stream its layers capturing the wanted files, and catalog the squash."""
    details = await describe_image(repo, ref, platform)
    layers = await capture_layers(repo, details.image.layers, limits=limits)
    tables = [c.table for c in layers]
    catalog = catalogers.catalog_tree(tree_entries(squash(tables), layers))
    return ImagePackages(details, tables, catalog)
