"""pandas DataFrames over a registry: tags, platforms, layers, history, referrers, catalog and the size audit.

The ``*_frame`` builders are async and take an :class:`~ocinb.client.AsyncClient`; the module-level
functions (``tags``, ``platforms``, …) take full references and run on a cached default client per
registry. Columns and dtypes are stable and listed in each docstring and in ``docs/columns.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from . import media_types as mt
from ._sync import run_sync
from .endpoints.referrers import is_fallback_tag
from .errors import ManifestError, NotFoundError, OcinbError, VerificationError
from .manifest import Manifest
from .models import Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform, parse_timestamp
from .ops import pull as pull_ops
from .ops.referrers import ReferrerNode, walk
from .reference import Reference

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .client import AsyncClient, AsyncRepository

T = TypeVar("T")

PROGRESS_THRESHOLD = 20
"""Above this many concurrent fetches a ``tqdm.auto`` progress bar is shown (unless ``progress=False``)."""

STR = "str" if int(pd.__version__.split(".")[0]) >= 3 else "string"
"""pandas' string dtype: ``"str"`` in pandas 3, ``"string"`` in pandas 2."""


UTC_TIME = "datetime64[us, UTC]"
"""Every time column: UTC, microseconds (what registries' timestamps carry; pandas 3's default unit)."""

TAGS_COLUMNS = {"tag": STR, "digest": STR, "media_type": STR, "size": "Int64"}
PLATFORMS_COLUMNS = {
    "platform": STR, "os": STR, "architecture": STR, "variant": STR, "os_version": STR, "digest": STR,
    "media_type": STR, "manifest_size": "int64", "image_size": "Int64", "layer_count": "Int64",
    "created": UTC_TIME, "is_attestation": "bool", "attests": STR,
}
LAYERS_COLUMNS = {
    "position": "int64", "digest": STR, "media_type": STR, "size": "int64", "share": "float64",
    "created_by": STR, "created": UTC_TIME,
}
HISTORY_COLUMNS = {
    "step": "int64", "created": UTC_TIME, "created_by": STR, "comment": STR, "author": STR,
    "empty_layer": "bool", "layer_digest": STR, "layer_size": "Int64",
}
REFERRERS_COLUMNS = {
    "digest": STR, "artifact_type": STR, "media_type": STR, "size": "int64", "subject": STR, "depth": "int64",
    "created": UTC_TIME, "title": STR,
}
CATALOG_COLUMNS = {"repository": STR}
SIZES_COLUMNS = {
    "tag": STR, "platform": STR, "digest": STR, "size": "int64", "unique_size": "int64", "shared_size": "int64",
    "layer_count": "int64",
}


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    """A DataFrame with exactly ``columns`` in order and their dtypes, even when ``rows`` is empty."""
    data: dict[str, Any] = {}
    for name, dtype in columns.items():
        values = [row.get(name) for row in rows]
        if dtype.startswith("datetime64"):
            data[name] = pd.Series(pd.to_datetime(values, utc=True)).astype(dtype)
        elif dtype == "bool":
            data[name] = pd.Series([bool(v) for v in values], dtype="bool")
        elif dtype == STR:
            data[name] = pd.Series([None if v is None else str(v) for v in values], dtype=STR)
        else:
            data[name] = pd.Series([pd.NA if v is None else v for v in values], dtype=dtype)
    return pd.DataFrame(data, columns=list(columns))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _provenance(df: pd.DataFrame, client: AsyncClient, **extra: Any) -> pd.DataFrame:
    """Record where the frame came from in ``df.attrs``: registry, reference, digest, fetched_at, rate_limit."""
    df.attrs["registry"] = client.registry
    for key, value in extra.items():
        if value is not None:
            df.attrs[key] = value
    df.attrs["fetched_at"] = _now()
    limit = client.rate_limit
    if limit.limit is not None or limit.remaining is not None:
        df.attrs["rate_limit"] = dataclasses.asdict(limit)
    return df


async def gather_progress(aws: Sequence[Awaitable[T]], *, progress: bool | None = None,
                          desc: str | None = None) -> list[T]:
    """``asyncio.gather`` with a ``tqdm.auto`` bar when there are many items (``progress=False`` hides it)."""
    show = progress if progress is not None else len(aws) > PROGRESS_THRESHOLD
    if not show or not aws:
        return list(await asyncio.gather(*aws))
    from tqdm.auto import tqdm

    bar = tqdm(total=len(aws), desc=desc, leave=False)

    async def tick(aw: Awaitable[T]) -> T:
        try:
            return await aw
        finally:
            bar.update(1)

    try:
        return list(await asyncio.gather(*(tick(aw) for aw in aws)))
    finally:
        bar.close()


