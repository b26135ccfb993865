"""The module-level helpers (``ocinb.tags``, ``ocinb.platforms``, …, ``ocinb.copy``): full references in, run
on a cached default :class:`~ocinb.AsyncClient` per registry on ocinb's background loop, blocking.

The top of the stack, as ``crane`` sits over ``remote``: nothing in ocinb imports this module but the package
itself.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._sync import run_sync
from .client import AsyncClient
from .errors import OcinbError, WasteCheckError
from .models import Platform
from .ops.copy import CopyReport
from .reference import Reference, parse_registry
from .tarfs import LayerLimits, WasteSummary

if TYPE_CHECKING:
    import pandas as pd

    from .image_diff import ImageDiff
    from .layer_views import FilesystemTree
    from .ops.crawl import CrawlReport
    from .views import DoctorReport, InspectView

_clients: dict[str, AsyncClient] = {}
_client_kwargs: dict[str, Any] = {}
_clients_lock = threading.Lock()


def configure(**client_kwargs: Any) -> None:
    """Set the :class:`~ocinb.AsyncClient` arguments (credentials, ``insecure``, ``proxy``, ``cache``, …) of the default
    clients the module-level helpers use; forgets the clients made so far."""
    with _clients_lock:
        old = list(_clients.values())
        _clients.clear()
        _client_kwargs.clear()
        _client_kwargs.update(client_kwargs)
    for client in old:
        with contextlib.suppress(OcinbError, RuntimeError, OSError):
            run_sync(client.aclose())


def default_client(registry: str) -> AsyncClient:
    """The cached :class:`~ocinb.AsyncClient` of ``registry`` that the module-level helpers use (Docker
    credentials read as usual). It lives on ocinb's background loop: use it from there, or through the helpers."""
    key = parse_registry(registry)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = AsyncClient(key, **_client_kwargs)
        return client


def _locate(ref: str) -> tuple[AsyncClient, Reference]:
    parsed = Reference.parse(ref)
    return default_client(parsed.registry), parsed


def tags(repo_ref: str, resolve: bool = False, *, progress: bool | None = None,
         referrer_tags: bool = False) -> pd.DataFrame:
    """Tags of ``repo_ref`` (``ghcr.io/org/app``, ``node`` for Docker Hub); see :meth:`AsyncClient.tags`."""
    client, parsed = _locate(repo_ref)
    return run_sync(client.tags(parsed.repository, resolve=resolve, progress=progress, referrer_tags=referrer_tags))


def platforms(ref: str, *, progress: bool | None = None) -> pd.DataFrame:
    """Platforms of the full reference ``ref``; see :meth:`AsyncClient.platforms`."""
    client, parsed = _locate(ref)
    return run_sync(client.platforms(str(parsed), progress=progress))


def layers(ref: str, platform: str | Platform | None = None) -> pd.DataFrame:
    """Layers of the full reference ``ref``; see :meth:`AsyncClient.layers`."""
    client, parsed = _locate(ref)
    return run_sync(client.layers(str(parsed), platform))


def history(ref: str, platform: str | Platform | None = None) -> pd.DataFrame:
    """History of the full reference ``ref``; see :meth:`AsyncClient.history`."""
    client, parsed = _locate(ref)
    return run_sync(client.history(str(parsed), platform))


def referrers(ref: str, recursive: bool = True) -> pd.DataFrame:
    """Referrers of the full reference ``ref``; see :meth:`AsyncClient.referrers`."""
    client, parsed = _locate(ref)
    return run_sync(client.referrers(str(parsed), recursive=recursive))


def catalog(registry: str) -> pd.DataFrame:
    """Repositories of ``registry``; see :meth:`AsyncClient.catalog_frame`."""
    return run_sync(default_client(registry).catalog_frame())


def sizes(repo_ref: str, tags: Sequence[str] | None = None, *, progress: bool | None = None) -> pd.DataFrame:
    """Size audit of ``repo_ref`` over ``tags`` (default: all); see :meth:`AsyncClient.sizes`.

    A ``tqdm.auto`` progress bar shows for more than 20 tags unless ``progress=False``.
    """
    client, parsed = _locate(repo_ref)
    return run_sync(client.sizes(parsed.repository, tags, progress=progress))


def inspect(ref: str, platform: str | Platform | None = None, *, contents: bool | None = None) -> InspectView:
    """The :class:`~ocinb.InspectView` of the full reference ``ref`` (``ghcr.io/org/app:1.0``, ``node:22``);
    ``contents`` as :meth:`AsyncClient.inspect`."""
    client, parsed = _locate(ref)
    return run_sync(client.inspect(str(parsed), platform, contents=contents))


def files(ref: str, platform: str | Platform | None = None, layer: int | str | None = None, *,
          digests: bool = False, progress: bool | None = None, limits: LayerLimits | None = None) -> pd.DataFrame:
    """Every tar entry of every layer (or of ``layer``) of the full reference ``ref``; see
    :meth:`AsyncClient.files`."""
    client, parsed = _locate(ref)
    return run_sync(client.files(str(parsed), platform, layer, digests=digests, progress=progress, limits=limits))


def packages(ref: str, platform: str | Platform | None = None, *, limits: LayerLimits | None = None) -> pd.DataFrame:
    """The installed packages of the full reference ``ref``; see :meth:`AsyncClient.packages`."""
    client, parsed = _locate(ref)
    return run_sync(client.packages(str(parsed), platform, limits=limits))


