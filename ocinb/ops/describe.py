"""What the notebook layer shows, fetched: tags, an image's platforms, its manifest and config, the size audit
and :func:`ocinb.inspect`'s summary, as plain dataclasses that ``frames`` tabulates and ``views`` renders."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import media_types as mt
from .. import tarfs
from ..endpoints.repository import RepositoryEndpoints
from ..errors import ManifestError, NotFoundError, OcinbError, PlatformNotFoundError, VerificationError
from ..manifest import Manifest
from ..models import Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform
from ..reference import is_fallback_tag
from ..tarfs import LayerFiles, LayerLimits, SquashResult, WasteSummary
from . import capture, catalogers, layer_reader, pull
from ._gather import SingleFlight, gather_progress
from .referrers import MAX_REFERRER_DEPTH, ReferrerNode, walk


@dataclass(frozen=True)
class TagEntry:
    """A tag, with the descriptor a HEAD returned when it was resolved (``None`` if not, or if it vanished)."""

    tag: str
    descriptor: Descriptor | None = None


async def list_tags(repo: RepositoryEndpoints, *, resolve: bool = False, referrer_tags: bool = False,
                    progress: bool | None = None) -> list[TagEntry]:
    """The tags of ``repo`` (referrers fallback tags left out unless asked), HEADed concurrently with ``resolve``."""
    names = [t for t in await repo.tags.list() if referrer_tags or not is_fallback_tag(t)]
    if not resolve:
        return [TagEntry(t) for t in names]

    async def head(tag: str) -> TagEntry:
        try:
            return TagEntry(tag, await repo.manifests.head(tag))
        except NotFoundError:
            return TagEntry(tag)

    return await gather_progress([head(t) for t in names], progress=progress, desc="tags")


async def config_or_none(repo: RepositoryEndpoints, desc: Descriptor) -> ImageConfig | None:
    """The image config, or None when the blob is not an image config (artifacts) or is unreadable."""
    try:
        return await pull.fetch_config(repo, desc)
    except (ManifestError, NotFoundError, VerificationError):
        return None


@dataclass(frozen=True)
class PlatformEntry:
    """One entry of an index (or a single image): its descriptor, the platform, the image manifest and config.

    ``platform`` is the entry's own, else its config's; attestation entries are not fetched (rate limits).
    """

    descriptor: Descriptor
    platform: Platform | None
    image: ImageManifest | None
    config: ImageConfig | None

    @property
    def is_attestation(self) -> bool:
        return self.descriptor.is_attestation

    @property
    def attests(self) -> str | None:
        """The digest of the image an attestation entry is about."""
        return (self.descriptor.annotations or {}).get(mt.ATTESTATION_DIGEST_ANNOTATION)


async def platform_entries(repo: RepositoryEndpoints, top: Manifest, *, progress: bool | None = None,
                           flight: SingleFlight | None = None) -> list[PlatformEntry]:
    """The entries of a fetched top manifest (an index, or a single image), attestations last."""
    flight = flight or SingleFlight()

    async def entry(desc: Descriptor, manifest: Manifest | None) -> PlatformEntry:
        if manifest is None and not desc.is_attestation:
            try:
                manifest = await flight.run(desc.digest, lambda: pull.get_manifest(repo, desc.digest))
            except (NotFoundError, ManifestError):
                manifest = None
        parsed = manifest.parsed if manifest is not None else None
        image = parsed if isinstance(parsed, ImageManifest) else None
        config = None
        if image is not None:
            cdesc = image.config
            config = await flight.run(cdesc.digest, lambda: config_or_none(repo, cdesc))
        platform = desc.platform or (config.platform if config is not None else None)
        return PlatformEntry(desc, platform, image, config)

    parsed = top.parsed
    if isinstance(parsed, ImageIndex):
        entries = await gather_progress([entry(d, None) for d in parsed.manifests], progress=progress,
                                        desc="platforms")
    else:
        entries = [await entry(top.descriptor(), top)]
    return sorted(entries, key=lambda e: e.is_attestation)


@dataclass(frozen=True)
class ImagePlatforms:
    """A reference's top manifest and every entry it lists."""

    top: Manifest
    entries: list[PlatformEntry]


async def describe_platforms(repo: RepositoryEndpoints, ref: str, *, progress: bool | None = None) -> ImagePlatforms:
    """The platforms of ``ref`` (one entry for a single image)."""
    top = await pull.get_manifest(repo, ref)
    return ImagePlatforms(top, await platform_entries(repo, top, progress=progress))


