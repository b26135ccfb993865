"""``AsyncClient``: one registry, its repositories, and every endpoint as an awaitable method."""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from . import tarfs
from ._http.budget import RateBudget
from ._http.credentials import Credentials, resolve_credentials
from ._http.transport import HttpCore, RateLimit, RetryPolicy, Stats
from .cache import ContentCache
from .endpoints import Ping, PutResult, catalog, catalog_pages, ping
from .endpoints._base import MAX_MANIFEST_SIZE, RegistryState
from .endpoints.repository import RepositoryEndpoints
from .errors import DigestMismatchError, InvalidReferenceError
from .manifest import Manifest
from .models import Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform
from .ops import copy as copy_ops
from .ops import describe
from .ops import pull as pull_ops
from .ops import push as push_ops
from .ops.copy import CopyReport
from .ops.crawl import CrawlReport, Target
from .ops.describe import ImageFiles
from .ops.referrers import MAX_REFERRER_DEPTH, ReferrerNode, walk

if TYPE_CHECKING:
    import pandas as pd

    from .image_diff import ImageDiff
    from .layer_views import FilesystemTree
    from .views import DoctorReport, InspectView

from .reference import Reference, api_host, parse_registry
from .tarfs import LayerLimits, WasteSummary


class AsyncRepository(RepositoryEndpoints):
    """One repository: the endpoints ``tags``, ``manifests``, ``blobs``, ``uploads`` and ``referrers``, and what
    users mean (resolve, pull, push, copy) on top of them."""

    def __init__(self, client: AsyncClient, name: str) -> None:
        super().__init__(client._core, name, registry=client.registry, state=client.state, cache=client.cache,
                         max_manifest_size=client.max_manifest_size)
        self.client = client

    async def get_manifest(self, ref: str) -> Manifest:
        """A manifest through the content cache (tags re-resolved with HEAD, digests served from cache)."""
        return await pull_ops.get_manifest(self, ref)

    async def resolve(self, ref: str = "latest", platform: str | Platform | None = None) -> pull_ops.ResolvedImage:
        """Resolve a tag or digest to the image manifest for ``platform`` (attestation entries skipped)."""
        return await pull_ops.resolve(self, ref, platform)

    async def config(self, ref: str = "latest", platform: str | Platform | None = None) -> ImageConfig:
        """The image config of ``ref`` for ``platform``."""
        resolved = await self.resolve(ref, platform)
        return resolved.config or await pull_ops.fetch_config(self, resolved.image.config)

    async def pull(self, ref: str = "latest", *, platform: str | Platform | None = None, layers: bool = False,
                   dest: str | Path | None = None) -> pull_ops.PulledImage:
        """Resolve, fetch the config and optionally download the layers (verified, resumable) into ``dest``."""
        return await pull_ops.pull(self, ref, platform=platform, layers=layers, dest=dest)

    async def push_manifest(self, ref: str, manifest: Manifest | ImageManifest | ImageIndex | bytes,
                            media_type: str | None = None) -> PutResult:
        """PUT a manifest, keeping the referrers fallback tag up to date when the registry has no API."""
        return await push_ops.push_manifest(self, ref, manifest, media_type)

    async def delete_manifest(self, digest: str) -> None:
        """DELETE a manifest, removing its entry from its subject's fallback referrers index."""
        await push_ops.delete_manifest(self, digest)

    async def push_image(self, ref: str, config: ImageConfig | Mapping[str, Any] | bytes,
                         layers: Sequence[push_ops.LayerLike] = (), **kwargs: Any) -> PutResult:
        """Push layers and config, then the image manifest to ``ref`` (see :func:`ocinb.ops.push.push_image`)."""
        return await push_ops.push_image(self, ref, config, layers, **kwargs)

    async def push_index(self, ref: str, manifests: Iterable[Descriptor | Manifest | PutResult],
                         **kwargs: Any) -> PutResult:
        """Push an index over manifests already pushed (see :func:`ocinb.ops.push.push_index`)."""
        return await push_ops.push_index(self, ref, manifests, **kwargs)

    async def referrers_tree(self, ref: str, *, max_depth: int = MAX_REFERRER_DEPTH) -> list[ReferrerNode]:
        """Every referrer of ``ref`` and of its referrers, breadth first."""
        m = await self.get_manifest(ref)
        return await walk(self, str(m.digest), max_depth=max_depth)

    async def copy_to(self, dst: AsyncRepository, ref: str, dst_ref: str | None = None, *,
                      platforms: Sequence[str | Platform] | None = None, referrers: bool = False) -> CopyReport:
        """Copy ``ref`` and its whole graph to ``dst`` (mounting when both share a registry)."""
        return await copy_ops.copy(self, ref, dst, dst_ref, platforms=platforms, referrers=referrers)