def diff(a: str, b: str, platform: str | Platform | None = None, *, semantic: bool = True,
         ignore_paths: Sequence[str] = (), read_base: bool | None = None) -> ImageDiff:
    """What changed from the full reference ``a`` to ``b`` (any registries); see :meth:`AsyncClient.diff`."""
    client_a, parsed_a = _locate(a)
    client_b, parsed_b = _locate(b)
    return run_sync(client_a.diff(str(parsed_a), str(parsed_b), platform, semantic=semantic,
                                  ignore_paths=ignore_paths, read_base=read_base, b_client=client_b))


def filesystem(ref: str, platform: str | Platform | None = None, *, digests: bool = False,
               progress: bool | None = None, limits: LayerLimits | None = None) -> pd.DataFrame:
    """The squashed filesystem of the full reference ``ref``; see :meth:`AsyncClient.filesystem`."""
    client, parsed = _locate(ref)
    return run_sync(client.filesystem(str(parsed), platform, digests=digests, progress=progress, limits=limits))


def filesystem_tree(ref: str, platform: str | Platform | None = None, *,
                    progress: bool | None = None) -> FilesystemTree:
    """The squashed filesystem of the full reference ``ref`` as a collapsible HTML tree with sizes; see
    :meth:`AsyncClient.filesystem_tree`."""
    client, parsed = _locate(ref)
    return run_sync(client.filesystem_tree(str(parsed), platform, progress=progress))


def waste(ref: str, platform: str | Platform | None = None, *, progress: bool | None = None,
          limits: LayerLimits | None = None) -> pd.DataFrame:
    """The wasted space of the full reference ``ref``, dive's numbers in ``attrs``; see :meth:`AsyncClient.waste`."""
    client, parsed = _locate(ref)
    return run_sync(client.waste(str(parsed), platform, progress=progress, limits=limits))


def check_waste(ref: str, platform: str | Platform | None = None, *, lowest_efficiency: float | None = 0.9,
                highest_wasted_bytes: int | None = None,
                highest_user_wasted_percent: float | None = 0.1) -> WasteSummary:
    """dive's CI rules (with dive's defaults; ``None`` turns a rule off) for ``ref``: the
    :class:`~ocinb.WasteSummary` when it passes, :class:`~ocinb.WasteCheckError` listing the failures when not."""
    client, parsed = _locate(ref)
    summary = run_sync(client.waste_summary(str(parsed), platform))
    failed = summary.ci_check(lowest_efficiency, highest_wasted_bytes, highest_user_wasted_percent)
    if failed:
        raise WasteCheckError(ref, failed)
    return summary


def copy(src: str, dst: str, *, platforms: Sequence[str | Platform] | None = None,
         referrers: bool = False) -> CopyReport:
    """Copy the image graph of the full reference ``src`` to ``dst``, within a registry or across two, as
    ``crane copy`` does (blobs mounted within a registry, streamed across). ``dst`` without a tag keeps the
    source's tag."""
    src_client, src_ref = _locate(src)
    dst_client, dst_ref = _locate(dst)
    return run_sync(src_client.copy(str(src_ref), str(dst_ref), dst_client=dst_client, platforms=platforms,
                                    referrers=referrers))


def doctor(registry: str, repository: str | None = None, *, write: str | None = None) -> DoctorReport:
    """Check what ``registry`` supports (read-only unless ``write`` names a scratch repository, which is cleaned
    up); see :meth:`AsyncClient.doctor`. What is learnt stays with the default client of that registry."""
    return run_sync(default_client(registry).doctor(repository, write=write))


async def crawl_with(client_for: Callable[[str], AsyncClient], targets: Sequence[str], out: str | os.PathLike[str],
                     tables: str | Sequence[str] | None = None, *, resume: bool = True, clean: bool = True,
                     progress: bool | None = None) -> CrawlReport:
    """The crawl of :func:`crawl` over the clients ``client_for(registry)`` gives (the CLI's, a Dask worker's)."""
    from . import crawl_tables
    from .ops import crawl as crawl_ops

    chosen = crawl_tables.select(tables)

    async def list_catalog(registry: str) -> list[str]:
        return await client_for(registry).catalog()

    return await crawl_ops.crawl(targets, out, chosen, crawl_tables.errors_frame,
                                 open_repo=lambda registry, name: client_for(registry).repo(name),
                                 list_catalog=list_catalog, resume=resume, clean=clean, progress=progress)


def crawl(targets: str | Sequence[str], out: str | os.PathLike[str], tables: str | Sequence[str] | None = None, *,
          resume: bool = True, progress: bool | None = None, scheduler: Any = None) -> CrawlReport:
    """Crawl registries (their catalog), repositories (every tag) or references into Parquet under ``out``: one
    dataset per table (``out/<table>/part-*.parquet``, default tables tags, platforms, layers, history,
    referrers; also sizes), failures in ``out/errors``. Resumable: run it again after any stop and finished work
    is not fetched again (``resume=False`` starts over). ``scheduler`` (a ``dask.distributed.Client``) splits
    the targets across its workers, each writing its own parts of the same datasets.

    Raises :class:`~ocinb.RateBudgetExceededError` (its ``done`` is the :class:`~ocinb.CrawlReport`) when the
    rate budget given to :func:`configure` stops it.
    """
    wanted = [targets] if isinstance(targets, str) else list(targets)
    if scheduler is not None:
        from .dask import crawl_on

        with _clients_lock:
            kwargs = dict(_client_kwargs)
        return crawl_on(scheduler, wanted, out, tables, resume=resume, client_kwargs=kwargs)
    return run_sync(crawl_with(default_client, wanted, out, tables, resume=resume, progress=progress))
