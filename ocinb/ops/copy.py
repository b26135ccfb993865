"""Copying an image graph (index, manifests, configs, layers, optionally referrers) between repositories."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..endpoints.repository import RepositoryEndpoints
from ..endpoints.uploads import UploadSession
from ..manifest import Manifest
from ..models import Descriptor, Platform
from .pull import get_manifest
from .push import push_manifest
from .referrers import walk

STREAMS = 4
"""Blobs streamed at once by one copy: a streamed copy within one registry needs two pooled connections."""


@dataclass
class CopyReport:
    """What a copy did: the digest pushed at the destination and the blobs mounted, streamed or skipped."""

    digest: str = ""
    manifests: int = 0
    mounted: int = 0
    streamed: int = 0
    skipped: int = 0
    referrers: int = 0
    bytes_streamed: int = 0


@dataclass
class _Copy:
    """One copy under way: its report, and the bound on blobs streamed at once."""

    report: CopyReport = field(default_factory=CopyReport)
    streams: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(STREAMS))


async def _copy_blob(src: RepositoryEndpoints, dst: RepositoryEndpoints, desc: Descriptor, job: _Copy) -> None:
    report = job.report
    if await dst.blobs.exists(desc.digest):
        report.skipped += 1
        return
    session: UploadSession | None = None
    if src.same_registry(dst) and src.name != dst.name:
        answer = await dst.blobs.mount(desc.digest, src.name, size=desc.size)
        if not isinstance(answer, UploadSession):
            report.mounted += 1
            return
        session = answer
    async with job.streams:  # each stream holds a connection of its own beside the upload's
        await dst.blobs.upload(src.blobs.open(desc.digest, size=desc.size), desc.digest, size=desc.size,
                               session=session)
    report.streamed += 1
    report.bytes_streamed += desc.size


async def _copy_manifest(src: RepositoryEndpoints, dst: RepositoryEndpoints, m: Manifest,
                         platforms: Sequence[Platform] | None, job: _Copy) -> Manifest:
    """Copy ``m`` and everything below it; return the manifest as pushed (an index may be filtered)."""
    if m.is_index:
        index = m.as_index()
        keep = list(index.manifests)
        if platforms is not None:
            keep = [d for d in keep if d.platform is not None and not d.is_attestation
                    and any(d.platform.matches(p) for p in platforms)]
        children = await asyncio.gather(*(get_manifest(src, d.digest) for d in keep))
        await asyncio.gather(*(_copy_manifest(src, dst, c, None, job) for c in children))
        if len(keep) != len(index.manifests):
            index = index.model_copy(update={"manifests": keep})
            m = Manifest.from_bytes(index.to_json_bytes(), m.media_type)
    else:
        image = m.as_manifest()
        blobs = [image.config, *image.layers]
        await asyncio.gather(*(_copy_blob(src, dst, d, job) for d in blobs))
    if not await dst.manifests.exists(str(m.digest)):
        await push_manifest(dst, str(m.digest), m)
    job.report.manifests += 1
    return m


async def copy(src: RepositoryEndpoints, src_ref: str, dst: RepositoryEndpoints, dst_ref: str | None = None, *,
               platforms: Sequence[str | Platform] | None = None, referrers: bool = False) -> CopyReport:
    """Copy ``src:src_ref`` to ``dst:dst_ref`` (default: the same tag), blobs first, the tag last.

    Blobs are mounted when both repositories share a registry, streamed otherwise; ``platforms``
    keeps only those index entries; ``referrers=True`` copies the referrer graph as well.
    """
    job = _Copy()
    report = job.report
    wanted = [p if isinstance(p, Platform) else Platform.parse(p) for p in platforms] if platforms else None
    top = await get_manifest(src, src_ref)
    pushed = await _copy_manifest(src, dst, top, wanted, job)
    targets = [str(pushed.digest)]
    if pushed.is_index:
        targets += [d.digest for d in pushed.as_index().manifests]
    if referrers:
        for target in targets:
            for node in await walk(src, target):
                ref_m = await get_manifest(src, node.descriptor.digest)
                await _copy_manifest(src, dst, ref_m, None, job)
                report.referrers += 1
    tag = dst_ref if dst_ref is not None else (src_ref if not src_ref.count(":") else None)
    if tag:
        await dst.manifests.put(tag, pushed)
    report.digest = str(pushed.digest)
    return report
