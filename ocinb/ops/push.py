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
from ..endpoints.referrers import fallback_tag
from ..endpoints.repository import RepositoryEndpoints
from ..errors import NotFoundError
from ..manifest import Manifest
from ..models import Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform


@dataclass(frozen=True)
class Layer:
    """A layer to push: bytes or a file path, its media type and optional annotations."""

    source: bytes | str | Path
    media_type: str = mt.OCI_LAYER_GZIP
    annotations: Mapping[str, str] | None = None


LayerLike = Layer | bytes | str | Path | Descriptor


async def push_manifest(repo: RepositoryEndpoints, ref: str, manifest: Manifest | ImageManifest | ImageIndex | bytes,
                        media_type: str | None = None) -> PutResult:
    """PUT a manifest; when it has a ``subject`` and the registry answers without ``OCI-Subject``,
    add it to the subject's ``<alg>-<hex>`` fallback index (created when missing, no duplicates)."""
    m = Manifest.of(manifest, media_type)
    result = await repo.manifests.put(ref, m)
    if m.subject and result.subject is None:
        await _add_to_fallback(repo, m.subject, m.referrer_descriptor())
    return result


async def _load_fallback(repo: RepositoryEndpoints, subject: str) -> ImageIndex:
    try:
        m = await repo.manifests.get(fallback_tag(subject))
    except NotFoundError:
        return ImageIndex(schema_version=2, media_type=mt.OCI_INDEX, manifests=[])
    return m.as_index()


async def _add_to_fallback(repo: RepositoryEndpoints, subject: str, desc: Descriptor) -> None:
    # Read-modify-write of one tag: serialised per subject within this client (other clients can
    # still race, as the spec acknowledges).
    async with repo.ctx.state.lock(f"fallback:{repo.name}:{subject}"):
        index = await _load_fallback(repo, subject)
        if any(d.digest == desc.digest for d in index.manifests):
            return
        index.manifests.append(desc)
        await repo.manifests.put(fallback_tag(subject), index, mt.OCI_INDEX)


async def delete_manifest(repo: RepositoryEndpoints, digest: str) -> None:
    """DELETE a manifest by digest, removing it from its subject's fallback index when it has one."""
    digest = str(Digest.parse(digest))
    subject = None
    if repo.referrers.api_supported is not True:  # a registry with the API keeps its own index
        try:
            subject = (await repo.manifests.get(digest)).subject
        except NotFoundError:
            subject = None
    await repo.manifests.delete(digest)
    if subject and repo.referrers.api_supported is not True:
        async with repo.ctx.state.lock(f"fallback:{repo.name}:{subject}"):
            index = await _load_fallback(repo, subject)
            kept = [d for d in index.manifests if d.digest != digest]
            if len(kept) != len(index.manifests):
                index.manifests = kept
                await repo.manifests.put(fallback_tag(subject), index, mt.OCI_INDEX)


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