@dataclass(frozen=True)
class ImageDetails:
    """One image of a reference: the top manifest, the image manifest chosen for the platform, its config."""

    top: Manifest
    manifest: Manifest
    entry: Descriptor | None
    config: ImageConfig | None

    @property
    def image(self) -> ImageManifest:
        return self.manifest.as_manifest()

    @property
    def platform(self) -> Platform | None:
        """The entry's platform, else the config's."""
        if self.entry is not None and self.entry.platform is not None:
            return self.entry.platform
        return self.config.platform if self.config is not None else None


async def describe_image(repo: RepositoryEndpoints, ref: str, platform: str | Platform | None = None
                         ) -> ImageDetails:
    """Resolve ``ref`` for ``platform`` and fetch the image's config (None for artifacts)."""
    resolved = await pull.resolve(repo, ref, platform)
    config = resolved.config or await config_or_none(repo, resolved.image.config)
    return ImageDetails(resolved.top, resolved.manifest, resolved.entry, config)


async def referrer_nodes(repo: RepositoryEndpoints, digest: str, *, recursive: bool = True) -> list[ReferrerNode]:
    """The referrers of ``digest``: the whole tree, or only direct ones."""
    return await walk(repo, digest, max_depth=MAX_REFERRER_DEPTH if recursive else 1)


@dataclass(frozen=True)
class SizedImage:
    """One image of the size audit: the tag it was reached by, its platform and its manifest."""

    tag: str
    platform: Platform | None
    digest: str
    image: ImageManifest


async def sized_images(repo: RepositoryEndpoints, tags: Sequence[str] | None = None, *,
                       progress: bool | None = None) -> list[SizedImage]:
    """Every image (tag × platform, attestations left out) of ``tags`` (default: all but fallback tags).

    Manifests and configs are fetched once per digest, concurrently.
    """
    if tags is None:
        tags = [t for t in await repo.tags.list() if not is_fallback_tag(t)]
    flight = SingleFlight()

    async def manifest(ref: str) -> Manifest:
        return await flight.run(ref, lambda: pull.get_manifest(repo, ref))

    async def config(desc: Descriptor) -> ImageConfig | None:
        return await flight.run(desc.digest, lambda: config_or_none(repo, desc))

    async def of_tag(tag: str) -> list[SizedImage]:
        top = await manifest(tag)
        parsed = top.parsed
        if isinstance(parsed, ImageIndex):
            entries = [d for d in parsed.manifests if not d.is_attestation]
            children = await asyncio.gather(*(manifest(d.digest) for d in entries))
            pairs = [(d.platform, m) for d, m in zip(entries, children, strict=True)]
        else:
            pairs = [(None, top)]
        out = []
        for plat, m in pairs:
            image = m.parsed
            if not isinstance(image, ImageManifest):
                continue
            if plat is None:
                found = await config(image.config)
                plat = found.platform if found is not None else None
            out.append(SizedImage(tag, plat, str(m.digest), image))
        return out

    nested = await gather_progress([of_tag(t) for t in tags], progress=progress, desc="sizes")
    return [image for group in nested for image in group]


@dataclass
class ImageReport:
    """What :func:`ocinb.inspect` shows of one reference: the top manifest, the chosen image, the platforms of
    an index and the referrer tree; ``note`` says why no image could be chosen."""

    registry: str
    reference: str
    top: Manifest
    image: ImageDetails | None = None
    platforms: list[PlatformEntry] | None = None
    referrers: list[ReferrerNode] = field(default_factory=list)
    note: str | None = None
    contents: ImageContents | None = None


INSPECT_CONTENTS_LIMIT = 64 * 1024 * 1024
"""Compressed layer bytes :func:`inspect_image` streams on its own to show the largest files and the waste;
above it, ``contents=True`` asks for them."""


@dataclass
class ImageContents:
    """What :func:`ocinb.inspect` shows of an image's files: the squashed tree and dive's numbers, or a ``note``
    saying why they were not read."""

    squashed: SquashResult | None = None
    waste: WasteSummary | None = None
    layers: list[LayerFiles] = field(default_factory=list)
    note: str | None = None
    os: str | None = None
    """The os-release ``PRETTY_NAME`` (else ``ID-VERSION_ID``), when the image has one."""
    package_counts: dict[str, int] = field(default_factory=dict)
    """Installed packages per ecosystem (deb, apk, pypi, …), from the same layer streams."""


