"""Writing images: blobs then manifests then tags, and the referrers fallback index kept up to date."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import media_types as mt
from ..digest import Digest
from ..endpoints import PutResult
from ..endpoints.repository import RepositoryEndpoints
from ..manifest import Manifest
from ..models import Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform


@dataclass(frozen=True)
class Layer:
    """A layer to push: bytes or a file path, its media type and optional annotations."""

    source: bytes | str | Path
    media_type: str = mt.OCI_LAYER_GZIP
    annotations: Mapping[str, str] | None = None


LayerLike = Layer | bytes | str | Path | Descriptor


async def push_manifest(repo: RepositoryEndpoints, ref: str,
                        manifest: Manifest | ImageManifest | ImageIndex | bytes,
                        media_type: str | None = None) -> PutResult:
    """PUT a manifest; one with a ``subject`` joins the subject's referrers tag when the registry has no API."""
    return await repo.manifests.put(ref, manifest, media_type)


async def delete_manifest(repo: RepositoryEndpoints, digest: str) -> None:
    """DELETE a manifest by digest, removing it from its subject's referrers tag when the registry has no API."""
    await repo.manifests.delete(str(Digest.parse(digest)))


async def _push_layer(repo: RepositoryEndpoints, layer: LayerLike) -> Descriptor:
    if isinstance(layer, Descriptor):
        return layer
    if not isinstance(layer, Layer):
        layer = Layer(layer)
    pushed = await repo.blobs.upload(layer.source)
    return Descriptor(media_type=layer.media_type, digest=pushed.digest, size=pushed.size,
                      annotations=dict(layer.annotations) if layer.annotations else None)


async def push_image(repo: RepositoryEndpoints, ref: str, config: ImageConfig | Mapping[str, Any] | bytes,
                     layers: Sequence[LayerLike] = (), *, annotations: Mapping[str, str] | None = None,
                     config_media_type: str = mt.OCI_CONFIG, artifact_type: str | None = None,
                     subject: Descriptor | None = None, media_type: str = mt.OCI_MANIFEST) -> PutResult:
    """Push layers and config (concurrently, skipping blobs already there), then the manifest to ``ref``."""
    if isinstance(config, ImageConfig):
        config_bytes = config.to_json_bytes()
    elif isinstance(config, bytes):
        config_bytes = config
    else:
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
    pushed = await asyncio.gather(repo.blobs.upload(config_bytes), *(_push_layer(repo, layer) for layer in layers))
    config_desc = Descriptor(media_type=config_media_type, digest=pushed[0].digest, size=pushed[0].size)
    manifest = ImageManifest(schema_version=2, media_type=media_type, artifact_type=artifact_type,
                             config=config_desc, layers=list(pushed[1:]), subject=subject,
                             annotations=dict(annotations) if annotations else None)
    return await push_manifest(repo, ref, manifest, media_type)


async def push_index(repo: RepositoryEndpoints, ref: str, manifests: Iterable[Descriptor | Manifest | PutResult],
                     *, annotations: Mapping[str, str] | None = None,
                     platforms: Sequence[str | Platform | None] | None = None,
                     media_type: str = mt.OCI_INDEX) -> PutResult:
    """Push an index of manifests already in the repository (descriptors, pushed results or manifests)."""
    entries: list[Descriptor] = []
    items = list(manifests)
    for i, item in enumerate(items):
        if isinstance(item, PutResult):
            desc = item.descriptor
        elif isinstance(item, Manifest):
            desc = item.descriptor()
        else:
            desc = item
        plat = platforms[i] if platforms is not None else None
        if plat is not None:
            desc = desc.model_copy(update={"platform": plat if isinstance(plat, Platform) else Platform.parse(plat)})
        entries.append(desc)
    index = ImageIndex(schema_version=2, media_type=media_type, manifests=entries,
                       annotations=dict(annotations) if annotations else None)
    return await push_manifest(repo, ref, index, media_type)