class AsyncClient:
    """An async client of one OCI registry (the primary API; ``await`` works in notebooks).

    ``registry`` is a host (``ghcr.io``, ``127.0.0.1:5000``, ``docker.io``). Credentials come from the
    arguments, else ``OCINB_USERNAME``/``OCINB_PASSWORD``, else Docker's ``config.json`` (pass
    ``docker_config=False`` to skip it). Local hosts use plain HTTP; ``insecure=True`` forces it.
    ``verify`` takes a CA bundle path or an ``ssl.SSLContext`` for corporate CAs (without it,
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are honoured). Proxies come from ``HTTPS_PROXY``/``HTTP_PROXY``/
    ``ALL_PROXY``/``NO_PROXY`` as curl reads them; ``proxy=`` overrides those (``""``: no proxy), and only
    it sends a loopback registry through a proxy.
    """

    def __init__(
        self,
        registry: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        insecure: bool | None = None,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float = 60.0,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        docker_config: bool = True,
        environment: bool = True,
        max_manifest_size: int = MAX_MANIFEST_SIZE,
        cache: ContentCache | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_budget: RateBudget | None = None,
        proxy: str | None = None,
    ) -> None:
        self.registry = parse_registry(registry)
        self.host = api_host(self.registry)
        credentials: Credentials | None = resolve_credentials(
            self.registry, username=username, password=password, identity_token=token,
            use_environment=environment, use_docker_config=docker_config,
        )
        self.max_manifest_size = max_manifest_size
        self.cache = cache if cache is not None else ContentCache()
        self.state = RegistryState()
        """What has been learned about the registry (referrers API, single POST, uploads in flight)."""
        self._core = HttpCore(self.host, credentials=credentials, insecure=insecure, verify=verify, timeout=timeout,
                              max_concurrency=max_concurrency, retry=retry, transport=transport,
                              rate_budget=rate_budget, proxy=proxy)
        self._tls = (insecure, verify, transport)  # what the doctor's anonymous probe needs to reach the same host

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._core.base_url}>"

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def rate_limit(self) -> RateLimit:
        """Docker Hub's rate-limit headers as last seen (``limit``, ``remaining``, ``window_seconds``)."""
        return self._core.rate_limit

    @property
    def warnings(self) -> list[str]:
        """``Warning: 299`` texts the registry sent, each once."""
        return list(self._core.warnings)

    @property
    def stats(self) -> Stats:
        """Request counters (``requests``, ``by_method``, ``retries``, ``redirects``)."""
        return self._core.stats

    def repo(self, name: str) -> AsyncRepository:
        """The repository ``name`` (validated now, before any request)."""
        return AsyncRepository(self, name)

    def parse(self, ref: str) -> tuple[AsyncRepository, str]:
        """``"demo/app:1.0"`` (or a full reference on this registry) → (repository, tag or digest)."""
        parsed = Reference.parse(ref, default_registry=self.registry)
        if parsed.registry != self.registry:
            raise InvalidReferenceError(
                f"reference {ref!r} names registry {parsed.registry!r}, but this client talks to {self.registry!r}")
        return self.repo(parsed.repository), parsed.identifier

    async def pull(self, ref: str, *, platform: str | Platform | None = None, layers: bool = False,
                   dest: str | Path | None = None) -> pull_ops.PulledImage:
        """Pull ``repo:tag`` or ``repo@digest`` from this registry (see :meth:`AsyncRepository.pull`)."""
        repo, ident = self.parse(ref)
        return await repo.pull(ident, platform=platform, layers=layers, dest=dest)

    async def copy(self, src_ref: str, dst_ref: str, *, dst_client: AsyncClient | None = None,
                   platforms: Sequence[str | Platform] | None = None, referrers: bool = False) -> CopyReport:
        """Copy an image graph to ``dst_ref`` on this registry or on ``dst_client``'s.

        ``dst_ref`` without a tag takes the source's tag; with a digest only, no tag is pushed.
        """
        src_repo, ident = self.parse(src_ref)
        dst = dst_client or self
        dst_repo, _ = dst.parse(dst_ref)
        wanted = Reference.parse(dst_ref, default_registry=dst.registry)
        tag = wanted.tag if wanted.tag or not wanted.digest else ""  # "": push no tag at all
        report = await src_repo.copy_to(dst_repo, ident, tag, platforms=platforms, referrers=referrers)
        if wanted.digest and report.digest != wanted.digest:
            raise DigestMismatchError(wanted.digest, report.digest, f"copy of {src_ref} (the destination's digest)")
        return report

    async def ping(self) -> Ping:
        """end-1 ``GET /v2/``: checks the API and the credentials."""
        return await ping(self._core)

    async def catalog(self, n: int | None = None, last: str | None = None) -> list[str]:
        """Every repository the registry lists (all pages of ``/v2/_catalog``)."""
        return await catalog(self._core, n, last)

    def catalog_pages(self, n: int | None = None, last: str | None = None) -> AsyncIterator[list[str]]:
        """The catalog page by page (an async iterator of lists)."""
        return catalog_pages(self._core, n, last)

    def _attrs(self, df: pd.DataFrame, **extra: Any) -> pd.DataFrame:
        from . import frames

        return frames.provenance(df, registry=self.registry, rate_limit=self.rate_limit, **extra)

    async def tags(self, repository: str, *, resolve: bool = False, progress: bool | None = None,
                   referrer_tags: bool = False) -> pd.DataFrame:
        """DataFrame: one row per tag of ``repository`` (with ``resolve=True`` its digest, media type, size).

        Referrers fallback tags (``sha256-<hex>``) are left out unless ``referrer_tags=True``.
        """
        from . import frames

        entries = await describe.list_tags(self.repo(repository), resolve=resolve, referrer_tags=referrer_tags,
                                           progress=progress)
        return self._attrs(frames.tags_frame(entries, resolve=resolve), repository=repository)

    async def platforms(self, ref: str, *, progress: bool | None = None) -> pd.DataFrame:
        """DataFrame: one row per index entry of ``ref`` (attestations flagged, last)."""
        from . import frames

        repo, ident = self.parse(ref)
        found = await describe.describe_platforms(repo, ident, progress=progress)
        top = found.top
        return self._attrs(frames.platforms_frame(found.entries), reference=ref, digest=str(top.digest),
                           media_type=top.media_type)

    async def _image(self, ref: str, platform: str | Platform | None) -> tuple[describe.ImageDetails, dict[str, Any]]:
        repo, ident = self.parse(ref)
        details = await describe.describe_image(repo, ident, platform)
        attrs = {"reference": ref, "digest": str(details.manifest.digest),
                 "index_digest": str(details.top.digest) if details.entry is not None else None,
                 "platform": str(details.platform) if details.platform is not None else None}
        return details, attrs

    async def layers(self, ref: str, platform: str | Platform | None = None) -> pd.DataFrame:
        """DataFrame: one row per layer of ``ref`` for ``platform``, with the history step that made it."""
        from . import frames

        details, attrs = await self._image(ref, platform)
        return self._attrs(frames.layers_frame(details.image, details.config), **attrs)

    async def history(self, ref: str, platform: str | Platform | None = None) -> pd.DataFrame:
        """DataFrame: one row per history entry of the image config, empty layers included."""
        from . import frames

        details, attrs = await self._image(ref, platform)
        return self._attrs(frames.history_frame(details.image, details.config), **attrs)

    async def referrers(self, ref: str, *, recursive: bool = True) -> pd.DataFrame:
        """DataFrame: one row per referrer of ``ref`` (signatures, SBOMs, attestations), with depth."""
        from . import frames

        repo, ident = self.parse(ref)
        top = await repo.get_manifest(ident)
        nodes = await describe.referrer_nodes(repo, str(top.digest), recursive=recursive)
        return self._attrs(frames.referrers_frame(nodes), reference=ref, digest=str(top.digest))

    async def catalog_frame(self) -> pd.DataFrame:
        """DataFrame: one row per repository of the catalog."""
        from . import frames

        return self._attrs(frames.catalog_frame(await self.catalog()))

    async def sizes(self, repository: str, tags: Sequence[str] | None = None, *,
                    progress: bool | None = None) -> pd.DataFrame:
        """DataFrame: the size audit, tag × platform, with bytes unique and shared (deduplicated by layer)."""
        from . import frames

        images = await describe.sized_images(self.repo(repository), tags, progress=progress)
        return self._attrs(frames.sizes_frame(images), repository=repository)

    async def crawl(self, targets: Sequence[str], out: str | os.PathLike[str],
                    tables: str | Sequence[str] | None = None, *, resume: bool = True,
                    progress: bool | None = None) -> CrawlReport:
        """Crawl this registry's ``targets`` (the registry itself, or repositories and references relative to it)
        into Parquet under ``out``, one dataset per table, resumable (see :func:`ocinb.crawl`)."""
        from . import crawl_tables
        from .ops import crawl as crawl_ops

        chosen = crawl_tables.select(tables)

        def target(text: str) -> Target:
            if text in (self.registry, self.host):
                return Target(self.registry)
            ref = Reference.parse(text, default_registry=self.registry)
            return Target(ref.registry, ref.repository, ref.digest or ref.tag)

        def open_repo(registry: str, name: str) -> AsyncRepository:
            if registry != self.registry:
                raise InvalidReferenceError(f"{registry}/{name} is not on {self.registry}, the registry of this "
                                            "client; use ocinb.crawl for several registries")
            return self.repo(name)

        async def list_catalog(registry: str) -> list[str]:
            open_repo(registry, "x")
            return await self.catalog()

        return await crawl_ops.crawl([target(t) for t in targets], out, chosen, crawl_tables.errors_frame,
                                     open_repo=open_repo,
                                     list_catalog=list_catalog, resume=resume, progress=progress)

    async def _image_files(self, ref: str, platform: str | Platform | None, layer: int | str | None = None,
                           digests: bool = False, progress: bool | None = None,
                           limits: LayerLimits | None = None) -> tuple[ImageFiles, dict[str, Any]]:
        repo, ident = self.parse(ref)
        found = await describe.image_files(repo, ident, platform, layer=layer, digests=digests, limits=limits,
                                               progress=progress)
        d = found.details
        attrs = {"reference": ref, "digest": str(d.manifest.digest),
                 "index_digest": str(d.top.digest) if d.entry is not None else None,
                 "platform": str(d.platform) if d.platform is not None else None,
                 "diff_id_mismatches": found.diff_id_mismatches or None, "toc_fallbacks": found.toc_notes or None}
        return found, attrs

    async def files(self, ref: str, platform: str | Platform | None = None, layer: int | str | None = None, *,
                    digests: bool = False, progress: bool | None = None,
                    limits: LayerLimits | None = None) -> pd.DataFrame:
        """DataFrame: every tar entry of every layer of ``ref`` (or of ``layer``, an index or digest), streamed
        from the registry, verified, and cached by layer digest. ``digests=True`` adds each file's sha256."""
        from . import layer_frames

        found, attrs = await self._image_files(ref, platform, layer, digests, progress, limits)
        return self._attrs(layer_frames.files_frame(found.layers, found.layer_indexes), **attrs)

    async def filesystem(self, ref: str, platform: str | Platform | None = None, *, digests: bool = False,
                         progress: bool | None = None, limits: LayerLimits | None = None) -> pd.DataFrame:
        """DataFrame: the squashed filesystem of ``ref`` (whiteouts and opaque whiteouts applied as the image-spec
        says), with the layer that last wrote each path and how many versions it had."""
        from . import layer_frames

        found, attrs = await self._image_files(ref, platform, None, digests, progress, limits)
        squashed = tarfs.squash(found.layers)
        return self._attrs(layer_frames.filesystem_frame(squashed, found.layers), **attrs)

    async def filesystem_tree(self, ref: str, platform: str | Platform | None = None, *,
                              progress: bool | None = None) -> FilesystemTree:
        """The squashed filesystem of ``ref`` as a collapsible tree with the bytes under each directory."""
        from . import layer_views

        found, _ = await self._image_files(ref, platform, None, False, progress)
        return layer_views.FilesystemTree(ref, tarfs.squash(found.layers))

    async def waste(self, ref: str, platform: str | Platform | None = None, *, progress: bool | None = None,
                    limits: LayerLimits | None = None) -> pd.DataFrame:
        """DataFrame: per path, the copies across layers and their bytes; ``attrs`` carries dive's efficiency,
        wasted bytes and user-wasted percent, the reclaimable and the spec-correct hidden bytes (and ``summary``,
        a :class:`~ocinb.WasteSummary`)."""
        from . import layer_frames

        found, attrs = await self._image_files(ref, platform, None, False, progress, limits)
        rows, summary = tarfs.waste(found.layers)
        return self._attrs(layer_frames.waste_frame(rows), **attrs, **summary.as_dict(), summary=summary)

    async def waste_summary(self, ref: str, platform: str | Platform | None = None, *,
                            progress: bool | None = None) -> WasteSummary:
        """dive's efficiency numbers and the spec-correct hidden bytes of ``ref`` (see :meth:`waste`)."""
        found, _ = await self._image_files(ref, platform, None, False, progress)
        return tarfs.waste(found.layers)[1]

    async def packages(self, ref: str, platform: str | Platform | None = None, *,
                       limits: LayerLimits | None = None) -> pd.DataFrame:
        """DataFrame: one row per installed package of ``ref`` (dpkg, apk, rpm, Python, npm, Go), with the layer
        that installed it and its purl, then warning rows; read from the layer streams (only the files the
        catalogers want are buffered), never unpacked. ``attrs['os']`` is the os-release found, if any."""
        from . import frames
        from .ops import packages as packages_ops

        repo, ident = self.parse(ref)
        found = await packages_ops.image_packages(repo, ident, platform, limits=limits)
        d, os_release = found.details, found.catalog.os
        return self._attrs(frames.packages_frame(found.catalog.rows), reference=ref, digest=str(d.manifest.digest),
                           platform=str(d.platform) if d.platform is not None else None,
                           os=os_release.pretty_name or os_release.distro if os_release is not None else None,
                           os_id=os_release.id if os_release is not None else None,
                           os_version=os_release.version_id if os_release is not None else None)

    async def diff(self, a: str, b: str, platform: str | Platform | None = None, *, semantic: bool = True,
                   ignore_paths: Sequence[str] = (), read_base: bool | None = None,
                   b_client: AsyncClient | None = None) -> ImageDiff:
        """What changed from ``a`` to ``b`` (``b`` from ``b_client``'s registry when given): files over the
        squashed trees, layers, history, config, sizes and packages. Only the layers above the shared base are
        read; the base only where a whiteout reaches into it or a cataloged file is on one side only (from the
        cache when known), always with ``read_base=True``, never with ``False``."""
        from . import image_diff
        from .ops import imagediff

        repo_a, ident_a = self.parse(a)
        repo_b, ident_b = (b_client or self).parse(b)
        result = await imagediff.diff_images(repo_a, ident_a, repo_b, ident_b, platform, semantic=semantic,
                                             ignore_paths=ignore_paths, read_base=read_base)
        found = image_diff.ImageDiff.of(a, b, result)
        for name in image_diff.TABLES:
            self._attrs(found.table(name), a=a, b=b, a_digest=str(result.a.details.manifest.digest),
                        b_digest=str(result.b.details.manifest.digest), shared_layers=result.shared,
                        base_read=result.base_read)
        return found

    async def inspect(self, ref: str, platform: str | Platform | None = None, *,
                      contents: bool | None = None) -> InspectView:
        """A rich view of ``ref`` (``_repr_html_`` in notebooks, readable ``repr`` in terminals); the largest files
        and the waste when the layers are small or ``contents=True``."""
        from . import views

        repo, ident = self.parse(ref)
        report = await describe.inspect_image(repo, ident, platform, contents=contents)
        report.reference = ref
        return views.InspectView.from_report(report)

    async def doctor(self, repository: str | None = None, *, write: str | None = None) -> DoctorReport:
        """What the registry supports, checked one capability at a time (see :mod:`ocinb.ops.doctor`).

        Read-only unless ``write`` names a scratch repository: then uploads, mount, deletes and ``OCI-Subject``
        are tried there and everything pushed is deleted. What is learnt goes into :attr:`state`.
        """
        from . import frames, views
        from .ops import doctor as doctor_ops

        insecure, verify, transport = self._tls
        anonymous = None if self._core.anonymous else HttpCore(self.host, insecure=insecure, verify=verify,
                                                               transport=transport)
        try:
            found = await doctor_ops.diagnose(
                self._core, self.state, registry=self.registry, verify=verify, anonymous=anonymous,
                repository=self.repo(repository) if repository else None, scratch=self.repo(write) if write else None)
        finally:
            if anonymous is not None:
                await anonymous.aclose()
        df = self._attrs(frames.doctor_frame(found.checks), repository=found.repository, scratch=write,
                         pushed=found.pushed if write else None, left=found.left if write else None)
        return views.DoctorReport.of(df)

    async def aclose(self) -> None:
        await self._core.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