class _Memo:
    """One in-flight or finished fetch per key, so concurrent rows never fetch the same digest twice."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Future[Any]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._tasks[key] = task
        return await asyncio.shield(task)


async def _config_or_none(repo: AsyncRepository, desc: Descriptor) -> ImageConfig | None:
    """The image config, or None when the blob is not an image config (artifacts) or is unreadable."""
    try:
        return (await pull_ops.get_config(repo, desc))[0]
    except (ManifestError, NotFoundError, VerificationError):
        return None


def _platform_str(platform: Platform | None) -> str | None:
    return str(platform) if platform is not None else None


async def tags_frame(client: AsyncClient, repository: str, *, resolve: bool = False,
                     progress: bool | None = None, referrer_tags: bool = False) -> pd.DataFrame:
    """One row per tag of ``repository``.

    Columns: ``tag``; with ``resolve=True`` also ``digest``, ``media_type``, ``size`` (manifest bytes,
    Int64, <NA> when the tag vanished meanwhile), fetched concurrently with HEAD. Referrers fallback
    tags (``sha256-<hex>``) are left out unless ``referrer_tags=True``.
    """
    repo = client.repo(repository)
    names = [t for t in await repo.tags.list() if referrer_tags or not is_fallback_tag(t)]
    columns = dict(TAGS_COLUMNS) if resolve else {"tag": STR}
    rows: list[dict[str, Any]] = [{"tag": t} for t in names]
    if resolve:
        async def head(tag: str) -> Descriptor | None:
            try:
                return await repo.manifests.head(tag)
            except NotFoundError:
                return None

        descs = await gather_progress([head(t) for t in names], progress=progress, desc="tags")
        for row, desc in zip(rows, descs, strict=True):
            if desc is not None:
                row.update(digest=desc.digest, media_type=desc.media_type, size=desc.size)
    return _provenance(_frame(rows, columns), client, repository=repository)


async def _platform_rows(repo: AsyncRepository, top: Manifest, *, progress: bool | None = None,
                         memo: _Memo | None = None) -> list[dict[str, Any]]:
    """Rows of the platforms frame for a fetched top manifest (an index, or a single image)."""
    memo = memo or _Memo()

    async def image_row(desc: Descriptor, manifest: Manifest | None) -> dict[str, Any]:
        platform = desc.platform
        annotations = desc.annotations or {}
        row: dict[str, Any] = {
            "digest": desc.digest, "media_type": desc.media_type, "manifest_size": desc.size,
            "is_attestation": desc.is_attestation, "attests": annotations.get(mt.ATTESTATION_DIGEST_ANNOTATION),
        }
        if manifest is None and not desc.is_attestation:  # attestations are not pulled: rate limits
            try:
                manifest = await memo.get(desc.digest, lambda: pull_ops.get_manifest(repo, desc.digest))
            except (NotFoundError, ManifestError):
                manifest = None
        image = manifest.parsed if manifest is not None else None
        config = None
        if isinstance(image, ImageManifest):
            row.update(image_size=image.total_size, layer_count=len(image.layers))
            cdesc = image.config
            config = await memo.get(cdesc.digest, lambda: _config_or_none(repo, cdesc))
        if platform is None and config is not None:
            platform = config.platform
        if config is not None:
            row["created"] = config.created
        if platform is not None:
            row.update(platform=str(platform), os=platform.os, architecture=platform.architecture,
                       variant=platform.variant, os_version=platform.os_version)
        return row

    parsed = top.parsed
    if isinstance(parsed, ImageIndex):
        entries = parsed.manifests
        rows = await gather_progress([image_row(d, None) for d in entries], progress=progress, desc="platforms")
    else:
        rows = [await image_row(top.descriptor(), top)]
    return sorted(rows, key=lambda r: bool(r["is_attestation"]))


async def platforms_frame(client: AsyncClient, ref: str, *, progress: bool | None = None) -> pd.DataFrame:
    """One row per index entry of ``ref`` (one row for a single image); attestation rows last.

    Columns: ``platform`` (``linux/arm64/v8``), ``os``, ``architecture``, ``variant``, ``os_version``,
    ``digest``, ``media_type``, ``manifest_size``, ``image_size`` (config + layers, compressed; Int64),
    ``layer_count`` (Int64), ``created`` (UTC, from the config), ``is_attestation``, ``attests``.
    """
    repo, ident = client.parse(ref)
    top = await repo.get_manifest(ident)
    rows = await _platform_rows(repo, top, progress=progress)
    return _provenance(_frame(rows, PLATFORMS_COLUMNS), client, reference=ref, digest=str(top.digest),
                       media_type=top.media_type)


def layer_rows(image: ImageManifest, config: ImageConfig | None) -> list[dict[str, Any]]:
    """Rows of the layers frame: each layer with the non-empty history step that produced it."""
    steps = config.layer_history() if config is not None else []
    total = sum(layer.size for layer in image.layers)
    rows = []
    for i, layer in enumerate(image.layers):
        step = steps[i] if i < len(steps) else None
        rows.append({
            "position": i, "digest": layer.digest, "media_type": layer.media_type, "size": layer.size,
            "share": layer.size / total if total else 0.0,
            "created_by": step.created_by if step else None, "created": step.created if step else None,
        })
    return rows


def history_rows(image: ImageManifest, config: ImageConfig | None) -> list[dict[str, Any]]:
    """Rows of the history frame: every step, non-empty ones paired with the layers in order."""
    rows = []
    layer_index = 0
    for i, step in enumerate((config.history if config is not None else None) or []):
        layer = None
        if not step.empty_layer:
            layer = image.layers[layer_index] if layer_index < len(image.layers) else None
            layer_index += 1
        rows.append({
            "step": i, "created": step.created, "created_by": step.created_by, "comment": step.comment,
            "author": step.author, "empty_layer": step.empty_layer,
            "layer_digest": layer.digest if layer else None, "layer_size": layer.size if layer else None,
        })
    return rows


async def _image_and_config(client: AsyncClient, ref: str, platform: str | Platform | None
                            ) -> tuple[Manifest, Manifest, Descriptor | None, ImageConfig | None]:
    repo, ident = client.parse(ref)
    resolved = await repo.resolve(ident, platform)
    config = resolved.config or await _config_or_none(repo, resolved.image.config)
    return resolved.top, resolved.manifest, resolved.entry, config


async def layers_frame(client: AsyncClient, ref: str, platform: str | Platform | None = None) -> pd.DataFrame:
    """One row per layer of ``ref`` for ``platform`` (default: the only one, else linux/amd64).

    Columns: ``position`` (0-based), ``digest``, ``media_type``, ``size`` (compressed), ``share`` (of the
    image's layer bytes), ``created_by`` and ``created`` of the history step that made the layer
    (``empty_layer`` steps skipped, so the pairing is right).
    """
    top, manifest, entry, config = await _image_and_config(client, ref, platform)
    rows = layer_rows(manifest.as_manifest(), config)
    return _provenance(_frame(rows, LAYERS_COLUMNS), client, reference=ref, digest=str(manifest.digest),
                       index_digest=str(top.digest) if entry is not None else None,
                       platform=_platform_str((entry.platform if entry else None)
                                              or (config.platform if config else None)))


async def history_frame(client: AsyncClient, ref: str, platform: str | Platform | None = None) -> pd.DataFrame:
    """One row per history entry of the image config, empty layers included.

    Columns: ``step`` (0-based), ``created`` (UTC), ``created_by``, ``comment``, ``author``, ``empty_layer``,
    ``layer_digest`` (the layer the step produced, <NA> for empty steps), ``layer_size`` (Int64).
    """
    top, manifest, entry, config = await _image_and_config(client, ref, platform)
    rows = history_rows(manifest.as_manifest(), config)
    return _provenance(_frame(rows, HISTORY_COLUMNS), client, reference=ref, digest=str(manifest.digest),
                       index_digest=str(top.digest) if entry is not None else None,
                       platform=_platform_str((entry.platform if entry else None)
                                              or (config.platform if config else None)))


def referrer_rows(nodes: Iterable[ReferrerNode]) -> list[dict[str, Any]]:
    """Rows of the referrers frame from a walked referrers tree."""
    rows = []
    for node in nodes:
        desc = node.descriptor
        annotations = desc.annotations or {}
        rows.append({
            "digest": desc.digest, "artifact_type": desc.artifact_type, "media_type": desc.media_type,
            "size": desc.size, "subject": node.subject, "depth": node.depth,
            "created": parse_timestamp(annotations.get(mt.ANNOTATION_CREATED)),
            "title": annotations.get(mt.ANNOTATION_TITLE),
        })
    return rows


async def referrer_nodes(repo: AsyncRepository, digest: str, *, recursive: bool = True) -> list[ReferrerNode]:
    """The referrers of ``digest``: the whole tree, or only direct ones."""
    return await walk(repo, digest, max_depth=8 if recursive else 1)


async def referrers_frame(client: AsyncClient, ref: str, *, recursive: bool = True) -> pd.DataFrame:
    """One row per referrer of ``ref`` (and, with ``recursive``, of its referrers), breadth first.

    Columns: ``digest``, ``artifact_type``, ``media_type``, ``size``, ``subject`` (the digest it refers to),
    ``depth`` (1 = direct), ``created`` (the ``org.opencontainers.image.created`` annotation, UTC), ``title``.
    """
    repo, ident = client.parse(ref)
    top = await repo.get_manifest(ident)
    nodes = await referrer_nodes(repo, str(top.digest), recursive=recursive)
    return _provenance(_frame(referrer_rows(nodes), REFERRERS_COLUMNS), client, reference=ref,
                       digest=str(top.digest))


async def catalog_frame(client: AsyncClient) -> pd.DataFrame:
    """One row per repository of the registry's catalog. Columns: ``repository``."""
    names = await client.catalog()
    return _provenance(_frame([{"repository": n} for n in names], CATALOG_COLUMNS), client)


async def sizes_frame(client: AsyncClient, repository: str, tags: Sequence[str] | None = None, *,
                      progress: bool | None = None) -> pd.DataFrame:
    """The size audit: one row per tag × platform (attestation entries and referrers fallback tags left out).

    Columns: ``tag``, ``platform``, ``digest`` (the image manifest), ``size`` (compressed: config + layers),
    ``unique_size`` (bytes of blobs, config and layers, that no other image uses; tags of one digest are one
    image), ``shared_size`` (``size - unique_size``), ``layer_count``. Manifests and configs are fetched once
    per digest, concurrently.
    """
    repo = client.repo(repository)
    if tags is None:
        tags = [t for t in await repo.tags.list() if not is_fallback_tag(t)]
    memo = _Memo()

    def manifest(ref: str) -> Awaitable[Manifest]:
        return memo.get(ref, lambda: pull_ops.get_manifest(repo, ref))

    async def image_rows(tag: str) -> list[dict[str, Any]]:
        top = await manifest(tag)
        parsed = top.parsed
        if isinstance(parsed, ImageIndex):
            entries = [d for d in parsed.manifests if not d.is_attestation]
            children = await asyncio.gather(*(manifest(d.digest) for d in entries))
            pairs = [(d.platform, m) for d, m in zip(entries, children, strict=True)]
        else:
            pairs = [(None, top)]
        rows = []
        for plat, m in pairs:
            image = m.parsed
            if not isinstance(image, ImageManifest):
                continue
            if plat is None:
                cdesc = image.config
                config = await memo.get(cdesc.digest, functools.partial(_config_or_none, repo, cdesc))
                plat = config.platform if config is not None else None
            rows.append({"tag": tag, "platform": _platform_str(plat), "digest": str(m.digest), "image": image})
        return rows

    nested = await gather_progress([image_rows(t) for t in tags], progress=progress, desc="sizes")
    rows = [row for group in nested for row in group]
    # Rows of the same manifest (two tags of one image) are one image: sharing is between distinct images.
    users: dict[str, set[str]] = {}
    for row in rows:
        for blob in [row["image"].config, *row["image"].layers]:
            users.setdefault(blob.digest, set()).add(row["digest"])
    for row in rows:
        image: ImageManifest = row.pop("image")
        blobs = [image.config, *image.layers]
        size = sum(b.size for b in blobs)
        unique = sum(b.size for b in blobs if users[b.digest] == {row["digest"]})
        row.update(size=size, unique_size=unique, shared_size=size - unique, layer_count=len(image.layers))
    return _provenance(_frame(rows, SIZES_COLUMNS), client, repository=repository)


_clients: dict[str, AsyncClient] = {}
_client_kwargs: dict[str, Any] = {}
_clients_lock = threading.Lock()


def configure(**client_kwargs: Any) -> None:
    """Set the :class:`~ocinb.client.AsyncClient` arguments (credentials, ``insecure``, ``cache``, …) of the
    default clients the module-level helpers use; forgets the clients made so far."""
    with _clients_lock:
        old = list(_clients.values())
        _clients.clear()
        _client_kwargs.clear()
        _client_kwargs.update(client_kwargs)
    for client in old:
        with contextlib.suppress(OcinbError, RuntimeError, OSError):
            run_sync(client.aclose())


def default_client(registry: str) -> AsyncClient:
    """The cached :class:`~ocinb.client.AsyncClient` of ``registry`` used by the module-level helpers
    (Docker credentials read as usual); run its coroutines with ``ocinb._sync.run_sync``."""
    from .client import AsyncClient, _normalize

    key = _normalize(registry)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = AsyncClient(key, **_client_kwargs)
        return client


def _parse(ref: str) -> tuple[AsyncClient, Reference]:
    parsed = Reference.parse(ref)
    return default_client(parsed.registry), parsed


def tags(repo_ref: str, resolve: bool = False, *, progress: bool | None = None,
         referrer_tags: bool = False) -> pd.DataFrame:
    """Tags of ``repo_ref`` (``ghcr.io/org/app``, ``node`` for Docker Hub); see :func:`tags_frame`."""
    client, parsed = _parse(repo_ref)
    return run_sync(tags_frame(client, parsed.repository, resolve=resolve, progress=progress,
                               referrer_tags=referrer_tags))


def platforms(ref: str, *, progress: bool | None = None) -> pd.DataFrame:
    """Platforms of the full reference ``ref``; see :func:`platforms_frame`."""
    client, parsed = _parse(ref)
    return run_sync(platforms_frame(client, str(parsed), progress=progress))


def layers(ref: str, platform: str | Platform | None = None) -> pd.DataFrame:
    """Layers of the full reference ``ref``; see :func:`layers_frame`."""
    client, parsed = _parse(ref)
    return run_sync(layers_frame(client, str(parsed), platform))


def history(ref: str, platform: str | Platform | None = None) -> pd.DataFrame:
    """History of the full reference ``ref``; see :func:`history_frame`."""
    client, parsed = _parse(ref)
    return run_sync(history_frame(client, str(parsed), platform))


def referrers(ref: str, recursive: bool = True) -> pd.DataFrame:
    """Referrers of the full reference ``ref``; see :func:`referrers_frame`."""
    client, parsed = _parse(ref)
    return run_sync(referrers_frame(client, str(parsed), recursive=recursive))


def catalog(registry: str) -> pd.DataFrame:
    """Repositories of ``registry``; see :func:`catalog_frame`."""
    return run_sync(catalog_frame(default_client(registry)))


def sizes(repo_ref: str, tags: Sequence[str] | None = None, *, progress: bool | None = None) -> pd.DataFrame:
    """Size audit of ``repo_ref`` over ``tags`` (default: all); see :func:`sizes_frame`.

    A ``tqdm.auto`` progress bar shows for more than 20 tags unless ``progress=False``.
    """
    client, parsed = _parse(repo_ref)
    return run_sync(sizes_frame(client, parsed.repository, tags, progress=progress))


def _mib(values: pd.Series) -> pd.Series:
    return values.astype("float64") / (1024 * 1024)


def plot_layers(df: pd.DataFrame, *, ax: Axes | None = None, top: int = 30) -> Axes:
    """Horizontal bars of layer sizes (MiB) from a :func:`layers` frame, the ``top`` biggest layers."""
    import matplotlib.pyplot  # noqa: F401 - pandas plotting needs matplotlib

    data = df.nlargest(top, "size").sort_values("position", ascending=False)
    labels = [f"#{p} {str(d)[7:19]}" for p, d in zip(data["position"], data["digest"], strict=True)]
    frame = pd.DataFrame({"layer": labels, "MiB": _mib(data["size"]).to_numpy()})
    axes = frame.plot.barh(x="layer", y="MiB", legend=False, ax=ax, title="Layer sizes (compressed)")
    axes.set_xlabel("MiB")
    axes.set_ylabel("")
    return axes


def plot_sizes(df: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Bars of image size (MiB) per tag, one bar per platform, from a :func:`sizes` frame."""
    import matplotlib.pyplot  # noqa: F401 - pandas plotting needs matplotlib

    data = df.assign(platform=df["platform"].fillna("(none)"), MiB=_mib(df["size"]))
    table = data.pivot_table(index="tag", columns="platform", values="MiB", aggfunc="sum", sort=False)
    axes = table.plot.bar(ax=ax, title="Image size by tag (compressed)", rot=45)
    axes.set_ylabel("MiB")
    axes.set_xlabel("tag")
    return axes