async def image_contents(repo: RepositoryEndpoints, details: ImageDetails, contents: bool | None) -> ImageContents:
    """Read the image's layers for :class:`ImageContents` when asked, or when they are small (never raising)."""
    total = sum(d.size for d in details.image.layers)
    if contents is False:
        return ImageContents(note="files not read (contents=False)")
    if contents is None and total > INSPECT_CONTENTS_LIMIT:
        return ImageContents(note=f"files not read: the layers are {total} bytes (inspect(..., contents=True) "
                                  "reads them)")
    try:
        captured = await capture.capture_layers(repo, list(details.image.layers))
    except (OcinbError, LookupError) as exc:
        return ImageContents(note=f"files not read: {exc}")
    tables = [c.table for c in captured]
    squashed = tarfs.squash(tables)
    catalog = catalogers.catalog_tree(capture.tree_entries(squashed, captured))
    counts: dict[str, int] = {}
    for row in catalog.packages:
        if row.ecosystem != "os":
            counts[row.ecosystem] = counts.get(row.ecosystem, 0) + 1
    os_name = (catalog.os.pretty_name or catalog.os.distro) if catalog.os is not None else None
    return ImageContents(squashed, tarfs.waste(tables, squashed)[1], tables, os=os_name, package_counts=counts)


async def inspect_image(repo: RepositoryEndpoints, ref: str, platform: str | Platform | None = None, *,
                        contents: bool | None = None) -> ImageReport:
    """Gather the :class:`ImageReport` of ``ref`` for ``platform`` (with the files, see :func:`image_contents`)."""
    note = None
    details: ImageDetails | None
    try:
        details = await describe_image(repo, ref, platform)
        top = details.top
    except (ManifestError, PlatformNotFoundError) as exc:  # still show what the reference is
        top, details, note = await pull.get_manifest(repo, ref), None, str(exc)
    if details is not None and not isinstance(details.manifest.parsed, ImageManifest):
        details = None
    report = ImageReport(repo.registry, ref, top, details, note=note)
    if isinstance(top.parsed, ImageIndex):
        report.platforms = await platform_entries(repo, top)
    report.referrers = await referrer_nodes(repo, str(top.digest))
    if details is not None and details.config is not None:
        report.contents = await image_contents(repo, details, contents)
    return report


@dataclass
class ImageFiles:
    """An image's layers read for their files: the image chosen for the platform and one table per layer read
    (``layer_indexes`` says which: all of them unless one was asked for)."""

    details: ImageDetails
    layers: list[LayerFiles]
    layer_indexes: list[int]

    @property
    def image(self) -> ImageManifest:
        return self.details.image

    @property
    def toc_notes(self) -> dict[int, str]:
        """Layer index → why a layer that announced an eStargz or zstd:chunked TOC was streamed whole instead."""
        return {i: t.toc_note for i, t in zip(self.layer_indexes, self.layers, strict=True) if t.toc_note}

    @property
    def diff_id_mismatches(self) -> list[int]:
        """Indexes of layers whose uncompressed digest, computed while streaming, is not the config's
        ``rootfs.diff_ids`` entry (the spec pairs ``diff_ids[i]`` with ``layers[i]``)."""
        config = self.details.config
        if config is None or config.rootfs is None or len(config.rootfs.diff_ids) != len(self.image.layers):
            return []
        expected = config.rootfs.diff_ids
        return [i for i, t in zip(self.layer_indexes, self.layers, strict=True)
                if t.diff_id is not None and str(expected[i]) != t.diff_id]


async def image_files(repo: RepositoryEndpoints, ref: str, platform: str | Platform | None = None, *,
                      layer: int | str | None = None, digests: bool = False, limits: LayerLimits | None = None,
                      progress: bool | None = None) -> ImageFiles:
    """Resolve ``ref`` for ``platform`` and read its layers (or the one ``layer``) with the streamed reader."""
    details = await describe_image(repo, ref, platform)
    image = details.image
    indexes = layer_reader.pick_layers(image, layer)
    tables = await layer_reader.read_layers(repo, [image.layers[i] for i in indexes], digests=digests,
                                            limits=limits, progress=progress)
    return ImageFiles(details, tables, indexes)
