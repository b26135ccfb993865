"""Reading images: manifests through the content cache, platform resolution, configs, whole pulls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import media_types as mt
from ..digest import Digest, Hasher, is_digest
from ..endpoints.repository import RepositoryEndpoints
from ..errors import ManifestError, PlatformNotFoundError
from ..manifest import Manifest
from ..models import Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform, parse_config

MAX_CONFIG_SIZE = 16 * 1024 * 1024


async def get_manifest(repo: RepositoryEndpoints, ref: str) -> Manifest:
    """A manifest by tag or digest, through the repository's content cache.

    By digest: the cache, else one GET. By tag: the first time one GET; after that a HEAD re-resolves
    the tag (tags move) and the cached body is reused when the digest is unchanged.
    """
    cache = repo.cache
    if is_digest(ref):
        data = cache.get(ref)  # verified against ref on read
        if data is not None:
            return Manifest.from_bytes(data, digest=Digest.parse(ref), repository=repo.name, reference=ref)
        m = await repo.manifests.get(ref)
        cache.put(str(m.digest), m.data)
        return m
    if cache.knows_tag(repo.registry, repo.name, ref):
        desc = await repo.manifests.head(ref)
        data = cache.get(desc.digest)
        if data is not None:
            return Manifest.from_bytes(data, desc.media_type, digest=Digest.parse(desc.digest),
                                       repository=repo.name, reference=ref)
        m = await repo.manifests.get(desc.digest)
    else:
        m = await repo.manifests.get(ref)
    cache.put(str(m.digest), m.data)
    cache.remember_tag(repo.registry, repo.name, ref)
    return Manifest(m.data, m.media_type, m.digest, repo.name, ref)


async def config_bytes(repo: RepositoryEndpoints, desc: Descriptor) -> bytes:
    """The raw bytes of a config blob (verified, through the content cache)."""
    cache = repo.cache
    data = cache.get(desc.digest)
    if data is None:
        data = await repo.blobs.get(desc.digest, size=desc.size, max_size=MAX_CONFIG_SIZE)
        cache.put(desc.digest, data)
    return data


async def fetch_config(repo: RepositoryEndpoints, desc: Descriptor) -> ImageConfig:
    """The parsed image config (raises :class:`ManifestError` for a blob that is not one)."""
    return parse_config(await config_bytes(repo, desc))


def _candidates(index: ImageIndex) -> list[Descriptor]:
    """The entries that may be run, in index order: those with a platform, and image manifests without one
    (``platform`` is optional in the image-index spec); attestations never."""
    return [d for d in index.manifests
            if not d.is_attestation and (d.platform is not None or mt.is_manifest(d.media_type))]


def select_platform(index: ImageIndex, platform: str | Platform | None) -> Descriptor:
    """The index entry to run, by the platforms the index declares: the requested platform, else the only
    candidate (an image entry without a platform counts), else linux/amd64, else the first.

    Attestation entries (``unknown/unknown``) are never chosen. Entries without a platform are matched by
    their config's platform in :func:`choose_entry`, which needs the registry.
    """
    runnable = index.platform_descriptors(include_attestations=False)
    if platform is not None:
        found = index.find(platform)
        if found is None:
            raise PlatformNotFoundError(str(platform), [str(d.platform) for d in runnable if d.platform])
        return found
    candidates = _candidates(index)
    if not candidates:
        raise ManifestError("the index lists no runnable platform")
    if len(candidates) == 1:
        return candidates[0]
    return index.find("linux/amd64") or candidates[0]


async def _entry_config(repo: RepositoryEndpoints, desc: Descriptor) -> ImageConfig | None:
    """The image config of an index entry; None when its config is not an image config (an artifact)."""
    image = (await get_manifest(repo, desc.digest)).as_manifest()
    try:
        return await fetch_config(repo, image.config)
    except ManifestError:
        return None


def _best_match(described: list[tuple[Descriptor, ImageConfig | None]], want: str | Platform
                ) -> tuple[Descriptor, ImageConfig] | None:
    """The first entry whose config's platform satisfies ``want``, one with exactly the requested variant first
    (the preference of :meth:`ImageIndex.find`)."""
    wanted = Platform.parse(want) if isinstance(want, str) else want
    matching = [(d, c, c.platform) for d, c in described
                if c is not None and c.platform is not None and c.platform.matches(wanted)]
    exact = [m for m in matching if m[2].normalized()[2] == wanted.normalized()[2]]
    best = exact or matching
    return (best[0][0], best[0][1]) if best else None


async def choose_entry(repo: RepositoryEndpoints, index: ImageIndex, platform: str | Platform | None
                       ) -> tuple[Descriptor, ImageConfig | None]:
    """The index entry to run and, when choosing needed it, its config.

    As :func:`select_platform`, but an entry without a platform is described by its config's platform, as
    ``platforms()`` shows it; those configs are fetched only when the declared platforms do not settle it.
    """
    candidates = _candidates(index)
    undeclared = [d for d in candidates if d.platform is None]
    want = platform if platform is not None else "linux/amd64" if len(candidates) > 1 else None
    if not undeclared or want is None or index.find(want) is not None:
        return select_platform(index, platform), None
    configs = await asyncio.gather(*(_entry_config(repo, d) for d in undeclared))
    described = list(zip(undeclared, configs, strict=True))
    match = _best_match(described, want)
    if match is not None:
        return match
    if platform is None:  # several candidates, none of them linux/amd64: the first, as select_platform
        first = candidates[0]
        return first, next((c for d, c in described if d is first), None)
    offered = [str(d.platform) for d in index.platform_descriptors()]
    offered += [str(c.platform) for _, c in described if c is not None and c.platform is not None]
    raise PlatformNotFoundError(str(platform), offered)


@dataclass
class ResolvedImage:
    """What a reference resolves to: the top manifest (maybe an index) and the chosen image manifest."""

    repository: str
    reference: str
    top: Manifest
    manifest: Manifest
    entry: Descriptor | None = None
    config: ImageConfig | None = None
    """The config, when resolving already had to fetch it (to check a single image's platform, or to match
    an index entry without a platform)."""

    @property
    def platform(self) -> Platform | None:
        """The entry's platform, else (an entry without one) its config's, when resolving fetched it."""
        declared = self.entry.platform if self.entry else None
        return declared or (self.config.platform if self.config is not None and self.entry else None)

    @property
    def image(self) -> ImageManifest:
        return self.manifest.as_manifest()


async def resolve(repo: RepositoryEndpoints, ref: str, platform: str | Platform | None = None) -> ResolvedImage:
    """Resolve ``ref`` to an image manifest, choosing the platform when it names an index.

    A single image asked for another platform than its config's raises :class:`PlatformNotFoundError`
    rather than answering with the wrong platform.
    """
    top = await get_manifest(repo, ref)
    if not top.is_index:
        config = None
        if platform is not None:
            image = top.as_manifest()
            try:
                config = await fetch_config(repo, image.config)
            except ManifestError:
                config = None  # an artifact: no platform to compare
            have = config.platform if config is not None else None
            if have is not None and not have.matches(platform):
                raise PlatformNotFoundError(str(platform), [str(have)],
                                            f"{repo.name}{'@' if is_digest(ref) else ':'}{ref}")
        return ResolvedImage(repo.name, ref, top, top, None, config)
    entry, config = await choose_entry(repo, top.as_index(), platform)
    child = await get_manifest(repo, entry.digest)
    return ResolvedImage(repo.name, ref, top, child, entry, config)


def _file_matches(path: Path, digest: str) -> bool:
    """Whether the file at ``path`` hashes to ``digest`` (read in 1 MiB pieces)."""
    hasher = Hasher(digest)
    with open(path, "rb") as fh:
        while data := fh.read(1024 * 1024):
            hasher.update(data)
    return hasher.digest() == digest


@dataclass
class PulledImage:
    """A pulled image: its resolution, the config, and (on request) where the layers were written."""

    resolved: ResolvedImage
    config: ImageConfig
    config_bytes: bytes = field(repr=False)
    layer_paths: list[Path] = field(default_factory=list)

    @property
    def manifest(self) -> ImageManifest:
        return self.resolved.image

    @property
    def digest(self) -> str:
        return str(self.resolved.manifest.digest)


async def pull(repo: RepositoryEndpoints, ref: str, *, platform: str | Platform | None = None,
               layers: bool = False, dest: str | Path | None = None,
               progress: Callable[[int], Any] | None = None) -> PulledImage:
    """Resolve, fetch the config and, with ``layers=True``, download every layer (verified) into ``dest``."""
    resolved = await resolve(repo, ref, platform)
    image = resolved.image
    raw = await config_bytes(repo, image.config)
    config = parse_config(raw)
    paths: list[Path] = []
    if layers:
        folder = Path(dest) if dest is not None else Path.cwd() / "layers"

        async def one(desc: Descriptor) -> Path:
            target = folder / desc.digest.replace(":", "-")
            if target.exists() and target.stat().st_size == desc.size and await asyncio.to_thread(
                    _file_matches, target, desc.digest):
                return target  # already there and verified: content addressed, so still right
            return await repo.blobs.download(desc.digest, target, size=desc.size, progress=progress)

        paths = list(await asyncio.gather(*(one(d) for d in image.layers)))
    return PulledImage(resolved, config, raw, paths)
